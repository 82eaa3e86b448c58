"""Database access: one async engine per backend, sessions, write transactions.

The URL scheme picks the driver: ``sqlite+aiosqlite:///path`` (embedded
default) or ``postgresql+asyncpg://...`` (several worker processes).

SQLite specifics, and why:

* WAL journal + ``synchronous=NORMAL``: readers never block the writer and
  a commit costs one fsync of the WAL at checkpoints, not per transaction.
* ``busy_timeout=10000``: a writer waits for another process's write lock
  instead of failing at once.
* Write transactions start with ``BEGIN IMMEDIATE``. A deferred transaction
  that first reads and then writes must *upgrade* its lock; if another
  process committed in between, SQLite answers ``SQLITE_BUSY`` at once (the
  busy handler is not used for that case). Taking the write lock up front
  makes two uvicorn workers on one file wait for each other instead.
  ``Database.session()`` is write-capable (``BEGIN IMMEDIATE``) because
  callers read-then-write (``can_access`` then ``append``);
  ``Database.read()`` is a deferred, read-only snapshot for pure readers.
* ``foreign_keys=ON``: SQLite does not enforce them unless asked.
* One write transaction at a time per ``Database`` (an ``asyncio.Lock``
  taken before the connection is checked out): a second writer of the same
  process queues on the lock in FIFO order instead of sleeping in SQLite's
  busy handler, whose growing back-off sleeps leave the lock free while
  writers sleep, so their latency grows with their number. Other processes
  on the same file still meet at the file lock, where ``BEGIN IMMEDIATE``
  + ``busy_timeout`` make them wait. A writer that waits longer than
  ``busy_timeout`` for the lock gets ``Unavailable``, as it would from
  SQLite.

Backend failures (connection refused, database locked past the timeout, no
pooled connection free within ``pool_timeout``) are mapped to
``Unavailable`` at this boundary.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from rtportal.datafiles import private_sqlite
from rtportal.db.sqlite_onehop import dbapi as onehop_dbapi
from rtportal.db.sqlite_onehop import defer_begin
from rtportal.db.sqlite_writer import SQLiteWriter
from rtportal.errors import InvalidConfig, Unavailable

__all__ = ["Database", "backend_of", "make_engine"]

SQLITE_BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")

# Errors that mean "the backend is not usable right now", not "your input is bad".
_BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,  # every pooled connection busy for pool_timeout seconds
    ConnectionError,
    TimeoutError,
)


# A PostgreSQL connection that is gone (asyncpg): invalidate it, do not reuse it.
_PG_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)


def _backend_failure(exc: BaseException) -> bool:
    """The backend is unusable (not "your input is bad"): map to ``Unavailable``.

    Besides ``_BACKEND_ERRORS``: asyncpg reports a connection closed in the
    middle of a statement as a plain ``DBAPIError`` that SQLAlchemy flags
    ``connection_invalidated``.
    """
    if isinstance(exc, _BACKEND_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def backend_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``; anything else is a configuration error."""
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite"
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql"
    raise InvalidConfig(
        "unsupported database URL: use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
    )


def _ensure_wal(cursor: Any) -> None:
    """Switch the file to WAL (once per file; a no-op read after that).

    Converting a fresh file needs a lock SQLite does not wait for with
    ``busy_timeout`` (it answers "database is locked" at once), and several
    workers start together on a new file: retry for up to the busy timeout.
    Only that first conversion can wait; it happens at startup.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # reason: SQLite offers no event for "lock released"


def sqlite_pragmas(cursor: Any) -> None:
    """The pragmas of every SQLite connection (the engine's and the writer's)."""
    # busy_timeout first: switching a fresh file to WAL takes a lock that
    # another process opening it at the same moment (workers starting
    # together) may hold; without the timeout that is "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _ensure_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")


def _setup_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    """Pragmas on every new connection; explicit BEGIN [IMMEDIATE] per transaction."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so the "begin" hook
        # below decides how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        sqlite_pragmas(cursor)
        if not immediate:
            # The reader engine's connections never write: a write there would
            # upgrade a read snapshot, which SQLite refuses at once ("database is
            # locked", no busy wait) whenever another write committed since the
            # snapshot began - a failure only under concurrency. Refused always,
            # it is found by any test that takes the path.
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Sent with the transaction's first statement, in its round trip
        # (``sqlite_onehop``); a transaction that runs nothing sends nothing.
        if not defer_begin(conn.connection.dbapi_connection, begin_sql):
            conn.exec_driver_sql(begin_sql)


