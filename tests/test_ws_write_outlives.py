"""A connection's write outlives the connection (rtportal.ws.threadcore, ws.core).

A closing websocket cancels its tasks. A read mark the client sent before it
went is still recorded (its write is shielded from the connection's end), and
the database stays writable: with SQLAlchemy's own aiosqlite adapter, a write
cancelled there in the middle of a statement left SQLite's connection
terminated but never closed, holding the write lock, so every later write of
the worker waited out the busy timeout and failed ``unavailable`` (seen as a
browser journey's "the database is unavailable"); rtportal's adapter
(``rtportal.db.sqlite_onehop``) runs a statement as one call, which a
cancellation does not split. The write is made slow by a trigger on
``read_marks`` (about two seconds), so the connection closes while it runs,
every time.
"""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select, text

from rtportal.app import create_app
from rtportal.db.models_threads import ReadMark
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.sqlitelock import sqlite_write_locked
from tests.support.threadworld import Applicants
from tests.support.wsjson import connected, recv

_SQLITE_SLOW = (
    "CREATE TRIGGER test_slow_mark_{op} AFTER {op} ON read_marks BEGIN"
    " SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    " WHERE x < 2000000) SELECT x FROM c); END"
)
_PG_SLOW = [
    "CREATE OR REPLACE FUNCTION test_slow_mark() RETURNS trigger AS"
    " $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER test_slow_mark AFTER INSERT OR UPDATE ON read_marks"
    " FOR EACH ROW EXECUTE FUNCTION test_slow_mark()",
]


async def _slow_marks(kit: FirmKit) -> None:
    async with kit.db.write() as session:
        if kit.db.backend == "sqlite":
            for op in ("INSERT", "UPDATE"):
                await session.execute(text(_SQLITE_SLOW.format(op=op)))
        else:
            for statement in _PG_SLOW:
                await session.execute(text(statement))


async def _undo_slow_marks(kit: FirmKit) -> None:
    async with kit.db.write() as session:
        if kit.db.backend == "sqlite":
            for op in ("INSERT", "UPDATE"):
                await session.execute(text(f"DROP TRIGGER test_slow_mark_{op}"))
        else:
            await session.execute(text("DROP TRIGGER test_slow_mark ON read_marks"))
            await session.execute(text("DROP FUNCTION test_slow_mark()"))


async def _mark_being_written(kit: FirmKit) -> bool:
    """Is a read mark's write in flight (its slow trigger running)?"""
    if kit.db.backend == "sqlite":
        return sqlite_write_locked(kit.settings.database_url)
    async with kit.db.read() as session:
        busy = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%read_marks%' AND pid <> pg_backend_pid()"
            )
        )
    return bool(busy)


async def test_a_read_mark_sent_as_the_connection_closes_is_written_and_frees_the_database(
    make_firm: MakeFirm,
) -> None:
    kit = await make_firm()
    world = await Applicants.make(kit)
    await world.item(kit.admin, "tA", to=(world.a.id,))
    [seq] = world.seqs["tA"]
    await _slow_marks(kit)
    try:
        async with running_server(create_app(kit.settings)) as server:
            ws = await connected(server, kit.tokens["contact"])
            upto = server.app.state.runtime.frames.cursors.event_token(kit.matter.id, seq)
            frame = {"type": "read", "id": "r1", "matter": kit.ref, "thread": "tA", "upto": upto}
            await ws.send(json.dumps(frame))
            for _ in range(500):  # the server has the frame and its write is running
                if await _mark_being_written(kit):
                    break
                await asyncio.sleep(0.01)  # reason: polling the database's state, bounded
            else:
                raise AssertionError(f"the read mark's write never started: {await recv(ws)}")
            await ws.close()  # the connection ends: its tasks are cancelled
            for _ in range(1000):  # the write ends (without the shield, SQLite's never does)
                if not await _mark_being_written(kit):
                    break
                await asyncio.sleep(0.01)  # reason: polling the database's state, bounded
            # The database takes a write, and the mark is there.
            async with kit.db.write() as session:
                await session.execute(
                    text("UPDATE firms SET name = name WHERE id = :id"), {"id": kit.firm_id}
                )
            async with kit.db.read() as session:
                marks = (
                    (
                        await session.execute(
                            select(ReadMark.seq).where(
                                ReadMark.matter_id == kit.matter.id, ReadMark.thread == "tA"
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
            assert list(marks) == [seq]
    finally:
        await _undo_slow_marks(kit)
