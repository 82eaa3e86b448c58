"""The transport-independent half of a websocket connection (``ConnectionCore``).

Thin on purpose: every decision about frames lives in ``rtportal.ws.protocol``.
``ConnectionCore`` executes the protocol core's I/O requests, the same for
every transport (``rtportal.ws.native`` on uvicorn, ``rtportal.ws.endpoint``
on any ASGI server):

* access checks (``can_access``: at subscribe, and at the first send to a
  matter; the decision is then cached per connection and held on the hub,
  see ``ConnectionCore._matter``), hub joins and backlog reads;
* activity on a session with an idle timeout (sends, subscribes) recorded
  at most once a minute (``rtportal.access.sessions.touch``);
* appends through the worker's ``GroupCommit`` (no access query per send):
  **commit**, then ``hub.publish``, then ack;
* read marks, typing and the hub's ephemeral frames (``rtportal.ws.threadcore``);
* backlog pacing: a backlog page is read only once the connection's unsent
  bytes are at most ``settings.ws_backlog_low_water`` (``_until_writable``),
  so a client that does not read holds at most about one page.

Every exception is mapped at this boundary: a client sees an ``error``
frame with a stable code or a documented close code, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from rtportal import closecodes, logs
from rtportal.access import membership
from rtportal.access.sessions import TOUCH_INTERVAL, authenticate, touch
from rtportal.db.models import Matter
from rtportal.errors import NotFound, RateLimited, Unauthenticated
from rtportal.events import log as stream
from rtportal.events.commitparts import Outcome
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.runtime import Runtime
from rtportal.settings import Settings
from rtportal.ws.admission import as_error
from rtportal.ws.frames import Limits
from rtportal.ws.protocol import (
    Action,
    Append,
    Authorize,
    Close,
    Heartbeat,
    Leave,
    LoadBacklog,
    Protocol,
)
from rtportal.ws.threadcore import ThreadIO
from rtportal.ws.threadproto import MarkRead, RelayTyping

__all__ = [
    "CLOSE_TIMEOUT",
    "ConnectionCore",
    "backlog_low_water",
    "limits_from_settings",
]

log = logging.getLogger("rtportal.ws")

# Seconds a closing connection has to finish its close (the client to take
# and answer our close frame) before both transports drop it.
CLOSE_TIMEOUT = 5.0
_DB_CONCURRENCY = 4  # database operations in flight per connection (the pool is shared)
_DENIED_LOG_INTERVAL = 10.0  # seconds between subscribe_denied lines of one connection
_ACCESS_CACHE_MAX = 256  # matters remembered per connection


@functools.lru_cache(maxsize=8)
def limits_from_settings(settings: Settings) -> Limits:
    """The ``Limits`` of ``settings``: one shared (frozen) object per settings,
    not one per connection."""
    return Limits(
        max_frame_bytes=settings.ws_max_frame_bytes,
        max_payload_bytes=settings.event_payload_max,
        max_blob_bytes=settings.event_blob_max,
        backlog_limit=settings.backlog_limit,
        send_queue=settings.ws_send_queue,
        send_queue_bytes=settings.ws_send_buffer_max,
        # A page written at the low-water mark stays within ws_send_buffer_max.
        backlog_page_bytes=min(settings.backlog_page_bytes, settings.ws_send_buffer_max // 4),
        write_rate=settings.write_rate,
        write_burst=settings.write_burst,
    )


def backlog_low_water(settings: Settings) -> int:
    """The backlog low-water mark in effect: at most a quarter of ``ws_send_buffer_max``.

    With the page bound (also at most a quarter), a backlog page written at
    the mark leaves room under the limit: a backlog never causes a 4008.
    """
    return min(settings.ws_backlog_low_water, settings.ws_send_buffer_max // 4)


class ConnectionCore(ThreadIO):
    """What every transport shares: a ``Protocol`` core plus the I/O it asks for.

    The hub ``Listener`` (``principal``, ``deliver``, ``close``): ``deliver``
    and ``close`` run the core synchronously and never await. A transport
    subclass moves the frames (``_frames_ready``) and ends the connection
    (``_close_requested``); the core's I/O requests (access checks, hub
    joins, backlog reads, appends) are executed here, the same for both.

    Kept small (thousands are idle at once): ``__slots__``, locks and
    containers created on first use.
    """

    __slots__ = (
        "_access",
        "_appending",
        "_backlog_lock",
        "_close",
        "_db_slots",
        "_denied",
        "_drain_waiter",
        "_ended",
        "_hub_lock",
        "_joined",
        "_tasks",
        "_touch_due",
        "committer",
        "conn_id",
        "db",
        "hub",
        "limits",
        "principal",
        "proto",
        "reads",
        "settings",
    )

    def __init__(self, principal: Principal, runtime: Runtime, conn_id: str) -> None:
        settings = runtime.settings
        self.conn_id = conn_id  # in this connection's log lines
        self.committer = runtime.committer
        self.principal = principal
        self.settings = settings
        self.db = runtime.db
        self.hub = runtime.hub
        self.limits = runtime.limits
        self.reads = runtime.reads  # the worker's byte budget of page reads
        self.proto = Protocol(principal, limits_from_settings(settings), runtime.frames)
        self._close: Close | None = None
        self._joined: dict[str, int] | None = None  # matter ref -> matter id joined on the hub
        self._hub_lock: asyncio.Lock | None = None  # orders joins and leaves of this connection
        # (next loop time a subscribe_denied line may be logged, denials not logged since)
        self._denied: tuple[float, int] | None = None
        # One backlog page in flight per connection (see _load).
        self._backlog_lock: asyncio.Lock | None = None
        self._db_slots: asyncio.Semaphore | None = None  # _DB_CONCURRENCY operations in flight
        # Sends of this connection in the group commit (see _submit).
        self._appending = 0
        self._ended = False  # cancel_tasks ran: the connection is over
        self._tasks: set[asyncio.Task[None]] | None = None
        # Backlog reads waiting for the unsent bytes to drain (see _until_writable).
        self._drain_waiter: asyncio.Future[None] | None = None
        # matter ref -> Matter this connection was authorised for; see _matter().
        self._access: dict[str, Matter] | None = None
        # Loop time after which activity is next recorded on an idle-timeout session.
        self._touch_due = 0.0

    @property
    def principal_label(self) -> str:
        """``kind:id`` of the principal, for log lines."""
        return f"{self.principal.kind}:{self.principal.id}"

    # --- Listener ---------------------------------------------------------------

    def deliver(self, event: StoredEvent) -> None:
        self.feed(self.proto.deliver(event))

    def close(self, code: int) -> None:
        self.feed(self.proto.close(code, closecodes.reason(code) or "closed"))

    # --- transport hooks ----------------------------------------------------------

    def _frames_ready(self) -> None:
        """``proto`` has frames queued: write them (``proto.take_frames``)."""
        raise NotImplementedError

    def _close_requested(self, close: Close) -> None:
        """The core ended the connection: send ``close`` and stop."""
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        """Requests of this connection being executed or waiting (sends,
        subscribes, reads)."""
        n = len(self._tasks) if self._tasks else 0
        return n + self._appending

    def _in_flight_changed(self) -> None:
        """``in_flight`` went up or down (the native transport pauses input)."""

    def _backlogged(self) -> bool:
        """Whether the unsent bytes are above the low-water mark (backlog reads wait).

        This transport-independent version counts the core's outbox; a
        transport that buffers itself counts its buffer too and calls
        ``writable`` when it drains.
        """
        return self.proto.queued_bytes > backlog_low_water(self.settings)

    def writable(self) -> None:
        """The transport wrote: wake the backlog reads if the unsent bytes are low again."""
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done() and not self._backlogged():
            self._drain_waiter = None
            waiter.set_result(None)

    async def _until_writable(self) -> None:
        """Return once the unsent bytes are at most the low-water mark (backlog pacing)."""
        while self._backlogged():
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
            await waiter

    def cancel_tasks(self) -> list[asyncio.Task[None]]:
        """The connection is over: cancel its requests (a send already in the
        group commit is still committed and published; its ack is dropped)."""
        self._ended = True
        tasks = list(self._tasks or ())
        for task in tasks:
            task.cancel()
        return tasks

    async def leave_all(self) -> None:
        """Leave every joined matter and unregister from the hub (the connection is over)."""
        joined = self._joined
        self._joined = None
        for matter_id in list((joined or {}).values()):
            with contextlib.suppress(Exception):
                await self.hub.leave(matter_id, self)
        self._forget_all()
        self.hub.unregister(self)

    async def finish(self) -> None:
        """The transport is gone: cancel the requests, wait for them, leave the hub."""
        for task in self.cancel_tasks():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.leave_all()

    # --- executing the core's requests --------------------------------------------

    def feed(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Close):
                if action.code == closecodes.CLOSE_SLOW:
                    logs.event(
                        log,
                        "slow_consumer",
                        logging.WARNING,
                        conn=self.conn_id,
                        principal=self.principal_label,
                        code=closecodes.CLOSE_SLOW,
                    )
                self._close = action
                self._close_requested(action)
            elif isinstance(action, Append):
                self._queue_append(action)
            elif isinstance(action, LoadBacklog):
                self._spawn(self._load(action))
            elif isinstance(action, Authorize):
                if self.principal.session_idle:
                    self._active()
                self._spawn(self._authorize(action))
            elif isinstance(action, Leave):
                self._spawn(self._leave(action.matter))
            elif isinstance(action, Heartbeat):
                if self.principal.session_idle:
                    self._active()  # an open page that only reads is active too
            elif isinstance(action, (MarkRead, RelayTyping)):
                if self.principal.session_idle:
                    self._active()
                self._spawn(self._thread_task(action))  # rtportal.ws.threadcore
        if self.proto.queued:
            self._frames_ready()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._in_flight_changed()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        self._in_flight_changed()

    def _hub_guard(self) -> asyncio.Lock:
        if self._hub_lock is None:
            self._hub_lock = asyncio.Lock()
        return self._hub_lock

    def _slots(self) -> asyncio.Semaphore:
        if self._db_slots is None:
            self._db_slots = asyncio.Semaphore(_DB_CONCURRENCY)
        return self._db_slots

    # --- the access cache -----------------------------------------------------------

    def _matter(self, ref: str) -> Matter | None:
        """The Matter this connection was authorised for, if it was.

        Why a cache is safe: access is checked once per connection and
        matter (at ``subscribe`` or the first ``send``) and the decision is
        then held on the hub (``hub.hold``). Losing access ends the
        connection on every worker at once: a removal closes the
        connections holding that matter (``hub.close_access``, 4011), a
        revocation those of the session or principal
        (``hub.close_principal``), and the hub's re-check of sessions and
        held memberships catches a lost control message.
        """
        access = self._access
        return None if access is None else access.get(ref)

    def _remember(self, ref: str, matter: Matter) -> None:
        if self._ended:
            return  # the connection is over: nothing to hold
        if self._access is None:
            self._access = {}
        elif len(self._access) >= _ACCESS_CACHE_MAX and ref not in self._access:
            self._forget_all()  # bounded; a miss only costs one query
            self._access = {}
        if ref not in self._access:
            self.hub.hold(matter.id, self)
        self._access[ref] = matter

    def _forget(self, ref: str) -> None:
        matter = self._access.pop(ref, None) if self._access is not None else None
        if matter is not None:
            self.hub.release(matter.id, self)

    def _forget_all(self) -> None:
        access = self._access
        self._access = None
        for matter in (access or {}).values():
            self.hub.release(matter.id, self)

    def _closes(self) -> int:
        """The hub's count of closes applied to this principal (see ``hub.closes``)."""
        return self.hub.closes(self.principal.kind, self.principal.id)

    def registered(self, token: str | None, closes: int) -> None:
        """The transport registered this connection on the hub after signing in.

        ``closes`` is ``hub.closes_total()`` read before ``sign_in``: if a
        close was applied since, a logout may have landed between the check
        and the registration, reaching nobody: the session is checked again.
        """
        if self.hub.closes_total() != closes:
            self._spawn(self._recheck_session(token))

    async def _recheck_session(self, token: str | None) -> None:
        try:
            async with self.db.read() as session:
                await authenticate(session, self.settings.secret_key, token)
        except Unauthenticated:
            self.close(closecodes.CLOSE_REVOKED)
        except Exception:
            log.warning("re-checking a new connection's session failed", exc_info=True)

    def _active(self) -> None:
        """A client action on a session with an idle timeout: record it, once a minute."""
        now = asyncio.get_running_loop().time()
        sid = self.principal.session_id
        if now >= self._touch_due and sid is not None:
            self._touch_due = now + TOUCH_INTERVAL.total_seconds()
            self._spawn(self._touch(sid))

    async def _touch(self, session_id: str) -> None:
        try:
            # Shielded from the connection's end, as a read mark's write is
            # (rtportal.ws.threadcore): the activity happened, so it is recorded.
            await asyncio.shield(touch(self.db, session_id))
        except Exception:
            log.warning("recording session activity failed", exc_info=True)

    async def _leave(self, matter: str) -> None:
        try:
            async with self._hub_guard():
                if self.proto.wants(matter):
                    return  # a newer subscription of this matter shares the join
                matter_id = self._joined.pop(matter, None) if self._joined else None
                if matter_id is not None:
                    await self.hub.leave(matter_id, self)
        except Exception:
            log.exception("hub.leave failed")

    async def _authorize(self, action: Authorize) -> None:
        try:
            async with self._slots():
                closes = self._closes()
                # Always checked against the database at subscribe (never cached).
                async with self.db.read() as session:
                    matter, sees = await membership.can_view(session, self.principal, action.matter)
                    matter_id = matter.id
                self._remember(action.matter, matter)
                async with self._hub_guard():
                    if not self.proto.is_current(action.sub, action.matter):
                        return  # unsubscribed meanwhile: do not join
                    hub_head = await self.hub.join(matter_id, self)
                    if self._joined is None:
                        self._joined = {}
                    self._joined[action.matter] = matter_id
                if self._closes() != closes:
                    # A removal may have been applied between the check and
                    # the hold, reaching nobody: check again, now held.
                    try:
                        async with self.db.read() as session:
                            await membership.can_access(session, self.principal, action.matter)
                    except NotFound:
                        # As a removal after the hold would: close (4011).
                        self.close(closecodes.CLOSE_ACCESS_REMOVED)
                        return
                # Read after the join: every event after this head arrives live.
                async with self.db.read() as session:
                    db_head = await stream.head(session, matter_id)
            head = max(hub_head, db_head)
            self.feed(self.proto.subscribed(action.sub, action.matter, matter_id, head, sees))
        except Exception as exc:
            self._forget(action.matter)
            err = as_error(exc, "subscribe")
            denied = err.code == "not_found"  # no such matter for this principal
            if not denied:
                logs.event(
                    log,
                    "subscribe_failed",
                    conn=self.conn_id,
                    principal=self.principal_label,
                    matter=action.matter,
                    code=err.code,
                )
            elif (unlogged := self._unlogged_denials()) is not None:
                logs.event(
                    log,
                    "subscribe_denied",
                    logging.WARNING,
                    conn=self.conn_id,
                    principal=self.principal_label,
                    matter=action.matter,
                    code=err.code,
                    unlogged=unlogged,
                )
            self.feed(self.proto.subscribe_failed(action.sub, action.matter, err))

    def _unlogged_denials(self) -> int | None:
        """A denied subscribe: ``None`` if it is not logged (at most one line
        per connection per ``_DENIED_LOG_INTERVAL``; it is counted), else how
        many were not logged since the previous line."""
        now = asyncio.get_running_loop().time()
        denied = self._denied
        if denied is not None and now < denied[0]:
            self._denied = (denied[0], denied[1] + 1)
            return None
        self._denied = (now + _DENIED_LOG_INTERVAL, 0)
        return denied[1] if denied else 0

    async def _load(self, action: LoadBacklog) -> None:
        # One page at a time per connection: wait for room, read, queue the
        # page, then let the next read check the room again (several
        # subscriptions' backlogs never pass the check together).
        if self._backlog_lock is None:
            self._backlog_lock = asyncio.Lock()
        try:
            async with self._backlog_lock:
                await self._until_writable()
                # The page's byte bound is reserved from the worker's budget
                # until its frames are queued (rtportal.bytebudget).
                async with self.reads.hold(action.max_bytes):
                    async with self._slots(), self.db.read() as session:
                        events = await stream.read_since(
                            session, action.matter_id, action.after, action.limit, action.max_bytes
                        )
                    self.feed(self.proto.backlog_loaded(action.sub, action.matter, events))
        except Exception as exc:
            err = as_error(exc, "backlog read")
            self.feed(self.proto.backlog_failed(action.sub, action.matter, err))

    # Sends: no task per send, no wait for the previous ack. Each goes to the
    # group commit as it arrives; the group commit calls ``_appended`` back
    # once it is committed and published. A connection's sends keep their
    # order (seqs and acks): the group commit gives a matter's sends their
    # seqs in queue order (two batches in flight never hold the same matter)
    # and answers one principal's sends in queue order. Not waiting
    # for the ack matters: the next batch forms while one commits, so a
    # client that pipelines sends is not held to one per commit round trip.

    def _queue_append(self, action: Append) -> None:
        try:
            self.limits.check_write(self.principal)
        except RateLimited as err:  # the user's write rate: refused, nothing written
            self.feed(self.proto.failed(action.request_id, err))
            return
        if self.principal.session_idle:
            self._active()
        self._appending += 1
        send = action.send
        cached = self._matter(send.matter)
        # Round trips per send: its share of one group-commit transaction; no
        # access query while the cached decision is fresh (see _matter).
        self.committer.submit(
            self.principal,
            send,
            cached,
            functools.partial(
                self._appended, action, None if cached is not None else self._closes()
            ),
        )
        self._in_flight_changed()

    def _appended(
        self,
        action: Append,
        checked: int | None,
        outcome: Outcome | None,
        exc: BaseException | None,
    ) -> None:
        """The group commit answered a send; ``checked`` is ``hub.closes`` read
        before the commit checked access (``None``: the cached access was used)."""
        self._appending -= 1
        request_id = action.request_id
        if not self._ended:  # else nobody to ack (the event is committed all the same)
            if outcome is not None:
                event, created, matter = outcome
                # Checked by the commit just now: cached unless a removal may have
                # been applied since the check, before this hold (the next send
                # is then checked again).
                if checked is not None and checked == self._closes():
                    self._remember(action.send.matter, matter)
                self.feed(self.proto.appended(request_id, event, created))
            else:
                if isinstance(exc, NotFound):
                    self._forget(action.send.matter)
                err = as_error(exc or RuntimeError("no outcome"), "append")
                self.feed(self.proto.failed(request_id, err))
        self._in_flight_changed()
