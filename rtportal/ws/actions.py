"""The actions of the websocket protocol: the I/O a ``Protocol`` asks its endpoint for.

``rtportal.ws.protocol.Protocol`` returns them from every input; the
endpoint (``core.ConnectionCore``) executes them and feeds the results back
(``subscribed``/``subscribe_failed``, ``backlog_loaded``/``backlog_failed``,
``appended``/``failed``). ``MarkRead`` and ``RelayTyping``, the thread
frames' actions, live with those frames in ``threadproto``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtportal.ws.frames import Send
from rtportal.ws.threadproto import MarkRead, RelayTyping

__all__ = [
    "Action",
    "Append",
    "Authorize",
    "Close",
    "Heartbeat",
    "Leave",
    "LoadBacklog",
    "MarkRead",
    "RelayTyping",
]


@dataclass(frozen=True, slots=True)
class Authorize:
    """Check access to ``matter``, join the hub, then call ``subscribed``/``subscribe_failed``.

    ``head`` passed back must be at least the database head at a moment
    after the hub join, so that every event after it arrives live.
    """

    sub: int
    matter: str
    after: int


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
