"""Is SQLite's write lock taken? (a test's view of a write in flight)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import make_url

__all__ = ["sqlite_write_locked"]


def sqlite_write_locked(url: str) -> bool:
    """True while some connection holds the write lock of the database at ``url``:
    a ``BEGIN IMMEDIATE`` that does not wait fails."""
    path = make_url(url).database
    assert path
    conn = sqlite3.connect(path, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True  # the write lock is taken
    finally:
        conn.close()