def _bound_aiosqlite_terminate() -> None:
    """Bound SQLAlchemy's graceful close of an aiosqlite connection it terminates.

    A connection is terminated when a task is cancelled in the middle of using it
    (a websocket closed, the server stopping). SQLAlchemy then closes it in a
    shielded task while force-stopping its aiosqlite thread; when the thread stops
    first, the close queued to it is never answered and that task waits forever
    (seen: the event loop's shutdown hung on it). Bounded, it ends with
    ``TimeoutError``, which SQLAlchemy's terminate already handles."""
    from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite

    adapter = sa_aiosqlite.AsyncAdapt_aiosqlite_connection
    graceful = getattr(adapter, "_terminate_graceful_close", None)
    if graceful is None or getattr(graceful, "rtportal_bounded", False):
        return

    async def bounded(self: Any) -> None:
        async with asyncio.timeout(_ROLLBACK_SECONDS):
            await graceful(self)

    bounded.rtportal_bounded = True  # type: ignore[attr-defined]
    setattr(adapter, "_terminate_graceful_close", bounded)  # noqa: B010


def make_engine(
    url: str,
    *,
    immediate: bool = True,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """An engine for ``url``; on SQLite ``immediate`` picks BEGIN IMMEDIATE.

    Pool defaults: SQLite 8 + 8 overflow, PostgreSQL 10 + 20; a checkout
    waits at most ``pool_timeout`` seconds (then ``Unavailable``).
    """
    backend = backend_of(url)
    if backend == "sqlite":
        _bound_aiosqlite_terminate()
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite(path)  # 0600 before SQLite creates it (and its WAL/SHM)
        engine = create_async_engine(
            url,
            module=onehop_dbapi(),  # one thread hop per statement (sqlite_onehop)
            pool_size=8 if pool_size is None else pool_size,
            max_overflow=8 if max_overflow is None else max_overflow,
            pool_timeout=pool_timeout,
        )
        _setup_sqlite(engine, immediate=immediate)
        return engine
    # No pool_pre_ping: it costs a round trip per transaction. A connection
    # broken by a server restart fails one request (503 ``unavailable``) and
    # SQLAlchemy then invalidates the pool; pool_recycle bounds idle age.
    engine = create_async_engine(
        url,
        pool_size=10 if pool_size is None else pool_size,
        max_overflow=20 if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
    )
    _setup_postgresql(engine)
    return engine


REPLAN_SECONDS = 60.0
_PLANNED_AT = "rtportal_planned_at"


def _setup_postgresql(engine: AsyncEngine) -> None:
    """Re-plan each pooled connection's statements at most every
    ``REPLAN_SECONDS`` (``DISCARD PLANS`` at checkout).

    Why: PostgreSQL keeps a prepared statement's generic plan (and those of
    ``rtp_append_events``, which asks for generic plans) until something
    invalidates it, in practice an ANALYZE of a table it reads. Where
    autovacuum is off or slow, a plan made while ``events`` was small stays
    while the table grows 1,000-fold; re-planned, it sees the table's real
    size (the planner reads the current number of pages). One round trip a
    minute per connection; the statements stay prepared.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        now = time.monotonic()
        planned = record.info.setdefault(_PLANNED_AT, now)  # a new connection plans afresh
        if now - planned >= REPLAN_SECONDS:
            record.info[_PLANNED_AT] = now
            dbapi_connection.run_async(lambda conn: conn.execute("DISCARD PLANS"))


class Database:
    """The database of one worker process.

    ``session()`` yields a write-capable session the caller commits (so the
    caller can publish *after* commit); ``write()`` commits on success;
    ``read()`` is for pure readers. All roll back on error.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.backend = backend_of(url)

        def engine(immediate: bool) -> AsyncEngine:
            return make_engine(
                url,
                immediate=immediate,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
            )

        self.engine = engine(True)
        # PostgreSQL needs no separate reader engine: MVCC readers never block.
        self.read_engine = engine(False) if self.backend == "sqlite" else self.engine
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._readers = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite only: this process's writers queue here (see the module
        # docstring). Created lazily: an asyncio.Lock binds to the running loop.
        self._write_lock: asyncio.Lock | None = None
        self._writer: SQLiteWriter | None = None  # see has_sqlite_writer
        self.direct_writes = 0
        """Write transactions run outside SQLAlchemy (``autocommit()`` blocks,
        ``sqlite_transaction()`` calls): for tests and diagnostics, as
        SQLAlchemy's ``begin`` event does not see them."""

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction may write; the caller commits.

        On SQLite the block holds this process's write lock: do not nest a
        second ``session()``/``write()`` inside it (reads are fine).
        """
        if self.backend != "sqlite":
            async with self._write_session() as session:
                yield session
            return
        async with self.write_lock(), self._write_session() as session:
            yield session

    @asynccontextmanager
    async def write_lock(self) -> AsyncIterator[None]:
        """SQLite: this process's write lock (see the module docstring);
        ``Unavailable`` after the busy timeout. PostgreSQL: nothing to hold."""
        if self.backend != "sqlite":
            yield
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        lock = self._write_lock
        try:
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                await lock.acquire()
        except TimeoutError:
            raise Unavailable("the database is busy") from None
        try:
            yield
        finally:
            lock.release()

    @property
    def has_sqlite_writer(self) -> bool:
        """SQLite on a file: ``sqlite_transaction()`` is available. Not for
        PostgreSQL, nor for an in-memory database (a second connection
        would open another, empty database)."""
        if self._writer is None and self.backend == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                self._writer = SQLiteWriter(path, sqlite_pragmas)
        return self._writer is not None

    async def sqlite_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one SQLite write transaction, in one hop to
        the writer thread (``rtportal.db.sqlite_writer``), under this process's
        write lock; committed when it returns. ``Unavailable`` when SQLite is
        locked past the busy timeout or fails (as ``write()``)."""
        if not self.has_sqlite_writer or self._writer is None:
            raise RuntimeError("no SQLite writer for this database")
        self.direct_writes += 1
        try:
            async with self.write_lock():
                return await self._writer.run(fn)
        except sqlite3.OperationalError as err:
            raise Unavailable("the database is unavailable") from err

    @asynccontextmanager
    async def _write_session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            try:
                yield session
            except BaseException as exc:
                await _quiet_rollback(session)
                if _backend_failure(exc):
                    raise Unavailable("the database is unavailable") from exc
                raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction committed when the block exits without error."""
        async with self.session() as session:
            yield session
            try:
                await session.commit()
            except Exception as exc:
                if _backend_failure(exc):
                    raise Unavailable("the database is unavailable") from exc
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (deferred snapshot on SQLite); never commits."""
        session = self._readers()
        try:
            yield session
        except Exception as exc:
            if _backend_failure(exc):
                raise Unavailable("the database is unavailable") from exc
            raise
        finally:
            # No rollback here: closing the session ends the transaction without
            # expiring loaded objects, so ORM rows read here stay usable after
            # the block. A session that ran nothing holds no connection and no
            # object: its close (a greenlet hop and SQLAlchemy's teardown) is
            # skipped. The group commit opens one per batch and its checks
            # usually answer from what the worker remembers.
            if session.in_transaction() or session.identity_map:
                async with session:  # its exit closes it, to the end even if cancelled
                    pass

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Any]:
        """PostgreSQL only: the asyncpg connection of a pooled connection with
        no transaction open, so each statement commits on its own (the write
        path's one-statement batches, ``events.log.commit_batch``).

        A connection lost in the middle (closed, reset, the server gone) is
        invalidated, so the pool drops it, and raised as ``Unavailable``;
        other driver errors propagate as they are.
        """
        if self.backend != "postgresql":
            raise RuntimeError("autocommit() is for PostgreSQL")
        self.direct_writes += 1
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                try:
                    yield driver
                except Exception as exc:
                    if driver.is_closed() or isinstance(exc, _PG_LOST):
                        await conn.invalidate(exc)
                        raise Unavailable("the database is unavailable") from exc
                    raise
        except Exception as exc:
            if _backend_failure(exc):  # the checkout itself (refused, pool timeout)
                raise Unavailable("the database is unavailable") from exc
            raise

    async def ping(self) -> bool:
        """True when a trivial query succeeds (used by /healthz)."""
        try:
            async with self.read() as session:
                await session.execute(text("SELECT 1"))
        except Unavailable:
            return False
        return True

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


_ROLLBACK_SECONDS = 5.0


async def _quiet_rollback(session: AsyncSession) -> None:
    # A rollback on a dead connection raises again; the original error matters more.
    # Bounded: a connection whose worker thread already stopped (aiosqlite, at
    # shutdown) never answers, and a task cancelled mid-write would wait here
    # forever, holding up the event loop's shutdown.
    try:
        async with asyncio.timeout(_ROLLBACK_SECONDS):
            await session.rollback()
    except _BACKEND_ERRORS:
        pass
    except TimeoutError:
        pass
