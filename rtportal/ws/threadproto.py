"""The read side's frames in the protocol core (mixed into ``Protocol``, docs/threads.md).

* ``read``: a read mark, executed by the connection (``MarkRead``) and
  answered by an ``ack`` with the mark in effect and the caller's unread
  counts (``read_marked``), or an ``error`` (``read_failed``).
* ``typing``: relayed (``RelayTyping``) at most once per ``TYPING_INTERVAL``
  seconds per connection and thread; more are dropped silently (policy
  **drop-newest**, as the broker's). At most ``TYPING_TRACKED`` threads are
  remembered per connection; a typing frame for another thread while they
  are all within the interval is dropped too, so the memory is fixed.
  Never answered except by a refusal (``typing_failed``).
* ``ephemeral``: a receipt, typing or unread frame from the hub, for a
  matter this connection subscribed to (access granted), when the
  message's audience includes this connection. Dropped, never queued, when
  the outbox is half full: an ephemeral frame never makes a slow consumer.

The clock is a class attribute (``time.monotonic``) a test replaces on the
instance to drive the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtportal.errors import BadRequest, RtPortalError
from rtportal.principal import Principal
from rtportal.realtime.message import Ephemeral
from rtportal.ws.frames import Read, Typing, error_frame, read_ack_frame

__all__ = [
    "THREAD_FRAMES",
    "TYPING_INTERVAL",
    "TYPING_TRACKED",
    "MarkRead",
    "RelayTyping",
    "ThreadFrames",
]

TYPING_INTERVAL = 3.0  # seconds between relayed typing frames of one connection and thread
TYPING_TRACKED = 16  # threads whose last typing frame one connection remembers
THREAD_FRAMES = (Read, Typing)  # the client frames this mixin handles


@dataclass(frozen=True, slots=True)
class MarkRead:
    """Store the read mark (``rtportal.threads.reads.mark_read``); answer
    ``read_marked``/``read_failed``."""

    frame: Read


@dataclass(frozen=True, slots=True)
class RelayTyping:
    """Relay the typing frame (``rtportal.threads.typingrelay``); ``typing_failed`` on refusal."""

    frame: Typing


class ThreadFrames:
    """Mixed into ``Protocol``, which sets these attributes and emits frames."""

    principal: Principal
    closed: Any
    _subs: dict[str, Any]
    _outbox: list[str]
    _queued_bytes: int
    _queued_max: int
    _send_queue: int
    clock: Callable[[], float] = staticmethod(time.monotonic)
    # (matter, thread) -> when its last typing frame was relayed; made on first use.
    _typing: dict[tuple[str, str], float] | None = None

    def _emit(self, text: str, actions: list[Any]) -> None:
        raise NotImplementedError

    def _on_thread_frame(self, frame: Read | Typing, actions: list[Any]) -> None:
        if isinstance(frame, Read):
            actions.append(MarkRead(frame))
        else:
            self._on_typing(frame, actions)

    def _on_typing(self, frame: Typing, actions: list[Any]) -> None:
        if frame.internal and not self.principal.is_staff:
            err = BadRequest("internal: only staff write notes")
            self._emit(error_frame(frame.id, err, frame.matter), actions)
            return
        now = self.clock()
        gate = self._typing
        if gate is None:
            gate = self._typing = {}
        key = (frame.matter, frame.thread)
        last = gate.get(key)
        if last is not None and now - last < TYPING_INTERVAL:
            return  # drop-newest: the one relayed within the interval still shows
        if last is None and len(gate) >= TYPING_TRACKED:
            for old in [k for k, t in gate.items() if now - t >= TYPING_INTERVAL]:
                del gate[old]
            if len(gate) >= TYPING_TRACKED:
                return  # drop-newest: as many threads as remembered, all recent
        gate[key] = now
        actions.append(RelayTyping(frame))

    def read_marked(self, frame: Read, upto: object, unread: int, matter_unread: int) -> list[Any]:
        """The read mark is stored: ``ack`` with the mark in effect and the unread counts."""
        if self.closed is not None:
            return []
        actions: list[Any] = []
        self._emit(read_ack_frame(frame, upto, unread, matter_unread), actions)
        return actions

    def read_failed(self, frame: Read, error: RtPortalError) -> list[Any]:
        """The read mark was refused (``not_found``, ``invalid_cursor``, ...); nothing stored."""
        return self._refused(frame.id, frame.matter, error)

    def typing_failed(self, frame: Typing, error: RtPortalError) -> list[Any]:
        """The typing frame was refused (``not_found``); nothing relayed."""
        return self._refused(frame.id, frame.matter, error)

    def _refused(self, frame_id: str | None, matter: str, error: RtPortalError) -> list[Any]:
        if self.closed is not None:
            return []
        actions: list[Any] = []
        self._emit(error_frame(frame_id, error, matter), actions)
        return actions

    def ephemeral(self, msg: Ephemeral, conn_id: str) -> list[Any]:
        """An ephemeral frame from the hub: queued if it is for this connection."""
        if self.closed is not None:
            return []
        sub = self._subs.get(msg.matter)
        if sub is None or sub.state == "authorizing" or sub.matter_id != msg.matter_id:
            return []  # not (yet) granted this matter
        if not msg.reaches(self.principal, conn_id):
            return []
        if self._queued_bytes * 2 > self._queued_max or len(self._outbox) * 2 >= self._send_queue:
            return []  # dropped: the client is behind; never a 4008 for an ephemeral frame
        actions: list[Any] = []
        self._emit(msg.frame_for(self.principal), actions)
        return actions
