"""Unread counts and the first unread item read the thread index (migration 0010).

``ix_events_thread`` is an expression index: a query uses it only when it
spells the thread expression and the partial index's predicate as the
migration did. These tests ask the real database's planner (SQLite or
PostgreSQL, per the test backend) for the plans of the read side's queries,
for a staff reader and an applicants-hidden client, with and without one
thread.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from rtportal.db import Database
from rtportal.principal import Principal
from rtportal.threads.readers import Reader
from rtportal.threads.unread import counts_query, first_unread_query

READERS = {
    "staff": Reader(Principal("staff", 1, 1, "Sam Staff"), True),
    "hidden client": Reader(Principal("contact", 2, 1, "Bea Applicant"), False),
}


async def plan(db: Database, query: object) -> str:
    async with db.read() as session:
        bind = session.get_bind()
        dialect = bind.dialect.name
        sql = str(query.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
        if dialect == "postgresql":
            # The test database is small: without this PostgreSQL may scan the
            # table whatever the indexes. What is asserted is that the query can
            # use the thread index at all (its expression and predicate match).
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            # On so small a table the feed index (which also leads with matter_id)
            # costs the same, and which one the planner picks depended on what the
            # suite wrote before: it is dropped for this EXPLAIN, in a transaction
            # rolled back below.
            await session.execute(text("DROP INDEX IF EXISTS ix_events_feed"))
            rows = await session.execute(text(f"EXPLAIN {sql}"))
            found = "\n".join(" ".join(str(c) for c in row) for row in rows.all())
            await session.rollback()
            return found
        else:
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return "\n".join(" ".join(str(c) for c in row) for row in rows.all())


@pytest.mark.parametrize("who", list(READERS))
@pytest.mark.parametrize("thread", [None, "t1"])
async def test_unread_counts_read_the_thread_index(
    db: Database, who: str, thread: str | None
) -> None:
    async with db.read() as session:
        dialect = session.get_bind().dialect.name
    got = await plan(db, counts_query(dialect, 1, READERS[who], thread))
    assert "ix_events_thread" in got, got
    if thread is not None and dialect == "sqlite":
        assert "ix_events_thread (matter_id=? AND <expr>=?)" in got, got


@pytest.mark.parametrize("who", list(READERS))
async def test_the_first_unread_item_is_one_index_range(db: Database, who: str) -> None:
    async with db.read() as session:
        dialect = session.get_bind().dialect.name
    got = await plan(db, first_unread_query(dialect, 1, READERS[who], "t1", 5))
    assert "ix_events_thread" in got, got
    if dialect == "sqlite":
        assert "ix_events_thread (matter_id=? AND <expr>=? AND seq>?)" in got, got


async def test_a_batch_of_openers_is_one_index_lookup_per_thread(db: Database) -> None:
    """``find_openers``' one statement (its threads as one parameter) finds each
    thread's first item through the thread index, on both backends."""
    from rtportal.threads.found import _OPENERS

    async with db.read() as session:
        dialect = session.get_bind().dialect.name
        statement = _OPENERS[dialect]
        if dialect == "postgresql":
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            await session.execute(text("DROP INDEX IF EXISTS ix_events_feed"))
            params: dict[str, object] = {"matters": [1, 2], "threads": ["a", "b"]}
            rows = await session.execute(text(f"EXPLAIN {statement.text}"), params)
        else:
            params = {"keys": '[[1, "a"], [2, "b"]]'}
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {statement.text}"), params)
        got = "\n".join(" ".join(str(c) for c in row) for row in rows.all())
        await session.rollback()
    assert "ix_events_thread" in got, got
    if dialect == "sqlite":
        assert "ix_events_thread (matter_id=? AND <expr>=?)" in got, got
