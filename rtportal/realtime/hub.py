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

The ``ctl`` topic carries control messages (``rtportal.realtime.message``):
``close_principal`` makes every worker close the connections of a
principal, or of some of its login sessions (logout, revocation, sign out
everywhere); ``close_access`` closes a principal's connections that hold a
matter (joined to it, or remembering access to it for sends: ``hold``)
when their membership ends. Every connection is ``register``ed for its
whole life, so both reach connections that only send. Being on the broker,
these messages are at-most-once too: ``rtportal.realtime.recheck`` re-reads
the database for the sessions and memberships the connections rely on,
after a broker reset and a slice at each safety poll.

A matter's topic also carries ephemeral messages (receipts, typing, unread
counts; never stored): ``rtportal.realtime.ephemeral``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rtportal import jsonlimits, wirejson
from rtportal.closecodes import (
    CLOSE_INTERNAL,
    CLOSE_RESTART,
)
from rtportal.errors import Unavailable
from rtportal.events import log as stream
from rtportal.events.event import StoredEvent
from rtportal.realtime.broker.base import Broker
from rtportal.realtime.control import ControlPlane
from rtportal.realtime.ephemeral import EphemeralPlane
from rtportal.realtime.listener import Listener
from rtportal.realtime.matterstate import CloseCounts, MatterState, PendingBudget, PendingEvents
from rtportal.realtime.message import (
    CTL_TOPIC,
    EPHEMERAL_PREFIX,
    encode_event_message,
    matter_topic,
    peek_event_message,
)
from rtportal.realtime.recheck import RECHECK_SLICES, AccessQueries, Rechecks

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = [
    "RECHECK_SLICES",
    "Hub",
    "Listener",
]

log = logging.getLogger("rtportal.realtime.hub")


_GAP_WAIT = 0.02  # seconds to wait for an out-of-order message before reading the database
_FILL_PAGE = 500  # events per database read while filling a gap
_PENDING_MAX = 1000  # out-of-order events kept per matter; beyond, re-read from the database
# Bytes of out-of-order events kept by one worker over all matters (drop-newest beyond).
PENDING_BYTES_MAX = 16 * 1024 * 1024
# Matter ids per heads query of the safety poll: bounds its longest
# synchronous stretch to a few ms (bench/hub_poll_cost.py).
_HEADS_CHUNK = 500
_RECENT_CTL = 256  # ids of our own control messages, to skip their echo


