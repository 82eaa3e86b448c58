"""Alembic migrations: empty -> head on SQLite and PostgreSQL, schema == models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from rtportal.db.migrate import current_revision, downgrade, head_revision, upgrade
from rtportal.db.models import Base
from tests.support.pgdb import new_pg_database

TABLES = {
    "firms",
    "staff_users",
    "contacts",
    "matters",
    "matter_members",
    "events",
    "auth_tokens",
    "contact_emails",
    "contact_phones",
    "matter_applicants",
    "credentials",
    "recovery_codes",
    "invites",
    "message_templates",
    "outbox",
    "audit_log",
    "key_roots",
    "key_certs",
    "key_revocation_lists",
    "key_client_revocations",
    "key_escrow",
    "key_manifests",
    "key_heads",
    "key_wraps",
    "key_handovers",
    "read_marks",
    "tags",
    "item_tags",
    "matter_types",
    "timeline_steps",
    "phases",
    "files",
    "reviews",
    "document_types",
    "document_defaults",
    "document_items",
    "document_recipients",
    "document_files",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    async with new_pg_database("rtp_migtest") as url:
        yield url


# Indexes on an expression, spelled per dialect in their migration and not in
# the models (a model Index holds one spelling); checked by name instead.
EXPRESSION_INDEXES = {"ix_events_thread", "ix_events_welcome"}


_INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
}


def _not_expression_index(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_object": _not_expression_index}
    )
    found = set(conn.execute(text(_INDEX_NAMES[conn.dialect.name])).scalars())
    missing = EXPRESSION_INDEXES - found
    return [("missing expression index", name) for name in sorted(missing)] + list(
        compare_metadata(ctx, Base.metadata)
    )


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


async def _inspect(url: str) -> tuple[list[Any], set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff), await conn.run_sync(_tables)
    finally:
        await engine.dispose()


async def test_empty_to_head_matches_models(empty_url: str) -> None:
    assert await current_revision(empty_url) is None
    await upgrade(empty_url)
    assert await current_revision(empty_url) == head_revision()
    diff, tables = await _inspect(empty_url)
    assert tables == TABLES
    assert diff == [], f"models and migrations disagree: {diff}"
    await upgrade(empty_url)  # a second start is a no-op
    assert await current_revision(empty_url) == head_revision()


async def test_downgrade_to_base_and_back(empty_url: str) -> None:
    await upgrade(empty_url)
    await downgrade(empty_url, "base")
    assert await current_revision(empty_url) is None
    assert (await _inspect(empty_url))[1] == set()
    await upgrade(empty_url)
    assert (await _inspect(empty_url))[1] == TABLES


async def test_workers_starting_together_do_not_race(empty_url: str) -> None:
    """Concurrent upgrades (separate engines, like separate workers) all succeed."""
    await asyncio.wait_for(asyncio.gather(*(upgrade(empty_url) for _ in range(3))), 60)
    assert await current_revision(empty_url) == head_revision()
    assert (await _inspect(empty_url))[0] == []


_FIRM_TRIGGERS = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'firms'",
    "postgresql": "SELECT DISTINCT trigger_name FROM information_schema.triggers"
    " WHERE event_object_table = 'firms'",
}


async def _firm_triggers(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            dialect = conn.dialect.name
            return set((await conn.execute(text(_FIRM_TRIGGERS[dialect]))).scalars())
    finally:
        await engine.dispose()


async def test_undoing_0018_keeps_the_firms_triggers(empty_url: str) -> None:
    """0018 adds two columns to ``firms``; undoing it drops them without rebuilding the
    table (on SQLite a rebuild drops its triggers: 0015's access_version, which the
    write path's guards rely on)."""
    await upgrade(empty_url)
    before = await _firm_triggers(empty_url)
    assert before
    await downgrade(empty_url, "0017_documents")
    assert await _firm_triggers(empty_url) == before
    await upgrade(empty_url)
    assert await _firm_triggers(empty_url) == before
    assert (await _inspect(empty_url))[0] == []
