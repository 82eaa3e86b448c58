"""SQLite: a whole write transaction in one hop to one writer thread.

Why: aiosqlite runs each statement in its thread and wakes the event loop
for each result, so a group-commit batch (BEGIN IMMEDIATE, the stored
keys, the seqs, the rows, COMMIT) cost five hops between the loop and the
thread, each a cross-thread wake-up, plus SQLAlchemy's session around
them. ``SQLiteWriter.run(fn)`` runs ``fn(connection)`` inside ``BEGIN
IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` if it raises) on its own
``sqlite3`` connection, in its own thread, in one hop.

The connection has the pragmas of every connection of ``rtportal.db``
(WAL, ``busy_timeout``, ``synchronous=NORMAL``, ``foreign_keys``). It is
one more connection to the file, so other processes meet it at the file
lock as they meet the engine's; within the process the caller holds
``Database.write_lock()`` so that it does not queue behind the engine's
writers in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["SQLiteWriter"]

T = TypeVar("T")


class SQLiteWriter:
    """One ``sqlite3`` connection and the one thread that uses it."""

    def __init__(self, path: str, setup: Callable[[sqlite3.Connection], None]) -> None:
        self._path = path
        self._setup = setup
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtportal-sqlite-w")
        self._conn: sqlite3.Connection | None = None  # used in the writer thread only
        self._closed = False
        self._lock = threading.Lock()  # close() against a transaction in flight

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one write transaction, committed when it returns."""
        if self._closed:
            raise sqlite3.OperationalError("the SQLite writer is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, fn)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                # isolation_level=None: we say BEGIN and COMMIT ourselves.
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                self._setup(conn)
                self._conn = conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    # Cannot even roll back: drop the connection (SQLite rolls
                    # back what it did not commit) and open a new one next time.
                    conn.close()
                    self._conn = None
                raise
            return result

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_conn)
        self._executor.shutdown(wait=False)

    def _close_conn(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
