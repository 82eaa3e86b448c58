"""Sans-I/O state machine of one websocket connection (protocol v2, ``docs/protocol.md``).

No sockets, no database, no clock (typing's rate reads ``clock``, injected):
the endpoint feeds inputs (client text, database results, live events and
ephemeral frames from the hub) and executes what comes out.

* Frames for the client accumulate in a bounded outbox; the endpoint's
  writer drains it with ``take_frames``. When the outbox would exceed
  ``limits.send_queue`` frames or ``limits.send_queue_bytes`` the
  connection is a slow consumer: the outbox is dropped and ``Close(4008)``
  is returned. Fan-out therefore never waits.
* I/O requests are returned as a list of actions (``Authorize``,
  ``LoadBacklog``, ``Leave``, ``Append``, ``Close``); their results come back
  through ``subscribed``/``subscribe_failed``, ``backlog_loaded``/
  ``backlog_failed`` and ``appended``/``failed``.

Per subscription the machine owns the backlog/live seam: ``after`` is the
last seq handed to the client (or skipped because the viewer may not see
it). While the subscription is being authorised or its backlog loaded,
live events are buffered (bounded in count and bytes; on overflow they are
dropped and read again from the database); afterwards the backlog is emitted, then
the buffer through the same live path, which drops ``seq <= after``
(duplicates) and turns ``seq > after + 1`` (a gap) into another backlog
load, or a ``resync`` when the gap is larger than ``backlog_limit``.

The client's first frame must be its ``hello`` with a supported version;
anything else is answered ``protocol_version`` and closed (4006). Contacts
never see a seq: every cursor of theirs, in and out, goes through the
cursor codec (``rtportal.events.cursor``), and they get no resync that
counts events they may not see (``cursor_too_old``, ``gap_too_large``):
their backlog is read on from the database instead (it is paced anyway).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rtportal.closecodes import (
    CLOSE_ACCESS_REMOVED,
    CLOSE_FRAME_TOO_BIG,
    CLOSE_PROTOCOL,
    CLOSE_REVOKED,
    CLOSE_SLOW,
    CLOSE_UNSUPPORTED_VERSION,
)
from rtportal.errors import BadRequest, Conflict, RateLimited, RtPortalError
from rtportal.events.audience import viewer_class
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.realtime import framecache
from rtportal.ws.actions import (
    HEARTBEAT,
    Action,
    Append,
    Authorize,
    Close,
    FrameCache,
    Heartbeat,
    Leave,
    LoadBacklog,
)
from rtportal.ws.frames import (
    SUPPORTED_VERSIONS,
    Ack,
    ClientHello,
    ControlFrameTooBig,
    FrameError,
    Limits,
    Ping,
    Send,
    Subscribe,
    Unsubscribe,
    ack_frame,
    error_frame,
    hello_frame,
    parse_client_frame,
    pong_frame,
    resync_frame,
    subscribed_frame,
    unsubscribed_frame,
    version_error,
)
from rtportal.ws.threadproto import THREAD_FRAMES, ThreadFrames

__all__ = [
    "Action",
    "Append",
    "Authorize",
    "Close",
    "FrameCache",
    "Heartbeat",
    "Leave",
    "LoadBacklog",
    "Protocol",
]

log = logging.getLogger("rtportal.ws")

# Closes that discard the frames still queued (every other close writes them first).
# A top-level or nested ``"type": "send"``: the cheap test a frame over
# max_control_frame_bytes must pass before it is parsed.
_SEND_TYPE_RE = re.compile(r'"type"\s*:\s*"send"')


def _over(text: str, max_bytes: int) -> bool:
    """Whether ``text`` is more than ``max_bytes`` in UTF-8."""
    # UTF-8 is at least one byte per character: only encode when it could matter.
    return len(text) > max_bytes or (
        len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes
    )


_DROP_QUEUED = frozenset({CLOSE_SLOW, CLOSE_REVOKED, CLOSE_ACCESS_REMOVED})


# --- per-subscription and per-send state ----------------------------------------


@dataclass(slots=True)
class _Sub:
    token: int
    matter: str
    frame_id: str
    requested: int | str | None  # the cursor as sent (read at ``subscribed``)
    after: int = 0
    state: Literal["authorizing", "loading", "live"] = "authorizing"
    matter_id: int = 0
    # The highest seq known to be in the database (the head at subscribe, the
    # end of a gap): the backlog is read until ``after`` reaches it.
    known: int = 0
    buffer: list[StoredEvent] = field(default_factory=list)
    buffer_bytes: int = 0  # encoded frame sizes of ``buffer``
    overflow: bool = False
    # The membership sees every applicant's threads (``audience.view_for``).
    see_applicants: bool = False


@dataclass(slots=True)
class _Pending:
    send: Send
    waiters: int = 1


class Protocol(ThreadFrames):
    """The state of one authenticated websocket connection (reads, typing: ``ThreadFrames``)."""

    def __init__(
        self,
        principal: Principal,
        limits: Limits | None = None,
        cache: framecache.FrameCache | None = None,
    ) -> None:
        self.principal = principal
        self.limits = limits or Limits()
        self.cache = cache if cache is not None else FrameCache(size=256)
        self.cursors = self.cache.cursors
        self._cls = viewer_class(principal)
        self._staff = self._cls == "staff"
        self.version: int | None = None  # said by the client's hello
        # A list, not a deque: an empty deque costs ~600 bytes per idle
        # connection, and the outbox is drained whole (take_frames).
        self._outbox: list[str] = []
        self._queued_bytes = 0  # characters of the frames in the outbox
        self._subs: dict[str, _Sub] = {}
        self._pending: dict[str, _Pending] = {}
        self._next_token = 1
        self._bad_frames = 0
        self.closed: Close | None = None
        # A backlog page never fills the outbox on its own: page size is bounded by it.
        self._page = max(1, min(self.limits.backlog_limit, self.limits.send_queue // 2))
        self._buffer_max = max(1, self.limits.send_queue)
        self._queued_max = self.limits.send_queue_bytes
        self._send_queue = self.limits.send_queue

    # --- outbox -----------------------------------------------------------------

    def take_frames(self, max_frames: int = 64) -> list[str]:
        """Up to ``max_frames`` encoded frames to write, oldest first."""
        outbox = self._outbox
        if len(outbox) <= max_frames:
            self._outbox = []
            self._queued_bytes = 0
            return outbox
        out = outbox[:max_frames]
        del outbox[:max_frames]
        self._queued_bytes -= sum(map(len, out))
        return out

    @property
    def queued(self) -> int:
        return len(self._outbox)

    @property
    def queued_bytes(self) -> int:
        """Size of the frames in the outbox (characters: bytes for ASCII text)."""
        return self._queued_bytes

    def _emit(self, text: str, actions: list[Action]) -> None:
        if self.closed is not None:
            return
        size = self._queued_bytes + len(text)
        outbox = self._outbox
        # An empty outbox takes one frame whatever its size (a limit below
        # the frame size must not end every connection).
        if (size > self._queued_max and outbox) or len(outbox) >= self._send_queue:
            actions.extend(self._close(CLOSE_SLOW, "slow consumer: resume from your cursor"))
            return
        self._queued_bytes = size
        outbox.append(text)

    def _close(self, code: int, reason: str) -> list[Action]:
        """Close; frames already queued are still written before the close frame,
        except on 4008 (the client is not reading them) and 4010 (the session may
        no longer see them). Sends not yet acked get no ack (docs/protocol.md)."""
        if self.closed is not None:
            return []
        self.closed = Close(code, reason)
        if code in _DROP_QUEUED:
            self._outbox.clear()
            self._queued_bytes = 0
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
        if _over(text, self.limits.max_frame_bytes):
            return self._close(CLOSE_FRAME_TOO_BIG, "frame too big")
        # Only a send may be larger than max_control_frame_bytes: a larger
        # frame that does not name type "send" is refused before parsing,
        # and one that does but is another type after parsing (so each such
        # frame costs the client its connection).
        big = _over(text, self.limits.max_control_frame_bytes)
        if big and _SEND_TYPE_RE.search(text) is None:
            return self._close(CLOSE_FRAME_TOO_BIG, "frame too big")
        actions: list[Action] = []
        try:
            frame = parse_client_frame(text, self.limits, send_only=big)
        except ControlFrameTooBig:
            return self._close(CLOSE_FRAME_TOO_BIG, "frame too big")
        except FrameError as exc:
            if exc.error.code == "protocol_version":
                return self._refuse_version(exc.frame_id, actions)
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
        if self.version is None:
            if not isinstance(frame, ClientHello) or frame.v not in SUPPORTED_VERSIONS:
                frame_id = frame.client_id if isinstance(frame, Send) else frame.id
                return self._refuse_version(frame_id, actions)
            self.version = frame.v
            return actions
        if isinstance(frame, ClientHello):
            self._emit(error_frame(frame.id, BadRequest("hello: sent twice")), actions)
        elif isinstance(frame, Subscribe):
            self._on_subscribe(frame, actions)
        elif isinstance(frame, Unsubscribe):
            self._on_unsubscribe(frame, actions)
        elif isinstance(frame, Send):
            self._on_send(frame, actions)
        elif isinstance(frame, Ping):
            self._emit(pong_frame(frame.id), actions)
            actions.append(HEARTBEAT)
        elif isinstance(frame, THREAD_FRAMES):
            self._on_thread_frame(frame, actions)
        return actions

    def _refuse_version(self, frame_id: str | None, actions: list[Action]) -> list[Action]:
        """A client that did not open with a supported ``hello`` (a v1 client):
        tell it which versions are spoken, then close (4006)."""
        self._emit(error_frame(frame_id, version_error()), actions)
        actions.extend(self._close(CLOSE_UNSUPPORTED_VERSION, "unsupported protocol version"))
        return actions

    # --- subscribe / unsubscribe ------------------------------------------------

    def _on_subscribe(self, frame: Subscribe, actions: list[Action]) -> None:
        for req in frame.subs:
            if req.after is not None and isinstance(req.after, str) == self._staff:
                # Staff send seqs, contacts tokens (checked fully at ``subscribed``).
                try:
                    self.cursors.parse(req.after, self._cls, 0)
                except RtPortalError as exc:
                    self._emit(error_frame(frame.id, exc, req.matter), actions)
                    continue
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

    def subscribed(
        self, token: int, matter: str, matter_id: int, head: int, see_applicants: bool = False
    ) -> list[Action]:
        """Access granted and the hub joined; ``head`` is the matter's head after the join;
        ``see_applicants``: the membership's (a client sees every applicant's threads)."""
        if self.closed is not None:
            return []
        sub = self._current(token, matter)
        if sub is None:
            # Unsubscribed meanwhile. Leave only if no newer subscription shares the join.
            return [] if matter in self._subs else [Leave(matter)]
        actions: list[Action] = []
        sub.matter_id = matter_id
        sub.see_applicants = see_applicants
        try:
            sub.after = self.cursors.parse(sub.requested, self._cls, matter_id).after
        except RtPortalError as exc:
            # Checked after access: a matter the viewer may not see is not_found.
            return self.subscribe_failed(token, matter, exc)
        too_old = self._staff and head - sub.after > self.limits.backlog_limit
        if sub.after > head or too_old:
            reason = "cursor_ahead" if sub.after > head else "cursor_too_old"
            del self._subs[matter]
            frame = resync_frame(
                sub.frame_id,
                matter,
                self.cursors.position_for(self._cls, matter_id, sub.after),
                self._head(matter_id, head, reason),
                reason,
            )
            self._emit(frame, actions)
            actions.append(Leave(matter))
            return actions
        wire_head = self.cursors.position_for(self._cls, matter_id, head)
        self._emit(subscribed_frame(sub.frame_id, matter, wire_head), actions)
        sub.known = max(sub.known, head)
        self._load(sub, actions)
        return actions

    def _head(self, matter_id: int, head: int, reason: str) -> int | str | None:
        """A resync's ``head``; none for a contact whose cursor is ahead (a
        restored database): paging to it would re-read what they have."""
        if not self._staff and reason == "cursor_ahead":
            return None
        return self.cursors.position_for(self._cls, matter_id, head)

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
        limits = self.limits
        actions.append(
            LoadBacklog(
                sub.token,
                sub.matter,
                sub.matter_id,
                sub.after,
                self._page,
                limits.backlog_page_bytes,
            )
        )

    def backlog_loaded(
        self, token: int, matter: str, events: Sequence[StoredEvent]
    ) -> list[Action]:
        """Events with seq > the requested ``after``, in order, within the requested limits.

        A page may end before ``limit`` events (its byte bound): reading goes
        on while ``after`` is below the highest seq known to exist.
        """
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
            text = self.cache.frame(event, self.principal, self._cls, sub.see_applicants)
            if text and self._outbox and self._queued_bytes + len(text) > self._queued_max:
                # The outbox is full: a backlog never closes the connection;
                # the rest is read again once the client has drained it.
                more = True
                break
            sub.after = event.seq
            if text:
                self._emit(text, actions)
                if self.closed is not None:
                    return actions
        if events and sub.after < sub.known:
            more = True
        if more or sub.overflow:
            # More may exist than one page, or live events were dropped from a full
            # buffer: read on from the database (they are all committed there).
            sub.overflow = False
            sub.buffer.clear()
            sub.buffer_bytes = 0
            self._load(sub, actions)
            return actions
        sub.state = "live"
        buffered, sub.buffer = sub.buffer, []
        sub.buffer_bytes = 0
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
            if sub.overflow:
                sub.known = max(sub.known, event.seq)  # dropped: read from the database
            elif event.seq > sub.after:
                # Sized by its frame (encoded once per viewer class, then cached).
                size = len(self.cache.frame(event, self.principal, self._cls, sub.see_applicants))
                sub.buffer_bytes += size
                if (
                    len(sub.buffer) >= self._buffer_max
                    or sub.buffer_bytes > self.limits.send_queue_bytes
                ):
                    # Reload from the database once the backlog is in.
                    sub.overflow = True
                    sub.known = max(sub.known, event.seq)
                    sub.buffer.clear()
                    sub.buffer_bytes = 0
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
        if self._staff and event.seq - sub.after > self.limits.backlog_limit:
            # (A contact's gap is read from the database: its size would
            # count events they may not see.)
            del self._subs[sub.matter]
            frame = resync_frame(None, sub.matter, sub.after, event.seq, "gap_too_large")
            self._emit(frame, actions)
            actions.append(Leave(sub.matter))
            return "ended"
        sub.buffer = [event]
        sub.buffer_bytes = 0
        sub.known = max(sub.known, event.seq - 1)
        self._load(sub, actions)
        return "loading"

    def _send_event(self, sub: _Sub, event: StoredEvent, actions: list[Action]) -> None:
        sub.after = event.seq
        text = self.cache.frame(event, self.principal, self._cls, sub.see_applicants)
        if text:
            self._emit(text, actions)

    # --- sends ---------------------------------------------------------------------

    def _on_send(self, frame: Send, actions: list[Action]) -> None:
        rid = frame.client_id or ""  # always set by the frame parser (the frame's id)
        pending = self._pending.get(rid)
        if pending is not None:
            if pending.send.fingerprint() != frame.fingerprint():
                err: RtPortalError = Conflict("id is in use by another send")
                self._emit(error_frame(rid, err), actions)
            else:
                pending.waiters += 1  # a retry while the first is in flight: one append
            return
        if len(self._pending) >= self.limits.max_in_flight:
            # A transport stops reading at max_in_flight requests, so this
            # bounds the core only when driven without one (sans-I/O).
            err = RateLimited(f"at most {self.limits.max_in_flight} unanswered sends")
            self._emit(error_frame(rid, err), actions)
            return
        self._pending[rid] = _Pending(frame)
        actions.append(Append(frame))

    def _settle(self, request_id: str) -> int:
        """Forget a pending send; how many frames wait for its answer (0 once closed)."""
        if self.closed is not None:
            return 0
        pending = self._pending.pop(request_id, None)
        return 0 if pending is None else pending.waiters

    def appended(self, request_id: str, event: StoredEvent, created: bool) -> list[Action]:
        """The append committed (``created``) or matched an earlier send with this id."""
        waiters = self._settle(request_id)
        actions: list[Action] = []
        for i in range(waiters):
            duplicate = not created or i > 0
            cursor = self.cursors.cursor_for(self._cls, event.matter_id, event.seq)
            ack = Ack(request_id, event.matter, cursor, duplicate)
            self._emit(ack_frame(ack), actions)
        return actions

    def failed(self, request_id: str, error: RtPortalError) -> list[Action]:
        """The append failed with a stable error; nothing was written."""
        waiters = self._settle(request_id)
        actions: list[Action] = []
        for _ in range(waiters):
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
