"""The hub's ephemeral plane: frames for a matter's connections that are never stored.

Receipts, typing and unread counts (docs/threads.md) travel on the matter's
broker topic like events, but they are not in the log: no seq, no gap
fill, no backlog. Lost on the broker, they are lost (the next one, or an
HTTP read, brings the state back). ``publish_ephemeral`` delivers to this
worker's listeners at once, then publishes for the other workers; a worker
skips the echo of its own messages by id. Each listener decides with
``Ephemeral.reaches`` whether the frame is for it (the publisher already
applied the thread's visibility rule when it named the receivers).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol, runtime_checkable

from rtportal.realtime.broker.base import Broker
from rtportal.realtime.matterstate import MatterState
from rtportal.realtime.message import (
    Ephemeral,
    decode_ephemeral,
    encode_ephemeral,
    matter_topic,
)

__all__ = ["EphemeralListener", "EphemeralPlane"]

log = logging.getLogger("rtportal.realtime.hub")

_RECENT = 256  # ids of this worker's own ephemeral messages, to skip their echo


@runtime_checkable
class EphemeralListener(Protocol):
    """A listener that takes ephemeral frames (a websocket connection)."""

    def ephemeral(self, msg: Ephemeral) -> None: ...


class EphemeralPlane:
    """Mixed into ``Hub``, which owns ``_matters`` and ``_broker``."""

    _broker: Broker
    _matters: dict[int, MatterState]
    _recent_ephemeral: deque[str] | None = None

    async def publish_ephemeral(self, msg: Ephemeral) -> None:
        """Deliver ``msg`` to the matter's listeners on every worker (at most once)."""
        self._fan_out_ephemeral(msg)
        if self._broker.private:
            return  # nobody else could hear it (and no echo of it comes back)
        recent = self._recent_ephemeral
        if recent is None:
            recent = self._recent_ephemeral = deque(maxlen=_RECENT)
        recent.append(msg.id)  # its echo is dropped
        await self._broker.publish(matter_topic(msg.matter_id), encode_ephemeral(msg))

    def _on_ephemeral(self, topic: str, data: bytes) -> None:
        try:
            msg = decode_ephemeral(data)
        except ValueError:
            log.warning("dropping a malformed ephemeral message on %r", topic)
            return
        if topic != matter_topic(msg.matter_id):
            log.warning("dropping an ephemeral message for matter %d on %r", msg.matter_id, topic)
            return
        recent = self._recent_ephemeral
        if recent is not None and msg.id in recent:
            return  # our own, already delivered here
        self._fan_out_ephemeral(msg)

    def _fan_out_ephemeral(self, msg: Ephemeral) -> None:
        st = self._matters.get(msg.matter_id)
        if st is None or not st.ready:
            return
        for listener in list(st.listeners.values()):
            if not isinstance(listener, EphemeralListener):
                continue  # a listener of events only
            try:
                listener.ephemeral(msg)
            except Exception:
                # An ephemeral frame is never worth another listener's frame.
                log.exception("listener.ephemeral failed")
