"""Per-worker fan-out: broker messages in, ordered gapless events out to listeners.

One ``Hub`` per worker process. It keeps ``matter_id -> listeners`` (the
live websocket connections of this worker), holds **one** broker
subscription per matter (subscribed on the first listener, dropped with the
last) and the seq it has delivered up to (``last``) per matter.

Why each piece exists (docs/delivery.md has the full story):

* The broker is at-most-once. A message ``seq > last + 1`` reveals a gap:
  the hub waits a few ms for the stragglers (Redis may deliver a slow
  publisher's message late), then reads the missing range from the database
  **once per matter per worker** (concurrent gap fills of one matter
  coalesce into one task), and fans out in order.
* ``on_reset`` (the broker reconnected) and the safety poll (every
  ``settings.hub_poll_interval`` s, one query per 500 subscribed matters for
  their heads) catch the loss nothing later would reveal: the last message
  before a quiet period.
* ``seq <= last`` is a duplicate (the echo of our own publish, a repeated
  delivery) and is dropped before the event is even rebuilt.
* Fan-out calls ``listener.deliver(event)`` which never blocks; the hub
  encodes nothing per listener and reads nothing per listener: O(listeners)
  per event.

A listener joined at ``head = await hub.join(matter_id, listener)`` then
receives every event with ``seq > head`` of that matter, in seq order,
without gaps, until ``leave`` (or until the hub closes it).

The ``ctl`` topic carries control messages: ``close_principal`` makes every
worker call ``listener.close(code)`` on the listeners of that principal
(used when a client is removed or their login is regenerated). Being on the
broker, that message is at-most-once too, so the hub also re-checks the
login sessions of its listeners against the tokens table and closes those
whose session is revoked or expired with 4010; the same re-checks close
contacts and bots joined to a matter they are no longer an active member of
(access is otherwise checked at subscribe and send). After a broker reset
everything is re-checked. The safety poll re-checks one slice of it: the
sessions and (matter, principal) pairs are kept in ``RECHECK_SLICES`` (5)
hash slices, updated on register/join/leave rather than rebuilt, and poll
``n`` re-checks slice ``n % 5``; so each is re-checked once every 5 polls
(a lost revocation is acted on within 5 poll intervals, 10 s by default)
at a fifth of the cost. Every pass runs as small queries (250 ids) with a
loop turn between them, so the deliveries in flight never wait behind a
poll for more than a few ms (bench/hub_poll_cost.py measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from rtportal import jsonlimits, wirejson
from rtportal.access.sessions import live_sessions
from rtportal.closecodes import CLOSE_INTERNAL, CLOSE_RESTART, CLOSE_REVOKED
from rtportal.errors import BadRequest, Unavailable
from rtportal.events import log as stream
from rtportal.events.log import StoredEvent
from rtportal.principal import Principal
from rtportal.realtime.broker.base import Broker
from rtportal.realtime.message import (
    CTL_TOPIC,
    encode_event_message,
    matter_topic,
    peek_event_message,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = [
    "RECHECK_SLICES",
    "Hub",
    "Listener",
]

log = logging.getLogger("rtportal.realtime.hub")

_K = TypeVar("_K")
_Pair = tuple[int, str, int]  # (matter id, principal kind, principal id)


_GAP_WAIT = 0.02  # seconds to wait for an out-of-order message before reading the database
_FILL_PAGE = 500  # events per database read while filling a gap
_PENDING_MAX = 1000  # out-of-order events kept per matter; beyond, re-read from the database
# Chunk sizes of the safety poll's queries. Each id in an IN list costs the
# event loop ~5-10 us to render and read back (SQLAlchemy expands IN lists
# per execution), so these bound the longest synchronous stretch of a poll
# to a few ms; the loop turns over between chunks (bench/hub_poll_cost.py).
_HEADS_CHUNK = 500  # matter ids per heads query
_SESSIONS_CHUNK = 250  # session ids per revocation re-check query
_MEMBERS_CHUNK = 250  # (matter, principal) pairs per membership re-check query
RECHECK_SLICES = 5  # a periodic poll re-checks 1/RECHECK_SLICES of sessions and memberships
_RECENT_CTL = 256  # ids of our own control messages, to skip their echo


@runtime_checkable
class Listener(Protocol):
    """A live consumer of events (a websocket connection) on this worker.

    ``deliver`` and ``close`` are called on the event loop and must not
    block or await: queue a frame or mark the connection slow/closing.
    """

    @property
    def principal(self) -> Principal: ...

    def deliver(self, event: StoredEvent) -> None: ...

    def close(self, code: int) -> None: ...


def _discard(index: dict[_K, dict[int, Listener]], key: _K, listener_key: int) -> None:
    """Remove one listener from ``index[key]``, and the key when it was the last."""
    group = index.get(key)
    if group is not None:
        group.pop(listener_key, None)
        if not group:
            del index[key]


class _Matter:
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


class Hub:
    """Per-worker fan-out; see the module docstring and docs/delivery.md."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        settings: Settings,
        *,
        gap_wait: float = _GAP_WAIT,
        recheck_slices: int = RECHECK_SLICES,
    ) -> None:
        if recheck_slices < 1:
            raise ValueError("recheck_slices must be >= 1")
        self._db = db
        self._broker = broker
        self._poll_interval = settings.hub_poll_interval
        self._gap_wait = gap_wait
        self._matters: dict[int, _Matter] = {}
        # Every listener joined somewhere (or registered), by principal, with
        # a count of its joins: close_principal must find them all.
        self._by_principal: dict[tuple[str, int], dict[int, Listener]] = {}
        self._refs: dict[int, int] = {}
        # What the safety poll re-checks, kept up to date by _ref/join/leave
        # (not rebuilt per poll) and split into slices by hash: periodic poll
        # n re-checks slice n % recheck_slices, so every session and every
        # (matter, principal) pair is re-checked exactly once per
        # recheck_slices consecutive polls.
        self._slices = recheck_slices
        # slice -> session id -> listeners of that login session
        self._sessions: list[dict[str, dict[int, Listener]]] = [{} for _ in range(recheck_slices)]
        # slice -> (matter, kind, principal id) -> joined contacts/bots
        self._pairs: list[dict[_Pair, dict[int, Listener]]] = [{} for _ in range(recheck_slices)]
        self._polls = 0
        self._recent_ctl: deque[str] = deque(maxlen=_RECENT_CTL)
        self._poll_task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self.gap_reads = 0
        """Database reads made to fill gaps (for tests and metrics)."""

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Install the broker handlers, start the broker, the ctl topic and the poll."""
        self._broker.set_handler(self._on_message, self._on_reset)
        await self._broker.start()
        await self._broker.subscribe(CTL_TOPIC)
        self._running = True
        if self._poll_interval > 0:
            self._poll_task = asyncio.create_task(self._poll_loop(), name="rtportal-hub-poll")

    async def stop(self) -> None:
        """Close every listener with 1012 (reconnect) and stop; the broker stays open."""
        self._running = False
        tasks = [
            t for t in (self._poll_task, *self._fill_tasks(), *self._side_tasks) if t is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poll_task = None
        listeners = {id(lst): lst for lst in self._all_listeners()}
        self._matters.clear()
        self._by_principal.clear()
        self._refs.clear()
        for part in self._sessions:
            part.clear()
        for pairs in self._pairs:
            pairs.clear()
        for listener in listeners.values():
            self._close_listener(listener, CLOSE_RESTART)

    # -- joining ----------------------------------------------------------

    async def join(self, matter_id: int, listener: Listener) -> int:
        """Register ``listener`` for ``matter_id``; returns the seq delivered up to.

        Afterwards the listener gets every event with a higher seq, in order.
        Raises ``NotFound`` for a missing matter and ``Unavailable`` (after
        ``listener.close(1012)``) when the hub is stopped.
        The first join of a matter on this worker subscribes its topic (and
        waits for the broker to confirm) and then reads the head from the
        database: an event committed in between arrives through the broker.
        """
        self._refuse_if_stopped(listener)
        st = self._matters.get(matter_id)
        if st is None:
            st = self._matters[matter_id] = _Matter()
        if not st.ready:
            st.joining += 1
            try:
                await self._ensure_ready(matter_id, st)
            finally:
                st.joining -= 1
                if not st.ready:
                    await self._maybe_teardown(matter_id, st)
        # No await from here on: the listener sees exactly the seqs after st.last.
        self._refuse_if_stopped(listener)
        key = id(listener)
        if key not in st.listeners:
            st.listeners[key] = listener
            self._ref(listener, +1)
            self._index_pair(matter_id, listener, add=True)
        return st.last

    def _refuse_if_stopped(self, listener: Listener) -> None:
        if not self._running:
            # The worker is shutting down (or not started): nothing would be
            # delivered here; the client reconnects to another worker.
            self._close_listener(listener, CLOSE_RESTART)
            raise Unavailable("this worker is shutting down")

    async def leave(self, matter_id: int, listener: Listener) -> None:
        """Stop delivering ``matter_id`` to ``listener``; unsubscribe with the last one."""
        st = self._matters.get(matter_id)
        if st is None or st.listeners.pop(id(listener), None) is None:
            return
        self._ref(listener, -1)
        self._index_pair(matter_id, listener, add=False)
        if not st.listeners:
            await self._maybe_teardown(matter_id, st)

    def register(self, listener: Listener) -> None:
        """Make ``listener`` reachable by ``close_principal`` before it joins anything."""
        self._ref(listener, +1)

    def unregister(self, listener: Listener) -> None:
        """Undo ``register`` (joins keep their own references)."""
        self._ref(listener, -1)

    async def _ensure_ready(self, matter_id: int, st: _Matter) -> None:
        async with st.lock:
            if st.ready:
                return
            if not st.subscribed:
                await self._broker.subscribe(matter_topic(matter_id))
                st.subscribed = True
            async with self._db.read() as session:
                head = await stream.head(session, matter_id)
            st.last = head
            st.target = max(st.target, head)
            st.ready = True
            # Messages that arrived while we read the head.
            self._drain(matter_id, st)

    async def _maybe_teardown(self, matter_id: int, st: _Matter) -> None:
        async with st.lock:
            if st.listeners or st.joining or self._matters.get(matter_id) is not st:
                return
            st.ready = False
            st.pending.clear()
            if st.fill_task is not None:
                st.fill_task.cancel()
                st.fill_task = None
            if st.subscribed:
                st.subscribed = False
                await self._broker.unsubscribe(matter_topic(matter_id))
            if not st.listeners and not st.joining:
                del self._matters[matter_id]
            # else: a join arrived while we unsubscribed; it waits on the
            # lock and subscribes again (and re-reads the head).

    def _ref(self, listener: Listener, delta: int) -> None:
        key = id(listener)
        count = self._refs.get(key, 0) + delta
        principal = listener.principal
        pkey = (principal.kind, principal.id)
        sid = principal.session_id
        if count > 0:
            if sid is not None and key not in self._refs:
                part = self._sessions[hash(sid) % self._slices]
                part.setdefault(sid, {})[key] = listener
            self._refs[key] = count
            self._by_principal.setdefault(pkey, {})[key] = listener
            return
        if self._refs.pop(key, None) is not None and sid is not None:
            _discard(self._sessions[hash(sid) % self._slices], sid, key)
        _discard(self._by_principal, pkey, key)

    def _index_pair(self, matter_id: int, listener: Listener, *, add: bool) -> None:
        """Keep the membership re-check's (matter, principal) index in step with joins."""
        p = listener.principal
        if p.kind == "staff":
            return  # staff see every matter of their firm: nothing to re-check
        pair = (matter_id, p.kind, p.id)
        pairs = self._pairs[hash(pair) % self._slices]
        if add:
            pairs.setdefault(pair, {})[id(listener)] = listener
        else:
            _discard(pairs, pair, id(listener))

    # -- publishing -------------------------------------------------------

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """After commit: fan out to this worker's listeners now, then tell the others."""
        for event in events:
            self._apply(event)
        for event in events:
            await self._broker.publish(matter_topic(event.matter_id), encode_event_message(event))

    async def close_principal(
        self,
        kind: str,
        principal_id: int,
        code: int = CLOSE_REVOKED,
        *,
        session_id: str | None = None,
    ) -> None:
        """Close every live connection of a principal on every worker.

        With ``session_id``, only the connections of that login session (a
        logout on one device leaves the user's other devices connected).
        """
        msg_id = uuid.uuid4().hex
        self._recent_ctl.append(msg_id)
        self._close_principal_local(kind, principal_id, code, session_id)
        body = {
            "op": "close_principal",
            "id": msg_id,
            "kind": kind,
            "pid": principal_id,
            "code": code,
            "sid": session_id,
        }
        await self._broker.publish(CTL_TOPIC, json.dumps(body).encode())

    def _close_principal_local(
        self, kind: str, principal_id: int, code: int, session_id: str | None = None
    ) -> None:
        group = self._by_principal.get((kind, principal_id))
        if not group:
            return
        for listener in list(group.values()):
            if session_id is None or listener.principal.session_id == session_id:
                self._close_listener(listener, code)

    # -- receiving --------------------------------------------------------

    def _on_message(self, topic: str, data: bytes) -> None:
        if not self._running:
            return
        if topic == CTL_TOPIC:
            self._on_control(data)
            return
        try:
            matter_id, seq, body = peek_event_message(data)
        except ValueError:
            log.warning("dropping a malformed broker message on %r", topic)
            return
        if topic != matter_topic(matter_id):
            log.warning("dropping a message for matter %d sent on %r", matter_id, topic)
            return
        st = self._matters.get(matter_id)
        if st is None or (st.ready and seq <= st.last):
            return  # not delivered here, or a duplicate (e.g. our own echo): not decoded
        try:
            wire = wirejson.loads(body)
            if not isinstance(wire, dict) or jsonlimits.too_deep(
                wire, jsonlimits.MAX_DOCUMENT_DEPTH
            ):
                raise ValueError("not an event within the JSON rule")
            event = StoredEvent.from_wire(matter_id, wire)
            if event.seq != seq:
                raise ValueError("header and event disagree")
        except Exception:
            # Cannot rebuild it: treat it as lost; the database has it.
            log.warning("unreadable event %d/%d from the broker; reading it", matter_id, seq)
            st.target = max(st.target, seq)
            self._schedule_fill(matter_id, st)
            return
        self._apply(event)

    def _on_control(self, data: bytes) -> None:
        try:
            msg = jsonlimits.loads(data, "control message")
            if (
                jsonlimits.too_deep(msg, jsonlimits.MAX_DOCUMENT_DEPTH)
                or msg.get("op") != "close_principal"
            ):
                raise ValueError(msg.get("op"))
            msg_id, kind, pid, code = msg["id"], msg["kind"], msg["pid"], msg["code"]
            sid = msg.get("sid")
            if not (isinstance(kind, str) and type(pid) is int and type(code) is int):
                raise TypeError("bad field types")
            if sid is not None and not isinstance(sid, str):
                raise TypeError("bad session id")
        except (BadRequest, ValueError, KeyError, TypeError, AttributeError):
            log.warning("dropping a malformed control message")
            return
        if msg_id in self._recent_ctl:
            return  # our own, already applied locally
        self._close_principal_local(kind, pid, code, sid)

    def _on_reset(self) -> None:
        """The broker reconnected: anything may have been lost; poll every matter now.

        A lost ``close_principal`` is caught here too: the sessions of every
        listener are re-checked against the database.
        """
        if self._running:
            task = asyncio.get_running_loop().create_task(
                self._recheck_all(), name="rtportal-hub-reset"
            )
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    # -- ordering ---------------------------------------------------------

    def _apply(self, event: StoredEvent) -> None:
        """Deliver in order; keep what is early; start a fill when there is a gap."""
        st = self._matters.get(event.matter_id)
        if st is None:
            return
        seq = event.seq
        if seq > st.target:
            st.target = seq
        if not st.ready:
            self._keep_pending(st, event)  # applied once the head is known
            return
        if seq <= st.last:
            return
        if seq == st.last + 1:
            self._fan_out(st, event)
            st.last = seq
            if st.pending:
                self._drain(event.matter_id, st)
            return
        self._keep_pending(st, event)
        self._schedule_fill(event.matter_id, st)

    def _keep_pending(self, st: _Matter, event: StoredEvent) -> None:
        if len(st.pending) < _PENDING_MAX:
            st.pending[event.seq] = event
        # else drop it: the fill re-reads it from the database (target covers it)

    def _drain(self, matter_id: int, st: _Matter) -> None:
        """Deliver pending events that are now next in line; fill if a gap remains."""
        pending = st.pending
        for seq in [s for s in pending if s <= st.last]:
            del pending[seq]
        while pending:
            event = pending.pop(st.last + 1, None)
            if event is None:
                break
            self._fan_out(st, event)
            st.last = event.seq
        if st.target > st.last:
            self._schedule_fill(matter_id, st)

    def _fan_out(self, st: _Matter, event: StoredEvent) -> None:
        for listener in list(st.listeners.values()):
            try:
                listener.deliver(event)
            except Exception:
                # A listener bug must not cost the other listeners their event.
                log.exception("listener.deliver failed; closing that listener")
                self._close_listener(listener, CLOSE_INTERNAL)

    def _close_listener(self, listener: Listener, code: int) -> None:
        try:
            listener.close(code)
        except Exception:
            log.exception("listener.close(%d) failed", code)

    # -- gap fill ---------------------------------------------------------

    def _schedule_fill(self, matter_id: int, st: _Matter) -> None:
        if st.fill_task is None and st.ready and self._running:
            st.fill_task = asyncio.get_running_loop().create_task(
                self._fill(matter_id, st), name=f"rtportal-hub-fill-{matter_id}"
            )

    async def _fill(self, matter_id: int, st: _Matter) -> None:
        """Read ``(last, target]`` from the database and deliver it, once per matter."""
        try:
            if self._gap_wait > 0:
                await asyncio.sleep(
                    self._gap_wait
                )  # reason: let a late broker message close the gap
            while st.ready and st.target > st.last and self._matters.get(matter_id) is st:
                want = min(st.target - st.last, _FILL_PAGE)
                async with self._db.read() as session:
                    events = await stream.read_since(session, matter_id, st.last, want)
                self.gap_reads += 1
                progressed = False
                for event in events:
                    if event.seq == st.last + 1:
                        self._fan_out(st, event)
                        st.last = event.seq
                        progressed = True
                    st.pending.pop(event.seq, None)
                if st.pending:
                    for seq in [s for s in st.pending if s <= st.last]:
                        del st.pending[seq]
                    while (event2 := st.pending.pop(st.last + 1, None)) is not None:
                        self._fan_out(st, event2)
                        st.last = event2.seq
                if not progressed:
                    # The database does not have what a message claimed (a
                    # foreign publisher on a shared broker?): believe the database.
                    log.warning(
                        "matter %d: broker claimed seq %d, database has %d",
                        matter_id,
                        st.target,
                        st.last,
                    )
                    st.target = st.last
                    st.pending.clear()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Database unavailable or similar: the next message or poll retries.
            log.exception("gap fill of matter %d failed; the safety poll retries", matter_id)
        finally:
            if st.fill_task is asyncio.current_task():
                st.fill_task = None

    def _fill_tasks(self) -> list[asyncio.Task[None]]:
        return [st.fill_task for st in self._matters.values() if st.fill_task is not None]

    # -- safety poll ------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)  # reason: periodic safety poll
            await self.poll()

    async def poll(self) -> int:
        """One periodic safety poll (what the poll task runs); returns how many it closed.

        The heads of every subscribed matter (a fill where the database is
        ahead), then one slice of the re-checks: slice ``n % recheck_slices``
        of the login sessions and of the (matter, principal) memberships,
        the slices taken by hash. Each session and each membership is
        therefore re-checked once every ``recheck_slices`` polls (5 by
        default: within 10 s at the default 2 s interval), at 1/5 of the cost
        of re-checking everything every time. Every query is small (at most
        250 ids) and the loop turns over between queries, so deliveries
        never wait more than a few ms behind a poll.
        """
        part = self._polls % self._slices
        self._polls += 1
        await self._poll_once()
        return await self.recheck_sessions(part) + await self.recheck_memberships(part)

    async def _recheck_all(self) -> None:
        """After a broker reset: heads, then every session and membership (still chunked)."""
        await self._poll_once()
        await self.recheck_sessions()
        await self.recheck_memberships()

    async def recheck_memberships(self, part: int | None = None) -> int:
        """Close (4010) contacts and bots joined to a matter they are no longer members of.

        Access is checked when a connection subscribes and on every send;
        this stops the *live* stream of a removed member, whichever worker
        removed them and whether or not the broker carried the news: one
        query per 250 (matter, principal) pairs this worker delivers to.
        ``part=None`` (after a broker reset) checks every pair, ``part=n``
        only slice ``n`` (a periodic poll). Staff see every matter of their
        firm and are not re-checked here. Returns how many listeners were
        closed; a database error ends the pass (logged), the next poll of
        the slice retries.
        """
        parts = self._pairs if part is None else [self._pairs[part % self._slices]]
        # Sorted: a chunk then covers few matters (compact IN lists).
        keys = sorted(key for pairs in parts for key in pairs)

        async def active(session: AsyncSession, chunk: list[_Pair]) -> set[_Pair]:
            matter_ids = list({k[0] for k in chunk})
            return await stream.active_memberships(session, matter_ids, list({k[2] for k in chunk}))

        closed = await self._recheck(keys, _MEMBERS_CHUNK, active, self._pairs, "membership")
        if closed:
            log.info("closed %d connection(s) of removed matter members", closed)
        return closed

    async def recheck_sessions(self, part: int | None = None) -> int:
        """Close (4010) listeners whose login session is revoked or expired; returns how many.

        ``close_principal`` rides on the broker, which is at-most-once: a
        revocation published while Redis was down never reaches the other
        workers. The tokens table is the record, so the hub re-reads it for
        the distinct sessions of its registered listeners (one indexed query
        per 250 sessions, never one per connection): all of them
        (``part=None``) after a broker reset, slice ``part`` with a periodic
        poll. Listeners without a session id (tests, internal listeners) are
        not checked. A database error ends the pass (logged); the next poll
        of the slice retries.
        """
        parts = self._sessions if part is None else [self._sessions[part % self._slices]]
        sids = [sid for sessions in parts for sid in sessions]
        closed = await self._recheck(
            sids, _SESSIONS_CHUNK, live_sessions, self._sessions, "session"
        )
        if closed:
            log.info("closed %d connection(s) of revoked or expired sessions", closed)
        return closed

    async def _recheck(
        self,
        keys: list[_K],
        chunk_size: int,
        valid: Callable[[AsyncSession, list[_K]], Awaitable[set[_K]]],
        index: list[dict[_K, dict[int, Listener]]],
        what: str,
    ) -> int:
        """Ask the database which ``keys`` are still valid, in chunks; close the rest.

        One read session for the pass (a session per chunk costs more CPU
        than the chunk's query) and a loop turn between chunks. The
        listeners closed are those under the key in ``index`` *now*: who
        left during the query is gone, who arrived with a dead key goes too.
        """
        if not keys:
            return 0
        closed = 0
        try:
            async with self._db.read() as session:
                for start in range(0, len(keys), chunk_size):
                    if start:
                        await asyncio.sleep(0)  # reason: let deliveries run between chunks
                    chunk = keys[start : start + chunk_size]
                    ok = await valid(session, chunk)
                    for key in chunk:
                        if key not in ok:
                            closed += self._close_all(index[hash(key) % self._slices].get(key))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s re-check failed; retrying at the next poll", what)
        return closed

    def _close_all(self, group: dict[int, Listener] | None) -> int:
        if not group:
            return 0
        listeners = list(group.values())  # close() may call back into the hub
        for listener in listeners:
            self._close_listener(listener, CLOSE_REVOKED)
        return len(listeners)

    async def _poll_once(self) -> None:
        """One heads query per 500 subscribed matters; fill where the database is ahead."""
        ids = [mid for mid, st in self._matters.items() if st.ready]
        try:
            for start in range(0, len(ids), _HEADS_CHUNK):
                if start:
                    await asyncio.sleep(0)  # reason: let deliveries run between chunks
                async with self._db.read() as session:
                    heads = await stream.heads(session, ids[start : start + _HEADS_CHUNK])
                for mid, head in heads.items():
                    st = self._matters.get(mid)
                    if st is not None and st.ready and head > st.last:
                        st.target = max(st.target, head)
                        self._schedule_fill(mid, st)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("hub safety poll failed; retrying at the next interval")

    # -- introspection ----------------------------------------------------

    def _all_listeners(self) -> list[Listener]:
        out: list[Listener] = []
        for group in self._by_principal.values():
            out.extend(group.values())
        return out

    def delivered(self, matter_id: int) -> int | None:
        """The seq delivered up to for a matter subscribed here, else ``None``."""
        st = self._matters.get(matter_id)
        return st.last if st is not None and st.ready else None

    def subscribed_matters(self) -> list[int]:
        """Matters this worker holds a broker subscription for."""
        return [mid for mid, st in self._matters.items() if st.subscribed]