class Hub(ControlPlane, EphemeralPlane):
    """Per-worker fan-out; see the module docstring and docs/delivery.md."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        settings: Settings,
        access: AccessQueries,
        *,
        gap_wait: float = _GAP_WAIT,
        recheck_slices: int = RECHECK_SLICES,
    ) -> None:
        self._db = db
        self._broker = broker
        self._poll_interval = settings.hub_poll_interval
        self._fill_bytes = settings.backlog_page_bytes  # stored bytes per gap-fill read
        self._gap_wait = gap_wait
        self._matters: dict[int, MatterState] = {}
        self._pending_budget = PendingBudget(PENDING_BYTES_MAX)
        # Every listener joined somewhere (or registered), by principal, with
        # a count of its joins: close_principal must find them all.
        self._by_principal: dict[tuple[str, int], dict[int, Listener]] = {}
        self._refs: dict[int, int] = {}
        # What the safety poll re-checks (sessions, held memberships).
        self._rechecks = Rechecks(db, access, self._close_listener, recheck_slices)
        self._polls = 0
        self._recent_ctl: deque[str] = deque(maxlen=_RECENT_CTL)
        self._closes = CloseCounts()  # see closes()
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
        self._rechecks.clear()
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
            st = self._matters[matter_id] = MatterState(
                PendingEvents(self._pending_budget, _PENDING_MAX)
            )
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
            self._rechecks.hold(matter_id, listener)
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
        self._rechecks.release(matter_id, listener)
        if not st.listeners:
            await self._maybe_teardown(matter_id, st)

    def register(self, listener: Listener) -> None:
        """Make ``listener`` reachable by ``close_principal`` before it joins anything."""
        self._ref(listener, +1)

    def unregister(self, listener: Listener) -> None:
        """Undo ``register`` (joins keep their own references)."""
        self._ref(listener, -1)

    def hold(self, matter_id: int, listener: Listener) -> None:
        """``listener`` remembers access to ``matter_id`` without joining it (sends).

        ``close_access`` and the membership re-check then reach it as they
        reach a joined listener. Counted: one ``release`` per ``hold``.
        """
        self._rechecks.hold(matter_id, listener)

    def release(self, matter_id: int, listener: Listener) -> None:
        """Undo one ``hold``."""
        self._rechecks.release(matter_id, listener)

    async def _ensure_ready(self, matter_id: int, st: MatterState) -> None:
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

    async def _maybe_teardown(self, matter_id: int, st: MatterState) -> None:
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
        if count > 0:
            if key not in self._refs:
                self._rechecks.add_session(listener)
            self._refs[key] = count
            self._by_principal.setdefault(pkey, {})[key] = listener
            return
        if self._refs.pop(key, None) is not None:
            self._rechecks.remove_session(listener)
        group = self._by_principal.get(pkey)
        if group is not None:
            group.pop(key, None)
            if not group:
                del self._by_principal[pkey]

    # -- publishing -------------------------------------------------------

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """After commit: fan out to this worker's listeners now, then tell the others
        (if there can be any: not over a private bus)."""
        for event in events:
            self._apply(event)
        if self._broker.private:
            return
        for event in events:
            await self._broker.publish(matter_topic(event.matter_id), encode_event_message(event))

    # -- receiving --------------------------------------------------------

    def _on_message(self, topic: str, data: bytes) -> None:
        if not self._running:
            return
        if topic == CTL_TOPIC:
            self._on_control(data)
            return
        if data.startswith(EPHEMERAL_PREFIX):  # receipts, typing: never in the log
            self._on_ephemeral(topic, data)
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

    def _keep_pending(self, st: MatterState, event: StoredEvent) -> None:
        # Not kept when over the count or the worker's byte budget: the fill
        # re-reads it from the database (target covers it).
        st.pending.add(event)

    def _drain(self, matter_id: int, st: MatterState) -> None:
        """Deliver pending events that are now next in line; fill if a gap remains."""
        pending = st.pending
        pending.drop_through(st.last)
        while pending:
            event = pending.pop(st.last + 1)
            if event is None:
                break
            self._fan_out(st, event)
            st.last = event.seq
        if st.target > st.last:
            self._schedule_fill(matter_id, st)

    def _fan_out(self, st: MatterState, event: StoredEvent) -> None:
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

    def _schedule_fill(self, matter_id: int, st: MatterState) -> None:
        if st.fill_task is None and st.ready and self._running:
            st.fill_task = asyncio.get_running_loop().create_task(
                self._fill(matter_id, st), name=f"rtportal-hub-fill-{matter_id}"
            )

    async def _fill(self, matter_id: int, st: MatterState) -> None:
        """Read ``(last, target]`` from the database and deliver it, once per matter."""
        try:
            if self._gap_wait > 0:
                await asyncio.sleep(
                    self._gap_wait
                )  # reason: let a late broker message close the gap
            while st.ready and st.target > st.last and self._matters.get(matter_id) is st:
                want = min(st.target - st.last, _FILL_PAGE)
                async with self._db.read() as session:
                    events = await stream.read_since(
                        session, matter_id, st.last, want, self._fill_bytes
                    )
                self.gap_reads += 1
                progressed = False
                for event in events:
                    if event.seq == st.last + 1:
                        self._fan_out(st, event)
                        st.last = event.seq
                        progressed = True
                    st.pending.pop(event.seq)
                if st.pending:
                    st.pending.drop_through(st.last)
                    while (event2 := st.pending.pop(st.last + 1)) is not None:
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
        part = self._polls % self._rechecks.slices
        self._polls += 1
        await self._poll_once()
        return await self.recheck_sessions(part) + await self.recheck_memberships(part)

    async def _recheck_all(self) -> None:
        """After a broker reset: heads, then every session and membership (still chunked)."""
        await self._poll_once()
        await self.recheck_sessions()
        await self.recheck_memberships()

    async def recheck_memberships(self, part: int | None = None) -> int:
        """Close (4011) contacts and bots holding a matter they are no longer members of.

        Joined to it or remembering access to it for sends (``hold``);
        ``part=None`` checks every pair, ``part=n`` slice ``n``. Returns how
        many were closed (``rtportal.realtime.recheck``).
        """
        return await self._rechecks.memberships(part)

    async def recheck_sessions(self, part: int | None = None) -> int:
        """Close (4010) listeners whose login session is revoked, expired or idle.

        ``part=None`` checks every session, ``part=n`` slice ``n``. Returns
        how many were closed (``rtportal.realtime.recheck``).
        """
        return await self._rechecks.sessions(part)

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
