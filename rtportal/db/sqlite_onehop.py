"""SQLite through SQLAlchemy's aiosqlite dialect, one thread hop per statement.

Why: aiosqlite runs every call of a cursor in its connection's thread and
wakes the event loop for each result. SQLAlchemy's adapter makes four such
calls per statement (open a cursor, execute, fetch, close) and three for the
``BEGIN`` it is told to send, so a read session with one query cost nine
round trips between the loop and the thread, 1.8 ms of CPU, more than the
query. Here a statement runs in one call (cursor, execute, fetch, close on
the thread), and a transaction's ``BEGIN`` is sent with its first statement
(``defer_begin``): that read session is two round trips (the statement, the
rollback that ends it). A transaction that ran nothing sends nothing.
A server-side cursor (``stream_results``: ``session.stream``, ``yield_per``)
stays SQLAlchemy's, which fetches rows as they are read, and sends the deferred
``BEGIN`` first (``OneHopStreamCursor``).

Used by every SQLite engine of ``rtportal.db`` (``make_engine`` passes
``module=dbapi()``); the URL and the dialect stay SQLAlchemy's
``sqlite+aiosqlite``. The cursor reaches aiosqlite's ``_execute`` (queue a
function on the connection's thread) and ``_conn`` (its ``sqlite3``
connection), as SQLAlchemy's own adapter does for ``isolation_level``.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["OneHopConnection", "OneHopStreamCursor", "begin_now", "dbapi", "defer_begin"]

# description, rows, rowcount, lastrowid, in a transaction after it
_Ran = tuple[Any, list[Any], int, int | None, bool]


def _run(
    conn: aiosqlite.Connection, begin: str | None, operation: str, parameters: Any, many: bool
) -> _Ran:
    """On the connection's thread: the deferred ``BEGIN``, then the statement, whole."""
    raw: sqlite3.Connection = conn._conn  # ValueError when closed, as aiosqlite's own calls
    if begin is not None:
        raw.execute(begin)
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid, raw.in_transaction
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement runs in one call to aiosqlite's thread; its rows
    are held here (as SQLAlchemy's adapter holds them after its fetch)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # a OneHopConnection
        # Not the parent's: it opens an aiosqlite cursor (one round trip).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are fetched whole

    async def _async_soft_close(self) -> None:
        pass  # nothing open on the thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._ran(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._ran(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _ran(self, operation: str, parameters: Any, *, many: bool) -> None:
        adapt = self._adapt_connection
        assert isinstance(adapt, OneHopConnection)
        async with adapt._execute_mutex:
            begin, adapt._begin = adapt._begin, None
            adapt._in_transaction = True  # until the statement says (it may fail)
            try:
                ran: _Ran = await self._connection._execute(
                    _run, self._connection, begin, operation, parameters, many
                )
            except Exception:
                adapt._begin_failed(begin)
                raise
        self._description, rows, self._rowcount, self._lastrowid, in_transaction = ran
        adapt._in_transaction = in_transaction
        self._rows = collections.deque(rows)

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass  # sqlite3 ignores them

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopStreamCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's server-side cursor (``stream_results``: ``session.stream``,
    ``yield_per``), its rows fetched as they are read, after the deferred
    ``BEGIN``: without it the statement would run before the transaction
    (autocommitted, outside the write lock, not undone by a rollback)."""

    __slots__ = ()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        adapt = self._adapt_connection
        assert isinstance(adapt, OneHopConnection)
        await adapt.begin_now()
        adapt._in_transaction = True  # what it ran is not looked at: assume open
        return await super()._execute_async(operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        adapt = self._adapt_connection
        assert isinstance(adapt, OneHopConnection)
        await adapt.begin_now()
        adapt._in_transaction = True
        return await super()._executemany_async(operation, seq_of_parameters)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's adapted connection with ``OneHopCursor`` and a deferred ``BEGIN``.

    A commit or rollback with no transaction open on the ``sqlite3`` connection
    (a deferred ``BEGIN`` never sent; the pool's reset after the session's own
    rollback) is a no-op in SQLite: it is not sent. Whether one is open is what
    the last statement's call saw; a failed call counts as open."""

    __slots__ = ("_begin", "_in_transaction")

    _cursor_cls = OneHopCursor
    _ss_cursor_cls = OneHopStreamCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:  # an aiosqlite.Connection
        super().__init__(dbapi, connection)
        self._begin: str | None = None
        self._in_transaction = True  # unknown until a statement ran: assume open

    def defer_begin(self, sql: str) -> None:
        """Send ``sql`` (a ``BEGIN``) with the next statement, in its round trip."""
        self._begin = sql

    async def begin_now(self) -> None:
        """Send a deferred ``BEGIN`` now: for a caller about to use the driver's
        connection directly, inside the transaction SQLAlchemy thinks is open."""
        begin, self._begin = self._begin, None
        if begin is not None:
            self._in_transaction = True
            raw = self._connection._conn
            try:
                await self._connection._execute(raw.execute, begin)
            except Exception:
                self._begin_failed(begin)
                raise

    def _begin_failed(self, begin: str | None) -> None:
        """After a call that sent ``begin`` failed: if no transaction is open (the
        ``BEGIN`` itself failed: the database locked past the busy timeout), it is
        sent again with the next statement. SQLAlchemy's transaction stays open
        after the error; a caller going on in it must not write outside one."""
        conn = self._connection
        raw = conn._connection  # the call has ended: the thread is idle
        # Not when stopped: a close may be queued to the thread (it is dead anyway).
        if begin is not None and conn._running and raw is not None and not raw.in_transaction:
            self._begin = begin

    def rollback(self) -> None:
        self._begin = None  # a deferred BEGIN never sent: nothing to end
        if self._in_transaction:
            super().rollback()
            self._in_transaction = False

    def commit(self) -> None:
        self._begin = None
        if self._in_transaction:
            super().commit()
            self._in_transaction = False


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for ``create_async_engine(..., module=dbapi())``."""
    return _OneHopDBAPI(aiosqlite, sqlite3)


def defer_begin(dbapi_connection: Any, sql: str) -> bool:
    """Defer ``sql`` to the connection's next statement if it is ours (True)."""
    if isinstance(dbapi_connection, OneHopConnection):
        dbapi_connection.defer_begin(sql)
        return True
    return False


async def begin_now(dbapi_connection: Any) -> None:
    """``OneHopConnection.begin_now`` if the connection is ours."""
    if isinstance(dbapi_connection, OneHopConnection):
        await dbapi_connection.begin_now()
