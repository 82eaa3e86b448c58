"""SQLite's one-hop adapter (``rtportal.db.sqlite_onehop``) keeps SQLAlchemy's
transactions: whatever runs a session's first statement, it runs inside the
transaction the engine's ``begin`` sends (``BEGIN IMMEDIATE`` for writers), and
a rollback undoes it. Real SQLite files; another connection looks at the lock."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from rtportal.db import Database
from tests.support.sqlitelock import sqlite_write_locked


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'onehop.db'}")
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield db
    await db.close()


async def _values(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars())


async def test_a_streamed_first_statement_runs_in_the_write_transaction(
    sqlite_db: Database,
) -> None:
    """``session.stream`` (a server-side cursor, ``stream_results``) as a write
    session's first statement: the write lock is taken before it reads, and what
    it wrote is undone by the rollback (it ran in the transaction, not on its own)."""
    db = sqlite_db
    async with db.session() as session:
        result = await session.stream(text("SELECT count(*) FROM t"))
        assert [tuple(r) for r in await result.all()] == [(0,)]
        assert sqlite_write_locked(db.url)  # BEGIN IMMEDIATE before the read
        await session.rollback()
    async with db.session() as session:
        result = await session.stream(text("INSERT INTO t (v) VALUES ('streamed') RETURNING id"))
        assert len(await result.all()) == 1
        assert sqlite_write_locked(db.url)
        await session.rollback()
    assert await _values(db) == []
    assert not sqlite_write_locked(db.url)
    async with db.write() as session:  # and committed when committed
        result = await session.stream(text("INSERT INTO t (v) VALUES ('kept') RETURNING id"))
        await result.all()
    assert await _values(db) == ["kept"]


async def test_a_streamed_read_session_reads_one_snapshot(sqlite_db: Database) -> None:
    """A read session's streamed first statement opens its snapshot: a write
    committed after it is not seen by the session's next statement."""
    db = sqlite_db
    async with db.read() as session:
        result = await session.stream(text("SELECT count(*) FROM t"))
        assert [tuple(r) for r in await result.all()] == [(0,)]
        other = sqlite3.connect(db.url.split("///", 1)[1])
        try:
            other.execute("INSERT INTO t (v) VALUES ('later')")
            other.commit()
        finally:
            other.close()
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0
    assert await _values(db) == ["later"]


async def test_a_statement_after_a_failed_begin_is_in_a_transaction(
    sqlite_db: Database,
) -> None:
    """The transaction's ``BEGIN IMMEDIATE`` fails (another process holds the write
    lock): a caller that goes on in the same transaction once the lock is free does
    not write outside it; its rollback undoes what it wrote."""
    db = sqlite_db
    path = db.url.split("///", 1)[1]
    async with db.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute("PRAGMA busy_timeout=0")  # fail at once, not in 10 s
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OperationalError, match="locked"):
                await conn.execute(text("INSERT INTO t (v) VALUES ('first')"))
        finally:
            other.execute("ROLLBACK")
            other.close()
        await conn.execute(text("INSERT INTO t (v) VALUES ('second')"))
        assert sqlite_write_locked(db.url)
        await conn.rollback()
        await driver.execute("PRAGMA busy_timeout=10000")
    assert await _values(db) == []
    assert not sqlite_write_locked(db.url)


async def _lock_freed(db: Database) -> bool:
    """Is SQLite's write lock free within 5 s? A connection terminated by a
    cancellation closes on its own thread, after the statement it was running.
    (A probe that does not wait can also meet a moment's ``SQLITE_BUSY`` of WAL
    bookkeeping: one free probe answers.)"""
    for _ in range(500):
        if not sqlite_write_locked(db.url):
            return True
        await asyncio.sleep(0.01)  # reason: polling SQLite's lock, bounded
    return False


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_write_cancelled_anywhere_leaves_all_or_nothing_and_clean_connections(
    tmp_path: Path, cancels: int
) -> None:
    """A write session cancelled at each of its awaits in turn (its statements,
    the deferred BEGIN, the commit, the pool's return), once or twice: each time
    both rows or none are written, the write lock is free and no pooled
    connection is left inside a transaction."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cancel.db'}", pool_size=2, max_overflow=0)
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))

        async def write() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
                await session.execute(text("INSERT INTO t (v) VALUES ('b')"))

        outcomes: list[str] = []
        steps = 0
        while outcomes[-3:] != ["written"] * 3:  # until it finishes before the cancel
            assert steps < 1000, outcomes
            before = len(await _values(db))
            task = asyncio.get_running_loop().create_task(write())
            for _ in range(steps):
                await asyncio.sleep(0)  # reason: the cancellation lands after `steps` turns
            for _ in range(cancels):
                task.cancel()
                await asyncio.sleep(0)  # reason: the second lands in the first's clean-up
            try:
                await task
                outcomes.append("written")
            except asyncio.CancelledError:
                outcomes.append("cancelled")
            assert await _lock_freed(db), steps
            assert len(await _values(db)) - before in (0, 2), steps
            conns = [await db.engine.connect() for _ in range(2)]
            try:
                for conn in conns:
                    driver = (await conn.get_raw_connection()).driver_connection
                    assert driver is not None and not driver.in_transaction, steps
            finally:
                for conn in conns:
                    await conn.close()
            steps += 1
        assert "cancelled" in outcomes
    finally:
        await db.close()


async def test_counts_and_ids_are_sqlites(sqlite_db: Database) -> None:
    """``rowcount`` (the single-use claims: sessions, recovery codes, invites test
    it is 1), ``lastrowid`` and ``RETURNING`` rows, as the statement ran them."""
    db = sqlite_db
    async with db.write() as session:
        first = await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert first.lastrowid == 1  # type: ignore[attr-defined]
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        claims = [
            ("UPDATE t SET v = 'x' WHERE v = 'none'", 0),
            ("UPDATE t SET v = 'a1' WHERE v = 'a'", 1),
            ("UPDATE t SET v = v || '!' WHERE v IN ('b', 'c')", 2),
            ("DELETE FROM t WHERE v = 'c!'", 1),
        ]
        for statement, count in claims:
            assert (await session.execute(text(statement))).rowcount == count, statement  # type: ignore[attr-defined]
        many = await session.execute(
            text("UPDATE t SET v = v || '?' WHERE id = :i"), [{"i": 1}, {"i": 2}, {"i": 9}]
        )
        assert many.rowcount == 2  # type: ignore[attr-defined]
        returned = await session.execute(text("UPDATE t SET v = v || 'r' RETURNING id"))
        assert sorted(returned.scalars()) == [1, 2]
    assert await _values(db) == ["a1?r", "b!?r"]
