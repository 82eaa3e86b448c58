"""What one worker's hub keeps: per matter it delivers, and per principal it closed."""

from __future__ import annotations

import asyncio

from rtportal import wirejson
from rtportal.events.event import StoredEvent
from rtportal.realtime.listener import Listener

__all__ = ["CloseCounts", "MatterState", "PendingBudget", "PendingEvents"]

# Counters of applied closes, by a hash of the principal: fixed memory for
# any number of principals (a collision only costs a needless re-check).
_CLOSE_COUNTERS = 1024


class PendingBudget:
    """The bytes of out-of-order events one worker may hold, over all its matters.

    Holding an early event is only an optimisation (the gap fill re-reads
    whatever was not kept from the database), so the overflow policy is
    drop-newest: an event that does not fit is not kept.
    """

    __slots__ = ("max_bytes", "used")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0


def _size(event: StoredEvent) -> int:
    # Off the fast path (only early events are measured): the payload's JSON
    # length plus the blob is what the event costs to hold, within a small factor.
    return len(wirejson.dumps(event.payload)) + len(event.blob or b"") + 256


class PendingEvents:
    """One matter's events that arrived before the gap below them closed, by seq,
    bounded by count and by the worker's ``PendingBudget`` in bytes."""

    __slots__ = ("_budget", "_events", "_max_count")

    def __init__(self, budget: PendingBudget, max_count: int) -> None:
        self._budget = budget
        self._max_count = max_count
        self._events: dict[int, tuple[StoredEvent, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: StoredEvent) -> bool:
        """Keep ``event`` if it fits (count and bytes); ``False``: dropped (re-read later)."""
        if event.seq in self._events or len(self._events) >= self._max_count:
            return False
        size = _size(event)
        if self._budget.used + size > self._budget.max_bytes:
            return False
        self._events[event.seq] = (event, size)
        self._budget.used += size
        return True

    def pop(self, seq: int) -> StoredEvent | None:
        kept = self._events.pop(seq, None)
        if kept is None:
            return None
        self._budget.used -= kept[1]
        return kept[0]

    def drop_through(self, seq: int) -> None:
        """Forget every event up to ``seq`` (already delivered)."""
        for s in [s for s in self._events if s <= seq]:
            self.pop(s)

    def clear(self) -> None:
        for s in list(self._events):
            self.pop(s)


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

    def __init__(self, pending: PendingEvents) -> None:
        self.listeners: dict[int, Listener] = {}  # id(listener) -> listener
        self.last = 0  # seq delivered up to (valid when ready)
        self.target = 0  # highest seq known to exist
        self.pending = pending  # seq > last + 1, waiting for the gap
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
