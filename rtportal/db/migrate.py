"""Apply Alembic migrations programmatically (no alembic.ini at runtime).

``upgrade(url)`` runs at every app start and from ``rtportal migrate``.
Workers starting together must not race: on PostgreSQL the whole upgrade
runs in one transaction holding ``pg_advisory_xact_lock`` (DDL is
transactional there); on SQLite the transaction starts with
``BEGIN IMMEDIATE``, which takes the database write lock up front. The
loser waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from rtportal.db.engine import make_engine
from rtportal.db.sqlite_onehop import begin_now

__all__ = [
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary fixed 64-bit key for pg_advisory_xact_lock ("rtportal" in ASCII).
MIGRATION_LOCK_KEY = 0x7274706F7274616C


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade_sync(connection: Connection, target: str) -> None:
    command.upgrade(alembic_config(connection), target)


def _downgrade_sync(connection: Connection, target: str) -> None:
    command.downgrade(alembic_config(connection), target)


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _locked(url: str, step: Callable[[Connection, str], None], target: str) -> None:
    """Run one Alembic command in a single transaction holding the migration lock."""
    engine = make_engine(url, immediate=True)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            else:
                # The lock before Alembic starts: its module-level ``context`` is
                # one per process, and another upgrade of this process must not
                # run it at the same time (the engine would send the BEGIN with
                # Alembic's first statement).
                await begin_now((await conn.get_raw_connection()).dbapi_connection)
            await conn.run_sync(step, target)
    finally:
        await engine.dispose()


async def upgrade(url: str, target: str = "head") -> None:
    """Bring the database at ``url`` to ``target`` (default: the newest revision)."""
    await _locked(url, _upgrade_sync, target)


async def downgrade(url: str, target: str) -> None:
    """Roll the schema back to ``target`` (``"base"``: drop everything). Operators only."""
    await _locked(url, _downgrade_sync, target)


async def current_revision(url: str) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    engine = make_engine(url, immediate=False)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()
