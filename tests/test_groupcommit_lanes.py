"""The group commit's two lanes, on PostgreSQL (a database of its own, in both CI
passes): a batch waiting in the database does not hold up another matter's, and
the sends held back keep their order (a matter's, and one principal's).

A transaction of the test's holds matters' row locks, so batches wait inside the
database for as long as the test needs: two backends waiting at once show two
batches in flight (one lane would not send the second before the first returned).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select

from rtportal.access.membership import can_access
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.db import Database
from rtportal.db.models import Event, Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter
from rtportal.errors import Unavailable
from rtportal.events.commitparts import Outcome
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.guards import Guards, _Entry
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.support.pgdb import migrated_pg_database, waiting_on_locks

TIMEOUT = 60.0


async def _seed(db: Database) -> tuple[list[Matter], Principal, Principal]:
    """Matters A, B, C; Pat is a client of A and B, Quinn of A and C."""
    async with db.write() as session:
        firm = await create_firm(session, "Lanes & Co")
        matters = [await create_matter(session, firm, title=t) for t in ("A", "B", "C")]
        pat = await create_contact(session, firm, display_name="Pat")
        quinn = await create_contact(session, firm, display_name="Quinn")
        for matter, who in ((0, pat), (1, pat), (0, quinn), (2, quinn)):
            await add_member(session, matters[matter], who)
    return matters, pat, quinn


@dataclass
class _World:
    db: Database
    hub: Hub
    holder: Any  # asyncpg connections: one holds row locks, one watches
    watcher: Any


@asynccontextmanager
async def _world(settings: Settings) -> AsyncIterator[_World]:
    """A migrated PostgreSQL database of its own, a hub on a private bus (publishing
    each batch's events), and two plain connections."""
    async with migrated_pg_database("rtp_lanes") as url:
        db = Database(url)
        broker = broker_from_url("memory://")
        hub = Hub(db, broker, settings, ACCESS_QUERIES)
        await hub.start()
        dsn = url.replace("+asyncpg", "")
        holder = await asyncpg.connect(dsn)
        watcher = await asyncpg.connect(dsn)
        try:
            yield _World(db, hub, holder, watcher)
        finally:
            await holder.close()
            await watcher.close()
            await hub.stop()
            await broker.close()
            await db.close()


async def test_a_batch_waiting_in_the_database_holds_up_only_its_matters(
    settings: Settings,
) -> None:
    async with _world(settings) as w:
        db, holder, watcher = w.db, w.holder, w.watcher
        (a, b, c), pat, quinn = await _seed(db)
        committer = GroupCommit(db, w.hub.publish, settings, can_access)
        answered: list[str] = []
        done = asyncio.Event()

        def on(label: str) -> Callable[[Outcome | None, BaseException | None], None]:
            def settled(outcome: Outcome | None, error: BaseException | None) -> None:
                answered.append(label if error is None else f"{label}: {error!r}")
                if len(answered) == 5:
                    done.set()

            return settled

        def submit(who: Principal, matter: Matter, label: str) -> None:
            send = Send(matter.reference, "message", "portal", {"thread": "t"}, None, label)
            committer.submit(who, send, None, on(label))

        locks = holder.transaction()
        await locks.start()
        await holder.execute(
            "SELECT id FROM matters WHERE id = ANY($1::int[]) FOR UPDATE", [a.id, c.id]
        )
        submit(pat, a, "a1")
        await waiting_on_locks(watcher, 1)  # a1's batch waits for A's row
        submit(pat, a, "a2")  # A is held by a1's batch: queued
        submit(pat, b, "b1")  # Pat's, after a2: queued too
        submit(quinn, c, "c1")  # another matter, another client: the second lane
        submit(quinn, a, "a3")  # A again: queued, after a2
        await waiting_on_locks(watcher, 2)  # c1's batch is in the database as well
        assert answered == []  # nothing answered before it is committed
        await locks.rollback()
        async with asyncio.timeout(TIMEOUT):
            await done.wait()
        # Published and answered in the order the batches were taken.
        assert answered == ["a1", "c1", "a2", "b1", "a3"]
        async with db.read() as session:
            rows = await session.execute(
                select(Event.client_id).where(Event.matter_id == a.id).order_by(Event.seq)
            )
            assert list(rows.scalars()) == ["a1", "a2", "a3"]  # A's sends in queue order
        assert committer.waiting == 0


async def test_each_batch_task_remembers_the_versions_its_own_checks_used() -> None:
    """Two batches checked at once (one written while the next is checked): each
    write is held to the versions its own checks read, not the other's."""
    guards = Guards()
    guards._entries[1] = _Entry(7, None)
    guards._entries[2] = _Entry(9, None)
    first_checked, second_began = asyncio.Event(), asyncio.Event()

    async def first() -> tuple[int | None, int | None]:
        guards.begin()
        guards.fact(1, "members")
        first_checked.set()
        await second_began.wait()
        return guards.checked_at(1), guards.checked_at(2)

    async def second() -> tuple[int | None, int | None]:
        await first_checked.wait()
        guards.begin()
        guards.fact(2, "members")
        second_began.set()
        return guards.checked_at(1), guards.checked_at(2)

    async with asyncio.timeout(TIMEOUT):
        seen = await asyncio.gather(asyncio.create_task(first()), asyncio.create_task(second()))
    assert list(seen) == [(7, None), (None, 9)]
    assert guards.checked_at(1) is None  # outside a batch's task: nothing was used


async def test_a_batch_committed_behind_a_stalled_one_is_acked_at_shutdown(
    settings: Settings,
) -> None:
    """Shutdown (the drain cancelled) while the first batch waits in the database and
    the second is committed: the second's sends are answered as written, not
    ``unavailable`` (a client retrying one would get ``created`` false: never
    published), and the first's as ``unavailable``."""
    async with _world(settings) as w:
        db, holder, watcher = w.db, w.holder, w.watcher
        (a, _, c), pat, quinn = await _seed(db)
        committer = GroupCommit(db, w.hub.publish, settings, can_access)
        answered: dict[str, BaseException | None] = {}

        def submit(who: Principal, matter: Matter, label: str) -> None:
            def settled(outcome: Outcome | None, error: BaseException | None) -> None:
                answered[label] = error

            send = Send(matter.reference, "message", "portal", {"thread": "t"}, None, label)
            committer.submit(who, send, None, settled)

        locks = holder.transaction()
        await locks.start()
        await holder.execute("SELECT id FROM matters WHERE id = $1 FOR UPDATE", a.id)
        submit(pat, a, "a1")
        await waiting_on_locks(watcher, 1)  # a1's batch waits for A's row
        submit(quinn, c, "c1")  # the second lane: written at once
        async with asyncio.timeout(TIMEOUT):
            await _written(watcher, c.id, "c1")  # the second lane committed it
            writes = _writes()  # a1's, and c1's unless it is over already
            if len(writes) == 2:
                await asyncio.wait({writes[1]})
            assert len(_writes()) == 1  # a1's still waits for A
            drainer = committer._drainer
            assert drainer is not None
            drainer.cancel()  # shutdown
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        await locks.rollback()
        assert set(answered) == {"a1", "c1"}
        assert isinstance(answered["a1"], Unavailable)
        assert answered["c1"] is None  # committed (``_written``): acked


def _writes() -> list[asyncio.Task[object]]:
    """The group commit's batch writes in flight, oldest first."""
    tasks = [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "GroupCommit._write_all"
    ]
    return sorted(tasks, key=lambda t: int(t.get_name().rsplit("-", 1)[-1]))


async def _written(conn: Any, matter_id: int, client_id: str) -> None:
    """Until the event ``client_id`` of the matter is committed (polled, as
    ``waiting_on_locks``: the commit happens in the server)."""
    query = "SELECT count(*) FROM events WHERE matter_id = $1 AND client_id = $2"
    async with asyncio.timeout(30):
        while not await conn.fetchval(query, matter_id, client_id):
            pass
