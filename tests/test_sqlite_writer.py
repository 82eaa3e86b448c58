"""The SQLite writer thread: one write transaction per call, all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rtportal.db import Database
from rtportal.db.engine import sqlite_pragmas
from rtportal.db.sqlite_writer import SQLiteWriter


def _setup(timeout_ms: int):  # type: ignore[no-untyped-def]
    def setup(conn: sqlite3.Connection) -> None:
        sqlite_pragmas(conn)
        conn.execute(f"PRAGMA busy_timeout={timeout_ms}")  # short, for the locked case

    return setup


@pytest.fixture
def path(tmp_path: Path) -> str:
    p = str(tmp_path / "w.db")
    conn = sqlite3.connect(p)
    conn.execute("PRAGMA journal_mode=WAL")  # as rtportal's files are
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    return p


def _rows(path: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


async def test_commits_what_fn_wrote_and_returns_its_result(path: str) -> None:
    writer = SQLiteWriter(path, _setup(1000))
    try:
        got = await writer.run(lambda c: c.execute("INSERT INTO t VALUES (1), (2)").rowcount)
        assert got == 2
        assert _rows(path) == [1, 2]  # visible to another connection: committed
    finally:
        await writer.close()


async def test_an_error_rolls_everything_back_and_the_writer_goes_on(path: str) -> None:
    writer = SQLiteWriter(path, _setup(1000))

    def half_then_fail(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (1)")
        c.execute("INSERT INTO t VALUES (1)")  # primary key clash

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(half_then_fail)
        assert _rows(path) == []  # nothing half-written
        await writer.run(lambda c: c.execute("INSERT INTO t VALUES (3)"))
        assert _rows(path) == [3]
    finally:
        await writer.close()


async def test_locked_by_another_process_past_the_busy_timeout(path: str) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
    writer = SQLiteWriter(path, _setup(50))
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await writer.run(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        holder.execute("COMMIT")
        await writer.run(lambda c: c.execute("INSERT INTO t VALUES (2)"))  # usable again
        assert _rows(path) == [2]
    finally:
        holder.close()
        await writer.close()


async def test_closed_writer_refuses(path: str) -> None:
    writer = SQLiteWriter(path, _setup(1000))
    await writer.close()
    with pytest.raises(sqlite3.OperationalError, match="closed"):
        await writer.run(lambda c: None)


async def test_database_maps_a_locked_file_to_unavailable(tmp_path: Path) -> None:
    from rtportal.db import migrate
    from rtportal.errors import Unavailable

    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await migrate.upgrade(url)
    db = Database(url)
    try:
        assert db.has_sqlite_writer
        before = db.direct_writes
        assert await db.sqlite_transaction(lambda c: c.execute("SELECT 1").fetchone()) == (1,)
        assert db.direct_writes == before + 1
        # Locked past the busy timeout: the writer's connection exists now;
        # shorten its timeout so the test does not wait ten seconds.
        await db.sqlite_transaction(lambda c: c.execute("PRAGMA busy_timeout=50"))
        holder = sqlite3.connect(str(tmp_path / "db.sqlite"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Unavailable):
                await db.sqlite_transaction(lambda c: c.execute("SELECT 1"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        await db.close()


def test_no_writer_for_postgresql() -> None:
    assert not Database("postgresql+asyncpg://u@127.0.0.1/x").has_sqlite_writer
