"""What the websocket state machine asks of its transport, and the frame cache it uses.

The actions (``Authorize``, ``LoadBacklog``, ``Leave``, ``Append``,
``Close``, ``Heartbeat``) are I/O requests ``rtportal.ws.protocol.Protocol``
returns; the endpoint executes them and feeds the results back. The
``FrameCache`` binds the worker's frame cache to this protocol's ``event``
frame and the worker's cursor codec (contacts' frames carry tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtportal.events.cursor import CursorCodec
from rtportal.events.event import StoredEvent
from rtportal.events.send import Send
from rtportal.realtime import framecache
from rtportal.settings import DEFAULT_FRAME_CACHE_BYTES
from rtportal.ws.frames import event_frame
from rtportal.ws.threadproto import MarkRead, RelayTyping

__all__ = [
    "HEARTBEAT",
    "Action",
    "Append",
    "Authorize",
    "Close",
    "FrameCache",
    "Heartbeat",
    "Leave",
    "LoadBacklog",
]

# --- actions (I/O requests for the endpoint) ----------------------------------------


@dataclass(frozen=True, slots=True)
class Authorize:
    """Check access to ``matter``, join the hub, then call ``subscribed``/``subscribe_failed``.

    ``head`` passed back must be at least the database head at a moment
    after the hub join, so that every event after it arrives live.
    """

    sub: int
    matter: str
    after: int | str | None  # as the client sent it (read once the matter is known)


@dataclass(frozen=True, slots=True)
class LoadBacklog:
    """Read up to ``limit`` events and ``max_bytes`` stored bytes with seq > ``after``.

    Answer ``backlog_loaded``/``_failed``. The endpoint reads only once the
    connection's unsent bytes are below its low-water mark (pacing).
    """

    sub: int
    matter: str
    matter_id: int
    after: int
    limit: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Leave:
    """The connection no longer wants live events of ``matter`` (hub.leave if joined)."""

    matter: str


@dataclass(frozen=True, slots=True)
class Append:
    """Append ``send`` (its ``client_id`` is the frame's id) through the group
    commit: commit, publish; answer ``appended``/``failed``."""

    send: Send

    @property
    def request_id(self) -> str:
        """The frame's id (the parser always sets ``send.client_id`` to it)."""
        return self.send.client_id or ""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the websocket with ``code``; the protocol accepts no more input."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The client pinged: it is there (activity on an idle-timeout session)."""


Action = Authorize | LoadBacklog | Leave | Append | Close | Heartbeat | MarkRead | RelayTyping

HEARTBEAT = Heartbeat()


# --- encoded event frames, shared by every connection of a worker ------------------


class FrameCache(framecache.FrameCache):
    """The worker's frame cache (``rtportal.realtime.framecache``) bound to the
    ``event`` frame encoder of this protocol and the worker's cursor codec
    (``None``: a random key, for tests that run no server)."""

    def __init__(
        self,
        cursors: CursorCodec | None = None,
        size: int = 8192,
        max_bytes: int = DEFAULT_FRAME_CACHE_BYTES,
    ) -> None:
        codec = cursors if cursors is not None else CursorCodec.ephemeral()
        super().__init__(self._event_frame, codec, size, max_bytes)

    def _event_frame(self, view: dict[str, Any], event: StoredEvent, cls: str) -> str:
        if cls == "staff":
            return event_frame(view)
        return event_frame(view, self.cursors.event_token(event.matter_id, event.seq))
