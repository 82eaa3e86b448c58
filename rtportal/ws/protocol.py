"""Sans-I/O state machine of one websocket connection (protocol v1, ``docs/protocol.md``).

No sockets, no database, no clock: the endpoint feeds inputs (client text,
database results, live events from the hub) and executes what comes out.

* Frames for the client accumulate in a bounded outbox; the endpoint's
  writer drains it with ``take_frames``. When the outbox would exceed
  ``limits.send_queue`` the connection is a slow consumer: the outbox is
  dropped and ``Close(4008)`` is returned. Fan-out therefore never waits.
* I/O requests are returned as a list of actions (``Authorize``,
  ``LoadBacklog``, ``Leave``, ``Append``, ``Close``); their results come back
  through ``subscribed``/``subscribe_failed``, ``backlog_loaded``/
  ``backlog_failed`` and ``appended``/``failed``.

Per subscription the machine owns the backlog/live seam: ``after`` is the
last seq handed to the client (or skipped because the viewer may not see
it). While the subscription is being authorised or its backlog loaded,
live events are buffered (bounded); afterwards the backlog is emitted, then
the buffer through the same live path, which drops ``seq <= after``
(duplicates) and turns ``seq > after + 1`` (a gap) into another backlog
load, or a ``resync`` when the gap is larger than ``backlog_limit``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rtportal.closecodes import CLOSE_FRAME_TOO_BIG, CLOSE_PROTOCOL, CLOSE_REVOKED, CLOSE_SLOW
from rtportal.errors import Conflict, RateLimited, RtPortalError
from rtportal.events.audience import view_for, viewer_class
from rtportal.events.log import StoredEvent
from rtportal.principal import Principal
from rtportal.ws.frames import (
    Ack,
    FrameError,
    Limits,
    Ping,
    Send,
    Subscribe,
    Unsubscribe,
    ack_frame,
    error_frame,
    event_frame,
    hello_frame,
    parse_client_frame,
    pong_frame,
    resync_frame,
    subscribed_frame,
    unsubscribed_frame,
)

__all__ = [
    "Action",
    "Append",
    "Authorize",
    "Close",
    "FrameCache",
    "Leave",
    "LoadBacklog",
    "Protocol",
]

log = logging.getLogger("rtportal.ws")

# Closes that discard the frames still queued (every other close writes them first).
_DROP_QUEUED = frozenset({CLOSE_SLOW, CLOSE_REVOKED})


# --- actions (I/O requests for the endpoint) ----------------------------------------


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
    """Read up to ``limit`` events with seq > ``after``; answer ``backlog_loaded``/``_failed``."""

    sub: int
    matter: str
    matter_id: int
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class Leave:
    """The connection no longer wants live events of ``matter`` (hub.leave if joined)."""

    matter: str


@dataclass(frozen=True, slots=True)
class Append:
    """Append an event in a write transaction, commit, publish; answer ``appended``/``failed``."""

    request_id: str
    matter: str
    kind: str
    audience: Literal["portal", "staff"]
    payload: dict[str, Any]
    blob: bytes | None


@dataclass(frozen=True, slots=True)
class Close:
    """Close the websocket with ``code``; the protocol accepts no more input."""

    code: int
    reason: str


Action = Authorize | LoadBacklog | Leave | Append | Close


# --- encoded event frames, shared by every connection of a worker ------------------


class FrameCache:
    """LRU of encoded ``event`` frames keyed by (matter_id, seq, viewer class).

    With 1,000 members in a matter, JSON-encoding an event per connection
    would dominate CPU; encoding once per viewer class and reusing the text
    makes fan-out O(connections) cheap string handoffs. ``""`` caches "this
    class may not see the event".

    (matter_id, seq) names one immutable event only within one database, so
    use one cache per app (the endpoint keeps it on ``app.state``); each entry
    also remembers ``created_at`` and is re-encoded if it does not match.
    """

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._frames: OrderedDict[tuple[int, int, str], tuple[str, str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def frame(self, event: StoredEvent, principal: Principal, cls: str) -> str:
        key = (event.matter_id, event.seq, cls)
        entry = self._frames.get(key)
        if entry is not None and entry[0] == event.created_at:
            self.hits += 1
            self._frames.move_to_end(key)
            return entry[1]
        self.misses += 1
        view = view_for(event, principal)
        text = "" if view is None else event_frame(view)
        self._frames[key] = (event.created_at, text)
        if len(self._frames) > self._size:
            self._frames.popitem(last=False)
        return text


# --- per-subscription and per-send state ----------------------------------------


@dataclass(slots=True)
class _Sub:
    token: int
    matter: str
    frame_id: str
    after: int
    state: Literal["authorizing", "loading", "live"] = "authorizing"
    matter_id: int = 0
    buffer: list[StoredEvent] = field(default_factory=list)
    overflow: bool = False


@dataclass(slots=True)
class _Pending:
    send: Send
    waiters: int = 1


class Protocol:
    """The state of one authenticated websocket connection."""

    def __init__(
        self,
        principal: Principal,
        limits: Limits | None = None,
        cache: FrameCache | None = None,
    ) -> None:
        self.principal = principal
        self.limits = limits or Limits()
        self.cache = cache if cache is not None else FrameCache(size=256)
        self._cls = viewer_class(principal)
        # A list, not a deque: an empty deque costs ~600 bytes per idle
        # connection, and the outbox is drained whole (take_frames).
        self._outbox: list[str] = []
        self._subs: dict[str, _Sub] = {}
        self._pending: dict[str, _Pending] = {}
        self._next_token = 1
        self._bad_frames = 0
        self.closed: Close | None = None
        # A backlog page never fills the outbox on its own: page size is bounded by it.
        self._page = max(1, min(self.limits.backlog_limit, self.limits.send_queue // 2))
        self._buffer_max = max(1, self.limits.send_queue)

    # --- outbox -----------------------------------------------------------------

    def take_frames(self, max_frames: int = 64) -> list[str]:
        """Up to ``max_frames`` encoded frames to write, oldest first."""
        outbox = self._outbox
        if len(outbox) <= max_frames:
            self._outbox = []
            return outbox
        out = outbox[:max_frames]
        del outbox[:max_frames]
        return out

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def _emit(self, text: str, actions: list[Action]) -> None:
        if self.closed is not None:
            return
        if len(self._outbox) >= self.limits.send_queue:
            actions.extend(self._close(CLOSE_SLOW, "slow consumer: resume from your cursor"))
            return
        self._outbox.append(text)

    def _close(self, code: int, reason: str) -> list[Action]:
        """Close; frames already queued are still written before the close frame,
        except on 4008 (the client is not reading them) and 4010 (the session may
        no longer see them). Sends not yet acked get no ack (docs/protocol.md)."""
        if self.closed is not None:
            return []
        self.closed = Close(code, reason)
        if code in _DROP_QUEUED:
            self._outbox.clear()
        self._subs.clear()
        self._pending.clear()
        return [self.closed]

    def close(self, code: int, reason: str) -> list[Action]:
        """The server ends the connection (session revoked 4010, restart 1012, ...)."""
        return self._close(code, reason)

    # --- connection ---------------------------------------------------------------

    def connected(self) -> list[Action]:
        """Queue ``hello``: call once, right after the websocket is accepted."""
        p = self.principal
        actions: list[Action] = []
        self._emit(hello_frame(p.kind, p.id, p.display_name, self.limits), actions)
        return actions

    def receive_bytes(self, data: bytes) -> list[Action]:
        """Binary frames are not part of protocol v1."""
        if self.closed is not None:
            return []
        if len(data) > self.limits.max_frame_bytes:
            return self._close(CLOSE_FRAME_TOO_BIG, "frame too big")
        return self._close(CLOSE_PROTOCOL, "binary frames are not allowed")

    def receive_text(self, text: str) -> list[Action]:
        """One client frame; never raises: answers an ``error`` frame or closes."""
        if self.closed is not None:
            return []
        # UTF-8 is at least one byte per character: only encode when it could matter.
        if len(text) > self.limits.max_frame_bytes or (
            len(text) * 4 > self.limits.max_frame_bytes
            and len(text.encode("utf-8", "surrogatepass")) > self.limits.max_frame_bytes
        ):
            return self._close(CLOSE_FRAME_TOO_BIG, "frame too big")
        actions: list[Action] = []
        try:
            frame = parse_client_frame(text, self.limits)
        except FrameError as exc:
            self._bad_frames += 1
            # Every malformed frame is answered, the one that ends the connection too.
            self._emit(error_frame(exc.frame_id, exc.error), actions)
            if self._bad_frames >= self.limits.max_bad_frames:
                actions.extend(self._close(CLOSE_PROTOCOL, "too many bad frames"))
            return actions
        except Exception:
            # A parser bug must cost the client one frame, not the connection.
            log.exception("unexpected error parsing a client frame")
            self._emit(error_frame(None, RtPortalError("internal error")), actions)
            return actions
        self._bad_frames = 0
        if isinstance(frame, Subscribe):
            self._on_subscribe(frame, actions)
        elif isinstance(frame, Unsubscribe):
            self._on_unsubscribe(frame, actions)
        elif isinstance(frame, Send):
            self._on_send(frame, actions)
        elif isinstance(frame, Ping):
            self._emit(pong_frame(frame.id), actions)
        return actions

    # --- subscribe / unsubscribe ------------------------------------------------

    def _on_subscribe(self, frame: Subscribe, actions: list[Action]) -> None:
        for req in frame.subs:
            if req.matter in self._subs:
                err: RtPortalError = Conflict("already subscribed to this matter")
                self._emit(error_frame(frame.id, err, req.matter), actions)
                continue
            if len(self._subs) >= self.limits.max_subscriptions:
                err = RateLimited(f"at most {self.limits.max_subscriptions} subscriptions")
                self._emit(error_frame(frame.id, err, req.matter), actions)
                continue
            token = self._next_token
            self._next_token += 1
            self._subs[req.matter] = _Sub(token, req.matter, frame.id, req.after)
            actions.append(Authorize(token, req.matter, req.after))

    def _on_unsubscribe(self, frame: Unsubscribe, actions: list[Action]) -> None:
        for matter in frame.matters:
            if self._subs.pop(matter, None) is not None:
                actions.append(Leave(matter))
        self._emit(unsubscribed_frame(frame.id, frame.matters), actions)

    def _current(self, token: int, matter: str) -> _Sub | None:
        sub = self._subs.get(matter)
        return sub if sub is not None and sub.token == token else None

    def subscribed(self, token: int, matter: str, matter_id: int, head: int) -> list[Action]:
        """Access granted and the hub joined; ``head`` is the matter's head after the join."""
        if self.closed is not None:
            return []
        sub = self._current(token, matter)
        if sub is None:
            # Unsubscribed meanwhile. Leave only if no newer subscription shares the join.
            return [] if matter in self._subs else [Leave(matter)]
        actions: list[Action] = []
        sub.matter_id = matter_id
        if sub.after > head or head - sub.after > self.limits.backlog_limit:
            reason = "cursor_ahead" if sub.after > head else "cursor_too_old"
            del self._subs[matter]
            self._emit(resync_frame(sub.frame_id, matter, sub.after, head, reason), actions)
            actions.append(Leave(matter))
            return actions
        self._emit(subscribed_frame(sub.frame_id, matter, head), actions)
        self._load(sub, actions)
        return actions

    def subscribe_failed(self, token: int, matter: str, error: RtPortalError) -> list[Action]:
        """Access denied (``NotFound``) or the database failed (``Unavailable``)."""
        if self.closed is not None:
            return []
        sub = self._current(token, matter)
        if sub is None:
            return [] if matter in self._subs else [Leave(matter)]
        del self._subs[matter]
        actions: list[Action] = [Leave(matter)]
        self._emit(error_frame(sub.frame_id, error, matter), actions)
        return actions

    def _load(self, sub: _Sub, actions: list[Action]) -> None:
        sub.state = "loading"
        actions.append(LoadBacklog(sub.token, sub.matter, sub.matter_id, sub.after, self._page))

    def backlog_loaded(
        self, token: int, matter: str, events: Sequence[StoredEvent]
    ) -> list[Action]:
        """Events with seq > the requested ``after``, in order, at most the requested limit."""
        if self.closed is not None:
            return []
        sub = self._current(token, matter)
        if sub is None or sub.state != "loading":
            return []
        actions: list[Action] = []
        more = len(events) >= self._page
        for event in events:
            if event.seq <= sub.after:
                continue
            if event.seq != sub.after + 1:
                more = True  # the log has no gaps: never skip a seq, read again instead
                break
            self._send_event(sub, event, actions)
            if self.closed is not None:
                return actions
        if more or sub.overflow:
            # More may exist than one page, or live events were dropped from a full
            # buffer: read on from the database (they are all committed there).
            sub.overflow = False
            sub.buffer.clear()
            self._load(sub, actions)
            return actions
        sub.state = "live"
        buffered, sub.buffer = sub.buffer, []
        for event in buffered:
            outcome = self._live(sub, event, actions)
            if self.closed is not None or outcome == "ended":
                return actions  # closed, or ended by a resync
            if outcome == "loading":
                # A gap started another load: keep what is still ahead buffered.
                sub.buffer = [e for e in buffered if e.seq > sub.after]
                return actions
        return actions

    def backlog_failed(self, token: int, matter: str, error: RtPortalError) -> list[Action]:
        """The backlog read failed: the subscription ends with an ``error`` frame."""
        return self.subscribe_failed(token, matter, error)

    # --- live events ----------------------------------------------------------------

    def deliver(self, event: StoredEvent) -> list[Action]:
        """A live event from the hub (in seq order per matter, maybe repeated)."""
        if self.closed is not None:
            return []
        sub = self._subs.get(event.matter)
        if sub is None:
            return []
        actions: list[Action] = []
        if sub.state != "live":
            if event.seq > sub.after:
                if len(sub.buffer) >= self._buffer_max:
                    sub.overflow = True  # reload from the database once the backlog is in
                    sub.buffer.clear()
                else:
                    sub.buffer.append(event)
            return actions
        self._live(sub, event, actions)
        return actions

    def _live(
        self, sub: _Sub, event: StoredEvent, actions: list[Action]
    ) -> Literal["live", "loading", "ended"]:
        if event.seq <= sub.after:
            return "live"  # duplicate (already in the backlog, or a repeated delivery)
        if event.seq == sub.after + 1:
            self._send_event(sub, event, actions)
            return "live"
        if event.seq - sub.after > self.limits.backlog_limit:
            del self._subs[sub.matter]
            frame = resync_frame(None, sub.matter, sub.after, event.seq, "gap_too_large")
            self._emit(frame, actions)
            actions.append(Leave(sub.matter))
            return "ended"
        sub.buffer = [event]
        self._load(sub, actions)
        return "loading"

    def _send_event(self, sub: _Sub, event: StoredEvent, actions: list[Action]) -> None:
        sub.after = event.seq
        text = self.cache.frame(event, self.principal, self._cls)
        if text:
            self._emit(text, actions)

    # --- sends ---------------------------------------------------------------------

    def _on_send(self, frame: Send, actions: list[Action]) -> None:
        pending = self._pending.get(frame.id)
        if pending is not None:
            if pending.send.fingerprint() != frame.fingerprint():
                err: RtPortalError = Conflict("id is in use by another send")
                self._emit(error_frame(frame.id, err), actions)
            else:
                pending.waiters += 1  # a retry while the first is in flight: one append
            return
        if len(self._pending) >= self.limits.max_inflight_sends:
            err = RateLimited(f"at most {self.limits.max_inflight_sends} unanswered sends")
            self._emit(error_frame(frame.id, err), actions)
            return
        self._pending[frame.id] = _Pending(frame)
        actions.append(
            Append(frame.id, frame.matter, frame.kind, frame.audience, frame.payload, frame.blob)
        )

    def appended(self, request_id: str, event: StoredEvent, created: bool) -> list[Action]:
        """The append committed (``created``) or matched an earlier send with this id."""
        if self.closed is not None:
            return []
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return []
        actions: list[Action] = []
        for i in range(pending.waiters):
            duplicate = not created or i > 0
            ack = Ack(request_id, event.matter, event.seq, duplicate)
            self._emit(ack_frame(ack), actions)
        return actions

    def failed(self, request_id: str, error: RtPortalError) -> list[Action]:
        """The append failed with a stable error; nothing was written."""
        if self.closed is not None:
            return []
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return []
        actions: list[Action] = []
        for _ in range(pending.waiters):
            self._emit(error_frame(request_id, error), actions)
        return actions

    # --- introspection (endpoint, tests) ----------------------------------------------

    def wants(self, matter: str) -> bool:
        """Whether any subscription of ``matter`` exists (authorising, loading or live)."""
        return matter in self._subs

    def is_current(self, token: int, matter: str) -> bool:
        """Whether ``token`` is still the subscription of ``matter`` (not unsubscribed)."""
        return self._current(token, matter) is not None

    def subscriptions(self) -> dict[str, int]:
        """Matter -> last seq handed to the client, for active subscriptions."""
        return {m: s.after for m, s in self._subs.items()}
