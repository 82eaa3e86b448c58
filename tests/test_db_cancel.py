"""A write cancelled in the middle of a statement frees the database (rtportal.db).

A task is cancelled wherever it awaits: a websocket's tasks when it closes, a
request's when its client goes, every task at shutdown. Here a statement is
made slow by a trigger (about two seconds) and its task cancelled while it
runs: the database must take the next write, and the cancelled one must leave
nothing behind. (The websocket case, where SQLAlchemy's old aiosqlite adapter
left SQLite's write lock held, is ``tests/test_ws_write_outlives.py``.)
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from rtportal.db import Database
from tests.support.sqlitelock import sqlite_write_locked

_SQLITE = [
    "CREATE TABLE IF NOT EXISTS test_cancel (id INTEGER PRIMARY KEY, note TEXT)",
    "CREATE TRIGGER IF NOT EXISTS test_cancel_slow AFTER INSERT ON test_cancel BEGIN"
    " SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    " WHERE x < 3000000) SELECT x FROM c); END",
]
_PG = [
    "CREATE TABLE IF NOT EXISTS test_cancel (id BIGSERIAL PRIMARY KEY, note TEXT)",
    "CREATE OR REPLACE FUNCTION test_cancel_slow() RETURNS trigger AS"
    " $$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS test_cancel_slow ON test_cancel",
    "CREATE TRIGGER test_cancel_slow AFTER INSERT ON test_cancel"
    " FOR EACH ROW EXECUTE FUNCTION test_cancel_slow()",
]


async def _running(db: Database) -> bool:
    """Is the slow insert in flight?"""
    if db.backend == "sqlite":
        return sqlite_write_locked(db.url)
    async with db.read() as session:
        busy = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%INTO test_cancel%' AND pid <> pg_backend_pid()"
            )
        )
    return bool(busy)


async def test_a_write_cancelled_mid_statement_frees_the_database(db: Database) -> None:
    async with db.write() as session:
        for statement in _SQLITE if db.backend == "sqlite" else _PG:
            await session.execute(text(statement))
        await session.execute(text("DELETE FROM test_cancel"))

    async def slow_insert() -> None:
        async with db.write() as session:
            await session.execute(text("INSERT INTO test_cancel (note) VALUES ('cancelled')"))

    task = asyncio.get_running_loop().create_task(slow_insert())
    for _ in range(500):  # the insert is running
        if await _running(db):
            break
        await asyncio.sleep(0.01)  # reason: polling the database's state, bounded
    else:
        raise AssertionError("the slow insert never started")
    # Cancelled, and cancelled again while it ends (a closing connection cancels
    # its tasks, then the server's shutdown or the task group does): the second
    # lands in SQLAlchemy's clean-up of the first.
    task.cancel()
    await asyncio.sleep(0)  # reason: let the first cancellation start its clean-up
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    # The next write goes through (without the fix SQLite's lock stayed held and
    # this failed ``unavailable`` after the 10 s busy timeout).
    async with asyncio.timeout(8):
        async with db.write() as session:
            await session.execute(
                text(
                    "DROP TRIGGER test_cancel_slow"
                    + ("" if db.backend == "sqlite" else " ON test_cancel")
                )
            )
            await session.execute(text("INSERT INTO test_cancel (note) VALUES ('next')"))
    async with db.read() as session:
        notes = (await session.execute(text("SELECT note FROM test_cancel"))).scalars().all()
    assert list(notes) == ["next"]  # the cancelled insert left nothing
