"""Group commit: concurrent sends of a worker share one write transaction.

Every send of a worker, websocket or HTTP, goes through one ``GroupCommit``
(created by the app's lifespan, ``app.state.committer``): the sends that
arrive while a commit is in flight share the next transaction, written
while the one before it is still in the database's hands when their
matters differ
(``log.commit_batch``: on PostgreSQL one round trip, a statement that is
its own transaction; on SQLite a handful of statements in one write
transaction), then their events are published once, in order, after the
commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db import Database
from rtportal.db.models import Matter
from rtportal.errors import NotFound, RtPortalError, Unavailable
from rtportal.events.batch import AppendItem
from rtportal.events.commitparts import (
    Authorize,
    OnDone,
    Outcome,
    Prepare,
    WriteAlone,
    WriteCheck,
)
from rtportal.events.companion import Also, Companion, Row
from rtportal.events.event import StoredEvent
from rtportal.events.guards import GuardMoved, Guards
from rtportal.events.lanes import (
    LANES,
    Done,
    Failed,
    Lane,
    Outcomes,
    Request,
    answer,
    set_underway,
    settle,
    take,
)
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
from rtportal.events.unit import Publish
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "Authorize",
    "GroupCommit",
    "OnDone",
    "Outcome",
    "Prepare",
    "Publish",
    "WriteAlone",
    "WriteCheck",
]

log = logging.getLogger("rtportal.commit")


class _BatchFailed(Exception):
    """A batch hit an error that may have spoilt its transaction (rolled back)."""


class GroupCommit:
    """Group commit for sends: the sends that arrive while a commit is in
    flight share the next transaction (``log.commit_batch`` writing them
    in one round trip on PostgreSQL, a handful of statements on SQLite, then one
    ``publish`` of their events, in order).

    Guarantees kept: every event is committed before it is published and
    before its sender is acked; ``seq`` stays gapless (allocated inside the
    transaction, rolled back with it); a retried ``client_id`` is a
    duplicate, even within one batch. A request's own failure
    (``bad_request``, ``not_found``, ``conflict``...) is found before
    anything is written for it (``append_batch`` returns it instead of
    raising), so it leaves the shared transaction clean and only that sender
    gets an error. Any other error rolls the batch back and its requests are
    retried one transaction each, so one bad request cannot fail the others.
    The write locks the batch's matter rows in ascending id order
    (PostgreSQL), so two workers' batches cannot deadlock; sends of one
    matter get seqs in queue order, and one principal's sends are answered in
    queue order (those to one matter also written in it), so a connection's
    sends keep their order however many it has in here.

    Up to two batches are written at once per worker, on matters the other
    does not hold, and published in the order they were taken (why two, and
    not more: the comment above ``lanes.LANES``); the sends that arrive meanwhile
    form the next batch, so batches grow with the load.

    ``publish`` gets each batch's new events after its commit (the hub);
    ``authorize`` checks a send whose matter its caller has not checked.
    """

    __slots__ = (
        "_arrived",
        "_drainer",
        "_inflight",
        "_queue",
        "alone",
        "alone_if",
        "alone_kinds",
        "authorize",
        "check",
        "check_kinds",
        "companion",
        "db",
        "guards",
        "prepare",
        "prepare_kinds",
        "publish",
        "settings",
    )

    def __init__(
        self,
        db: Database,
        publish: Publish,
        settings: Settings,
        authorize: Authorize,
        check: WriteCheck | None = None,
        check_kinds: frozenset[str] = frozenset(),
        prepare: Prepare | None = None,
        prepare_kinds: frozenset[str] = frozenset(),
        alone: WriteAlone | None = None,
        alone_kinds: frozenset[str] = frozenset(),
        alone_if: Callable[[Send], bool] | None = None,
        guards: Guards | None = None,
        companion: Companion | None = None,
    ) -> None:
        self.db = db
        self.publish = publish
        self.settings = settings
        self.authorize = authorize
        # Run for the sends of ``check_kinds`` only, in one read per batch.
        self.check = check
        self.check_kinds = check_kinds
        # Run for the sends of ``prepare_kinds`` only, in one read per batch,
        # before ``check`` (which sees the prepared sends).
        self.prepare = prepare
        self.prepare_kinds = prepare_kinds
        # The sends of ``alone_kinds`` are written by ``alone`` after the batch's
        # write, one transaction each (what one statement cannot do: a delete
        # erases blobs in its transaction).
        self.alone = alone
        self.alone_kinds = alone_kinds
        # Sends of other kinds written alone too, by what they hold (an item
        # that names files: rtportal.files.attach claims them in its transaction).
        self.alone_if = alone_if
        # What ``prepare`` and ``check`` remember of matters (shared with them):
        # a send checked with it carries its matter's version into the write,
        # which refuses the batch if it moved (rtportal.events.guards).
        self.guards = guards
        # Rows written with some sends' events, in their transaction (the review
        # inbox's, for a client's items: rtportal.events.companion).
        self.companion = companion
        self._queue: deque[Request] = deque()
        self._inflight = 0  # requests of the batches being committed
        # The task draining the queue, if any. Cleared by _drain itself, not
        # by a done-callback: that runs a loop iteration after the drain has
        # seen an empty queue, and a send queued in between would be
        # stranded with nobody to take it. (Also the strong reference: the
        # loop keeps only weak ones.)
        self._drainer: asyncio.Task[None] | None = None
        # Set while the drain waits with a free lane: a send arriving wakes it.
        self._arrived: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> int:
        """Sends queued or being committed (for tests and diagnostics)."""
        return len(self._queue) + self._inflight

    async def append(
        self, principal: Principal, send: Send, matter: Matter | None
    ) -> tuple[StoredEvent, bool, Matter]:
        """Commit and publish one send; ``(event, created, matter)`` once committed.

        ``matter``: the matter ``send.matter`` names, already checked by
        ``authorize`` for ``principal`` (a connection's cache), or ``None``
        to check it before the batch's write (``NotFound``).
        """
        result: asyncio.Future[tuple[StoredEvent, bool, Matter]] = (
            asyncio.get_running_loop().create_future()
        )
        self._enqueue(Request(principal, send, matter, result, None))
        return await result

    def submit(
        self, principal: Principal, send: Send, matter: Matter | None, on_done: OnDone
    ) -> None:
        """``append`` without a task or future per send (the websocket hot path):
        ``on_done(outcome, None)`` once committed and published, or
        ``on_done(None, error)``; called on the event loop, exactly once."""
        self._enqueue(Request(principal, send, matter, None, on_done))

    def _enqueue(self, request: Request) -> None:
        self._queue.append(request)
        arrived = self._arrived
        if arrived is not None and not arrived.done():
            arrived.set_result(None)
        if self._drainer is None:
            # The drain runs on its own: a sender that goes away does not
            # cancel a commit (whatever commits is still published at once).
            self._drainer = asyncio.get_running_loop().create_task(
                self._drain(), name="ws-group-commit"
            )

    async def _drain(self) -> None:
        try:
            await self._drain_queue()
        finally:
            # No await between the last empty-queue check and this: a send
            # queued after it finds no drainer and starts one.
            self._drainer = None

    async def _drain_queue(self) -> None:
        # Up to ``LANES`` batches are written at once, on matters no other batch
        # in flight holds (``lanes.take``), and published in the order they were
        # taken. A batch is taken once the one before it is under way (its
        # statement sent: ``underway``), so the worker checks and builds batch
        # k+1 while the database writes batch k. A committed batch is
        # published once the newest batch is under way too: its fan-out to
        # every local connection (one long stretch of CPU) then runs during
        # a round trip instead of before the next write's first step.
        loop = asyncio.get_running_loop()
        lanes: deque[Lane] = deque()  # in flight, in the order taken
        committed: deque[Outcomes] = deque()  # written, not yet published, in order
        try:
            while True:
                while lanes and lanes[0].writing.done():
                    lane = lanes.popleft()
                    self._inflight -= len(lane.batch)
                    committed.append(lane.writing.result())
                if self._queue and self._may_take(lanes):
                    busy = {m for lane in lanes for m in lane.matters}
                    batch = take(self._queue, busy, self.alone_if)
                    if batch:
                        underway: asyncio.Future[None] = loop.create_future()
                        writing = loop.create_task(self._write_all(batch, underway))
                        lanes.append(Lane(batch, {r.send.matter for r in batch}, underway, writing))
                        self._inflight += len(batch)
                        continue
                if committed:
                    if lanes and not lanes[-1].underway.done():
                        await lanes[-1].underway
                        continue
                    await self._publish(committed[0])
                    committed.popleft()
                    continue
                if not lanes:
                    return  # nothing queued, nothing in flight; no await since the check
                await self._next_change(lanes)
        except BaseException:
            # Cancelled (shutdown): no sender may wait forever.
            stopping = Unavailable("the server is stopping")
            for outcomes in committed:  # committed, not published: acked
                answer(outcomes)
            for lane in lanes:
                writing = lane.writing
                if writing.done() and not writing.cancelled() and writing.exception() is None:
                    # Written behind an older batch still in the database: committed,
                    # so acked (a retry would find it written, ``created`` false).
                    answer(writing.result())
                    continue
                writing.cancel()
                for request in lane.batch:
                    settle(request, exc=stopping)
            self._inflight = 0
            while self._queue:
                settle(self._queue.popleft(), exc=stopping)
            raise

    def _may_take(self, lanes: deque[Lane]) -> bool:
        return not lanes or (len(lanes) < LANES and lanes[-1].underway.done())

    async def _next_change(self, lanes: deque[Lane]) -> None:
        """Wait until the oldest batch is written, or another may be taken: the
        newest is under way, or (it is, and a lane is free) a send arrives."""
        waits: list[asyncio.Future[Any]] = [lanes[0].writing]
        if len(lanes) < LANES:
            if not lanes[-1].underway.done():
                waits.append(lanes[-1].underway)
            else:
                self._arrived = asyncio.get_running_loop().create_future()
                waits.append(self._arrived)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._arrived = None

    async def _write_all(
        self, batch: list[Request], underway: asyncio.Future[None] | None = None
    ) -> Outcomes:
        """Write ``batch``; ``underway`` is set once its statement is on its way
        (or the write is over, however it ended)."""
        done: list[Done] = []
        failed: list[Failed] = []
        rows: list[Row] = []
        try:
            await self._write(batch, done, failed, rows, underway=underway)
        except _BatchFailed:
            done.clear()
            failed.clear()
            rows.clear()
            for request in batch:  # isolate the culprit: one transaction each
                await self._write([request], done, failed, rows)  # a batch of one never raises
        finally:
            set_underway(underway)
        return done, failed, rows

    async def _write(
        self,
        batch: list[Request],
        done: list[Done],
        failed: list[Failed],
        rows: list[Row],
        *,
        again: bool = False,
        underway: asyncio.Future[None] | None = None,
    ) -> None:
        """Write ``batch`` in one transaction; outcomes into ``done``/``failed``, the
        companion's rows of the events created into ``rows``.

        ``GuardMoved`` (a matter changed since what its checks remembered): the
        batch wrote nothing; its matters are forgotten and it is checked and
        written once more (``again``), from fresh reads. Moved again: the sends of
        those matters fail (``unavailable``), the others are written."""
        mark = len(failed)
        try:
            ready: list[tuple[Request, Matter]]
            also = None
            if self._reads_first(batch):
                # Every read before the write in one read session: a session's
                # begin, checkout and end cost more than these queries (one hop
                # each to the SQLite reader thread), and they are paid per batch.
                async with self.db.read() as session:
                    ready = await self._ready(session, batch, failed)
                    also = await self._also(session, ready)
            else:
                ready = [(r, r.matter) for r in batch if r.matter is not None]
            # Held to the versions their checks read, like the batch's items.
            alone = [(r, m) for r, m in ready if self._alone(r.send)]
            guards = [self._guard(r, m) for r, m in alone]
            if alone:
                ready = [(r, m) for r, m in ready if not self._alone(r.send)]
            items = [
                AppendItem(
                    matter, request.principal, request.send, guard=self._guard(request, matter)
                )
                for request, matter in ready
            ]
            # One transaction of its own (PostgreSQL: one round trip). Set now, the
            # publish of the batch before this one runs once this task next waits:
            # in the round trip (commit_batch's CPU work before it runs first).
            set_underway(underway)
            try:
                results = await commit_batch(self.db, items, self.settings, also)
            except GuardMoved as moved:
                if self.guards is None:
                    raise
                self.guards.forget(moved.matter_ids)
                del failed[mark:]
                if again:
                    # Moved again since the fresh reads: those matters' sends answer
                    # ``unavailable``, the other matters' are written without them
                    # (a matter changing all the time holds up only its own sends).
                    held = {id(r) for r, m in ready + alone if m.id in moved.matter_ids}
                    failed.extend((r, moved) for r in batch if id(r) in held)
                    batch = [r for r in batch if id(r) not in held]
                if batch:
                    await self._write(batch, done, failed, rows, again=True)
                return
            for index, ((request, matter), outcome) in enumerate(zip(ready, results, strict=True)):
                if isinstance(outcome, RtPortalError):
                    failed.append((request, outcome))  # wrote nothing for it
                else:
                    done.append((request, outcome[0], outcome[1], matter))
                    if also is not None and outcome[1] and index in also.rows:
                        rows.append(also.rows[index])
            for (request, matter), guard in zip(alone, guards, strict=True):
                await self._write_alone(request, matter, guard, done, failed, again=again)
        except Exception as error:
            # A lost connection arrives as Unavailable (Database maps it).
            if len(batch) > 1 and not isinstance(error, Unavailable):
                raise _BatchFailed from error  # retried one by one by _write_all
            del failed[mark:]  # the whole batch failed: one error for each
            failed.extend((request, error) for request in batch)

    def _guard(self, request: Request, matter: Matter) -> int | None:
        """The version the send's checks read the matter at, if they remembered
        anything of it (``None``: nothing to hold the write to)."""
        if self.guards is None:
            return None
        kind = request.send.kind
        if kind not in self.prepare_kinds and kind not in self.check_kinds:
            return None
        return self.guards.checked_at(matter.id)

    def _reads_first(self, batch: list[Request]) -> bool:
        """Does anything in ``batch`` need a read before the write?"""
        kinds = self.prepare_kinds | self.check_kinds
        companion = self.companion
        return any(
            r.matter is None
            or r.send.kind in kinds
            or (companion is not None and companion.wants(r.principal, r.send))
            for r in batch
        )

    async def _also(
        self, session: AsyncSession, ready: list[tuple[Request, Matter]]
    ) -> Also | None:
        """The companion's rows of the batch's sends it wants (not those written alone,
        whose writer records them itself), by their index among the batch's items."""
        companion = self.companion
        if companion is None:
            return None
        batched = [(r, m) for r, m in ready if not self._alone(r.send)]  # the items, in order
        wanted = [
            (index, request, matter)
            for index, (request, matter) in enumerate(batched)
            if companion.wants(request.principal, request.send)
        ]
        if not wanted:
            return None
        made = await companion.rows(session, [(r.principal, m, r.send) for _, r, m in wanted])
        rows = {
            index: row for (index, _, _), row in zip(wanted, made, strict=True) if row is not None
        }
        return Also(companion.pg, companion.sqlite, rows)

    async def _ready(
        self, session: AsyncSession, batch: list[Request], failed: list[Failed]
    ) -> list[tuple[Request, Matter]]:
        """The sends of ``batch`` that may be written, each with its matter, as
        ``prepare`` made them; the refused go to ``failed``."""
        if self.guards is not None:
            self.guards.begin()
        checked: dict[int, Matter] = {}
        for request in batch:
            if request.matter is None:
                # Not yet authorised by the connection's cache (HTTP, a first
                # send): read before the write (a read committed check, as it
                # was inside the write transaction).
                try:
                    checked[id(request)] = await self.authorize(
                        session, request.principal, request.send.matter
                    )
                except NotFound as err:  # nothing written for it
                    failed.append((request, err))
        ready: list[tuple[Request, Matter]] = []
        for request in batch:
            matter = request.matter or checked.get(id(request))
            if matter is not None:
                ready.append((request, matter))
        if self.guards is not None:
            # A send written alone (an edit, a delete, an item naming files) is
            # rare and its writer may hold no version: its matter's checks read the
            # database (the writers here also hold the version: both, for safety).
            self.guards.forget({m.id for r, m in ready if self._alone(r.send)})
        start = len(failed)
        passed = await self._checked(session, await self._prepared(session, ready, failed), failed)
        if self.guards is None or len(failed) == start:
            return passed
        # A refusal may rest on what the worker remembered from before a change
        # (a new epoch, a client who now sees applicants): the write never sees a
        # refused send, so its matter is read afresh and the batch checked again.
        refused = {id(request) for request, _ in failed[start:]}
        doubtful = {
            m.id for r, m in ready if id(r) in refused and self.guards.checked_at(m.id) is not None
        }
        if not doubtful:
            return passed
        self.guards.forget(doubtful)
        del failed[start:]
        return await self._checked(session, await self._prepared(session, ready, failed), failed)

    def _alone(self, send: Send) -> bool:
        return send.kind in self.alone_kinds or (self.alone_if is not None and self.alone_if(send))

    async def _prepared(
        self, session: AsyncSession, ready: list[tuple[Request, Matter]], failed: list[Failed]
    ) -> list[tuple[Request, Matter]]:
        """``ready`` with each send as ``prepare`` made it, without those it refuses."""
        if self.prepare is None or not any(r.send.kind in self.prepare_kinds for r, _ in ready):
            return ready
        items = [(r.principal, matter, r.sent or r.send) for r, matter in ready]
        prepared = await self.prepare(session, items)
        passed: list[tuple[Request, Matter]] = []
        for (request, matter), outcome in zip(ready, prepared, strict=True):
            if isinstance(outcome, RtPortalError):
                failed.append((request, outcome))
            else:
                if request.sent is None:
                    request.sent = request.send
                request.send = outcome
                passed.append((request, matter))
        return passed

    async def _write_alone(
        self,
        request: Request,
        matter: Matter,
        guard: int | None,
        done: list[Done],
        failed: list[Failed],
        *,
        again: bool,
    ) -> None:
        """One send through ``alone``, after the batch's commit: its failure is its own
        (never the batch's, which is committed and must not be retried). Its matter
        moved since its checks (``GuardMoved``): checked and written once more, alone."""
        assert self.alone is not None
        try:
            event, created = await self.alone(request.principal, matter, request.send, guard)
        except GuardMoved as moved:
            if again or self.guards is None:
                failed.append((request, moved))
            else:
                self.guards.forget(moved.matter_ids)
                # Written alone again: no companion rows (its writer records them).
                await self._write([request], done, failed, [], again=True)
        except RtPortalError as err:
            failed.append((request, err))
        except Exception as err:
            log.exception("a send written alone failed")
            failed.append((request, err))
        else:
            done.append((request, event, created, matter))

    async def _checked(
        self, session: AsyncSession, ready: list[tuple[Request, Matter]], failed: list[Failed]
    ) -> list[tuple[Request, Matter]]:
        """``ready`` without the sends ``check`` refuses (those go to ``failed``)."""
        if self.check is None or not any(r.send.kind in self.check_kinds for r, _ in ready):
            return ready
        items = [(request.principal, matter, request.send) for request, matter in ready]
        refusals = await self.check(session, items)
        passed: list[tuple[Request, Matter]] = []
        for (request, matter), refusal in zip(ready, refusals, strict=True):
            if refusal is None:
                passed.append((request, matter))
            else:
                failed.append((request, refusal))
        return passed

    async def _publish(self, outcomes: Outcomes) -> None:
        """Committed: publish (never before), then the senders are answered."""
        done, _, rows = outcomes
        created_events = [event for _, event, created, _ in done if created]
        if created_events:
            try:
                await self.publish(created_events)
            except Exception:
                # The rows are committed; workers catch up with their safety poll.
                log.exception("publish failed after commit")
        if rows and self.companion is not None:
            try:
                self.companion.committed(rows)
            except Exception:
                log.exception("a companion's after-commit step failed")
        answer(outcomes)
