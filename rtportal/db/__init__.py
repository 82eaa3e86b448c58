"""The database layer: engine and sessions, the SQLite writer thread, tables, migrations."""

from __future__ import annotations

from rtportal.db.engine import Database, backend_of

__all__ = ["Database", "backend_of"]
