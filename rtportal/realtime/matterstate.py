"""What one worker's hub keeps: per matter it delivers, and per principal it closed."""

from __future__ import annotations

import asyncio

from rtportal.events.event import StoredEvent
from rtportal.realtime.listener import Listener

__all__ = ["CloseCounts", "MatterState"]

# Counters of applied closes, by a hash of the principal: fixed memory for
# any number of principals (a collision only costs a needless re-check).
_CLOSE_COUNTERS = 1024


class MatterState:
    """What one worker knows about one matter it delivers."""

    __slots__ = (
        "fill_task",
        "joining",
        "last",
        "listeners",
        "lock",
        "pending",
        "ready",
        "subscribed",
        "target",
    )

    def __init__(self) -> None:
        self.listeners: dict[int, Listener] = {}  # id(listener) -> listener
        self.last = 0  # seq delivered up to (valid when ready)
        self.target = 0  # highest seq known to exist
        self.pending: dict[int, StoredEvent] = {}  # seq > last + 1, waiting for the gap
        self.ready = False  # subscribed and head read: messages can be applied
        self.subscribed = False
        self.joining = 0  # joins in progress (keep the state alive)
        self.lock = asyncio.Lock()  # serialises subscribe/unsubscribe of this topic
        self.fill_task: asyncio.Task[None] | None = None


class CloseCounts:
    """How many closes this worker applied, per principal (hashed) and in all."""

    __slots__ = ("_counts", "total")

    def __init__(self) -> None:
        self._counts = [0] * _CLOSE_COUNTERS
        self.total = 0

    def of(self, kind: str, principal_id: int) -> int:
        return self._counts[hash((kind, principal_id)) % _CLOSE_COUNTERS]

    def bump(self, kind: str, principal_id: int) -> None:
        self._counts[hash((kind, principal_id)) % _CLOSE_COUNTERS] += 1
        self.total += 1
