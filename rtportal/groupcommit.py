"""Group commit: concurrent sends of a worker share one write transaction.

Every websocket send of a worker goes through one ``GroupCommit`` (created
by the app's lifespan, ``app.state.committer``): the sends that arrive while
a commit is in flight share the next transaction, then their events are
published once, in order, after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from rtportal import stream
from rtportal.db import Database
from rtportal.errors import NotFound, RtPortalError, Unavailable
from rtportal.hub import Hub
from rtportal.models import Matter
from rtportal.principal import Principal
from rtportal.settings import Settings
from rtportal.stream import StoredEvent
from rtportal.ws.protocol import Append

__all__ = ["GroupCommit"]

log = logging.getLogger("rtportal.commit")

_BATCH_MAX = 128  # sends per group-commit transaction
_PG_LANES = 4  # group-commit transactions in flight per worker on PostgreSQL


@dataclass(slots=True)
class _Request:
    principal: Principal
    action: Append
    matter: Matter | None  # from the connection's access cache; None: check it here
    result: asyncio.Future[tuple[StoredEvent, bool, Matter]]


class _BatchFailed(Exception):
    """A batch hit an error that may have spoilt its transaction (rolled back)."""


class GroupCommit:
    """Group commit for websocket sends: the sends that arrive while a commit
    is in flight share the next transaction (one BEGIN and one COMMIT for the
    lot, then one ``hub.publish`` of their events, in order).

    Guarantees kept: every event is committed before it is published and
    before its sender is acked; ``seq`` stays gapless (allocated inside the
    transaction, rolled back with it); a retried ``client_id`` is a
    duplicate, even within one batch (the insert sees the batch's own rows).
    A request's own failure (``bad_request``, ``not_found``, ``conflict``...)
    happens before ``stream.append`` writes anything or after it has given
    its seq back, so it leaves the shared transaction clean and only that
    sender gets an error. Any other error rolls the batch back and its
    requests are retried one transaction each, so one bad request cannot
    fail the others. Within a batch, appends run in matter-id order (so two
    workers' batches on PostgreSQL always take matter row locks in the same
    order: no deadlock); each connection still has at most one send in here
    at a time, so its sends keep their order.

    Lanes: up to ``lanes`` batches are committed at once (SQLite: 1, its
    writes are serialised anyway; PostgreSQL: ``_PG_LANES``, so one slow
    commit/fsync does not hold every sender of the worker). Lanes take
    matter row locks in ascending id order too, so they cannot deadlock.
    """

    __slots__ = ("_inflight", "_lanes", "_queue", "_running", "db", "hub", "lanes", "settings")

    def __init__(self, db: Database, hub: Hub, settings: Settings) -> None:
        self.db = db
        self.hub = hub
        self.settings = settings
        self.lanes = 1 if db.backend == "sqlite" else _PG_LANES
        self._queue: deque[_Request] = deque()
        self._inflight = 0  # requests of the batches being committed
        # Lanes running. Counted by _drain itself, not by task done-callbacks:
        # those run a loop iteration after a lane has seen an empty queue, and
        # a send queued in between would be stranded with no lane to take it.
        self._running = 0
        self._lanes: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    @property
    def waiting(self) -> int:
        """Sends queued or being committed (for tests and diagnostics)."""
        return len(self._queue) + self._inflight

    async def append(
        self, principal: Principal, action: Append, matter: Matter | None
    ) -> tuple[StoredEvent, bool, Matter]:
        """Commit and publish one send; ``(event, created, matter)`` once committed."""
        result: asyncio.Future[tuple[StoredEvent, bool, Matter]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue.append(_Request(principal, action, matter, result))
        if self._running < self.lanes:
            # Lanes run on their own: a sender that goes away does not cancel
            # a commit (whatever commits is still published at once).
            self._running += 1
            lane = asyncio.get_running_loop().create_task(self._drain(), name="ws-group-commit")
            self._lanes.add(lane)
            lane.add_done_callback(self._lanes.discard)
        return await result

    async def _drain(self) -> None:
        try:
            await self._drain_queue()
        finally:
            # No await between the last empty-queue check and this: a send
            # queued after it finds _running below the limit and starts a lane.
            self._running -= 1

    async def _drain_queue(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(_BATCH_MAX, len(self._queue)))]
            self._inflight += len(batch)
            try:
                try:
                    await self._commit(batch)
                except _BatchFailed:
                    for request in batch:  # isolate the culprit: one transaction each
                        await self._commit([request])
            except BaseException:
                # Cancelled (shutdown): no sender may wait forever.
                stopping = Unavailable("the server is stopping")
                for request in batch:
                    _settle(request, exc=stopping)
                while self._queue:
                    _settle(self._queue.popleft(), exc=stopping)
                raise
            finally:
                self._inflight -= len(batch)

    async def _commit(self, batch: list[_Request]) -> None:
        done: list[tuple[_Request, StoredEvent, bool, Matter]] = []
        failed: list[tuple[_Request, BaseException]] = []
        try:
            async with self.db.write() as session:
                ready: list[tuple[_Request, Matter]] = []
                for request in batch:
                    matter = request.matter
                    if matter is None:
                        try:
                            matter = await stream.can_access(
                                session, request.principal, request.action.matter
                            )
                        except NotFound as err:  # a read: nothing written
                            failed.append((request, err))
                            continue
                    ready.append((request, matter))
                ready.sort(key=lambda pair: pair[1].id)  # row-lock order, see the class
                for request, matter in ready:
                    action = request.action
                    try:
                        event, created = await stream.append(
                            session,
                            matter=matter,
                            actor=request.principal,
                            kind=action.kind,
                            audience=action.audience,
                            payload=action.payload,
                            blob=action.blob,
                            client_id=action.request_id,
                            settings=self.settings,
                        )
                    except Unavailable:
                        raise
                    except RtPortalError as err:
                        failed.append((request, err))  # left nothing behind (see above)
                        continue
                    done.append((request, event, created, matter))
        except Exception as error:
            if len(batch) > 1 and not isinstance(error, Unavailable):
                raise _BatchFailed from error  # retried one by one by _drain
            for request in batch:
                _settle(request, exc=error)
            return
        # Committed: publish (never before), then the senders ack.
        created_events = [event for _, event, created, _ in done if created]
        if created_events:
            try:
                await self.hub.publish(created_events)
            except Exception:
                # The rows are committed; workers catch up with their safety poll.
                log.exception("hub.publish failed after commit")
        for request, event, created, matter in done:
            _settle(request, value=(event, created, matter))
        for request, exc in failed:
            _settle(request, exc=exc)


def _settle(
    request: _Request,
    *,
    value: tuple[StoredEvent, bool, Matter] | None = None,
    exc: BaseException | None = None,
) -> None:
    if request.result.done():  # the sender was cancelled (connection gone)
        return
    if exc is not None:
        request.result.set_exception(exc)
    elif value is not None:
        request.result.set_result(value)
