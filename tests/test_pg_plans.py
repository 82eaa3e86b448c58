"""PostgreSQL: the write path's plans do not go stale as the tables grow, and the
read paths of threads (the staff feed, history and thread pages) use their indexes.

``rtp_append_events`` runs on generic plans, made once per connection. These
tests make a plan while the tables are nearly empty, grow them, and read the
plan PostgreSQL then runs (``auto_explain`` notices of the nested statements):

* the idempotency lookup probes the unique index, not a scan of ``events``
  (migration 0003);
* a pooled connection re-plans after ``db.REPLAN_SECONDS`` (``DISCARD PLANS``
  at checkout), so the ordered row lock reads ``matters`` by its index once
  the table is large; without the re-plan it still scans it (the control).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from rtportal.db import Database
from rtportal.db import engine as db_module
from rtportal.db.migrations import revision_module
from rtportal.db.models import Event, Matter
from rtportal.demo import create_firm, create_matter, create_staff
from rtportal.events import log as stream
from rtportal.events import store_pg
from rtportal.principal import Principal
from rtportal.threads.feed import FeedQuery, read_feed
from rtportal.threads.sql import ITEM_KINDS, thread_expr
from tests.support.pgdb import migrated_pg_database, nested_plans

_APPEND = "SELECT * FROM rtp_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database (small tables: plans made here are
    made for small tables)."""
    async with migrated_pg_database("rtp_plantest") as url:
        yield url


async def _seed(url: str) -> tuple[int, int, int]:
    """Two matters and a staff author: (matter, other matter, staff id)."""
    database = Database(url)
    try:
        async with database.write() as session:
            firm = await create_firm(session, "Plans & Co")
            staff = await create_staff(
                session, firm, email="plans@firm.test", display_name="Pat Plans"
            )
            one = await create_matter(session, firm, title="One", responsible=staff)
            two = await create_matter(session, firm, title="Two", responsible=staff)
            return one.id, two.id, staff.id
    finally:
        await database.close()


def _columns(matters: list[int], staff_id: int) -> list[Any]:
    """The append functions' parameters for a new send of the staff member in each of
    ``matters`` (the arrays, then the time)."""
    n = len(matters)
    ids = [secrets.token_hex(8) for _ in range(n)]
    actor = [["staff"] * n, [staff_id] * n, ["Pat Plans"] * n]
    return [
        list(range(n)),
        matters,
        ["message"] * n,
        ["portal"] * n,
        *actor,
        ["{}"] * n,
        [None] * n,
        ids,
        datetime.now(UTC),
    ]


async def _append(conn: Any, matter_id: int, staff_id: int, n: int = 3) -> None:
    """A batch of ``n`` new events (several rows: the function's batch statement)."""
    await conn.fetch(_APPEND, *_columns([matter_id] * n, staff_id))


async def _plans_of_next_append(conn: Any, matter_id: int, staff_id: int) -> str:
    """The plans PostgreSQL runs for the function's statements, as text."""
    return await nested_plans(conn, _append(conn, matter_id, staff_id))


async def _grow_events(url: str, matter_id: int, staff_id: int, rows: int) -> None:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id,"
            " actor_name, payload, client_id, created_at)"
            " SELECT $1, g, 'message', 'portal', 'staff', $2, 'Pat Plans', '{}', 'bulk-' || g,"
            " now()"
            " FROM generate_series(1, $3) AS g",
            matter_id,
            staff_id,
            rows,
        )
        await conn.execute("UPDATE matters SET last_seq = $2 WHERE id = $1", matter_id, rows)
    finally:
        await conn.close()


async def _grow_matters(url: str, rows: int) -> None:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "INSERT INTO matters (firm_id, reference, title, last_seq, created_at)"
            " SELECT (SELECT min(id) FROM firms), 'G' || g, 'grown', 0, now()"
            " FROM generate_series(1, $1) AS g",
            rows,
        )
    finally:
        await conn.close()


async def test_idempotency_lookup_probes_the_index_after_events_grew(fresh_url: str) -> None:
    one, two, staff = await _seed(fresh_url)
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:
        await _append(conn, one, staff)  # the generic plan is made now, on ~no events
        await _grow_events(fresh_url, two, staff, 20_000)
        plans = await _plans_of_next_append(conn, one, staff)
    finally:
        await conn.close()
    assert "WITH r AS" in plans  # the batch statement's plan was logged
    assert "Seq Scan on events" not in plans
    assert "uq_events_matter_id_actor_kind_actor_id_client_id" in plans


@pytest.mark.parametrize("replan", [True, False])
async def test_pooled_connection_replans_after_replan_seconds(
    fresh_url: str, replan: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _, staff = await _seed(fresh_url)
    monkeypatch.setattr(db_module, "REPLAN_SECONDS", 0.0 if replan else 3600.0)
    database = Database(fresh_url, pool_size=1, max_overflow=0)
    try:
        async with database.autocommit() as conn:
            # The mechanism, for plans that may scan: the function as 0021 left it
            # (0022's setting keeps its own plans off scans, see below).
            await _reset_no_seqscan(conn)
            await _append(conn, one, staff)  # plans made on 2 matters: a scan of the table
        await _grow_matters(fresh_url, 20_000)
        async with database.autocommit() as conn:  # the same pooled connection
            plans = await _plans_of_next_append(conn, one, staff)
    finally:
        await database.close()
    lock = next(part for part in plans.split("duration:") if "FOR UPDATE" in part)
    if replan:
        assert "Index Scan using pk_matters" in lock or "Bitmap" in lock, lock
        assert "Seq Scan on matters" not in lock, lock
    else:
        assert "Seq Scan on matters" in lock, lock


async def _reset_no_seqscan(conn: Any) -> None:
    """Migration 0022's downgrade: the append functions without ``enable_seqscan = off``."""
    for function in revision_module("0022_append_no_seqscan.py").FUNCTIONS:
        await conn.execute(f"ALTER FUNCTION {function} RESET enable_seqscan")


async def _guarded(conn: Any, matters: list[int], staff_id: int) -> None:
    """A guarded batch over ``matters`` (fresh: ``rtp_append_guarded``, ``rtp_append_fresh``)."""
    versions = await conn.fetch(
        "SELECT id, access_version FROM matters WHERE id = ANY($1::int[])", matters
    )
    await conn.fetch(
        "SELECT * FROM rtp_append_guarded($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
        " true, $12, $13)",
        *_columns(matters, staff_id),
        [row[0] for row in versions],
        [row[1] for row in versions],
    )


@pytest.mark.parametrize("revision", ["0022", "0021"])
async def test_the_append_functions_read_matters_by_key_after_it_grew(
    fresh_url: str, revision: str
) -> None:
    """Plans made on two matters, run once there are 20,000 (no re-plan, no ANALYZE):
    the row lock, ``heads``' UPDATE and the guard's version check each probe
    ``pk_matters`` (0022); before it (the control) they scanned the table."""
    one, two, staff = await _seed(fresh_url)
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:
        if revision == "0021":
            await _reset_no_seqscan(conn)
        await _guarded(conn, [one, two], staff)  # planned on 2 matters
        await _grow_matters(fresh_url, 20_000)
        plans = await nested_plans(conn, _guarded(conn, [one, two], staff))
    finally:
        await conn.close()
    parts = plans.split("duration:")
    reading = [p for p in parts if re.search(r"(FROM|UPDATE) matters", p)]
    assert any("FOR UPDATE" in p for p in reading), plans  # the lock
    assert any("access_version <>" in p for p in reading), plans  # the guard's check
    assert any("UPDATE matters AS m" in p for p in reading), plans  # heads
    if revision == "0022":
        assert "Seq Scan on matters" not in plans, plans
        assert all("pk_matters" in p for p in reading), plans
    else:
        assert "Seq Scan on matters" in plans, plans


# ``store_pg.WRITE``'s ``old`` as it was: a plain join of the items and ``events``.
_LATERAL = (
    "CROSS JOIN LATERAL (SELECT x.seq, x.kind, x.audience, x.actor_name, x.payload, x.blob,"
    " x.created_at FROM events AS x WHERE x.matter_id = r.matter_id"
    " AND x.actor_kind = r.actor_kind AND x.actor_id = r.actor_id"
    " AND x.client_id = r.client_id LIMIT 1) AS e"
)
_JOINED = (
    "JOIN events AS e ON e.matter_id = r.matter_id AND e.actor_kind = r.actor_kind"
    " AND e.actor_id = r.actor_id AND e.client_id = r.client_id"
)


async def _write(conn: Any, statement: str, matter_id: int, staff_id: int) -> None:
    """``store_pg.write``'s two statements (a batch of three) in a transaction."""
    async with conn.transaction():
        await conn.fetch(store_pg.LOCK, [matter_id])
        await conn.fetch(statement, *_columns([matter_id] * 3, staff_id))


@pytest.mark.parametrize("spelling", ["lateral", "join"])
async def test_the_transactions_batch_statement_probes_the_key_after_events_grew(
    fresh_url: str, spelling: str
) -> None:
    """``store_pg.WRITE`` (a batch in a caller's transaction) stays prepared on its
    connection: after five custom plans PostgreSQL keeps a generic one, made here on
    ~no events. Once ``events`` holds 20,000 rows its ``old`` still probes the key's
    index; the plain join it was (the control) hash-joins a scan of the table."""
    one, two, staff = await _seed(fresh_url)
    text = " ".join(store_pg.WRITE.split())
    assert text.count(_LATERAL) == 1
    statement = text if spelling == "lateral" else text.replace(_LATERAL, _JOINED)
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:
        for _ in range(8):  # PostgreSQL's plan cache: generic from the sixth run
            await _write(conn, statement, one, staff)
        await _grow_events(fresh_url, two, staff, 20_000)
        plans = await nested_plans(conn, _write(conn, statement, one, staff))
    finally:
        await conn.close()
    batch = next(part for part in plans.split("duration:") if "WITH r AS" in part)
    if spelling == "lateral":
        assert "Seq Scan on events" not in batch, batch
        assert "uq_events_matter_id_actor_kind_actor_id_client_id" in batch, batch
    else:
        assert "Seq Scan on events" in batch, batch


# --- the staff feed and history pages (docs/threads.md, docs/benchmarks.md) ---------------


async def _seed_feed(url: str) -> Principal:
    """A firm of 40 matters of 500 events each (every kind the feed shows, and keys
    events it does not), vacuumed and analysed as a database that ran a while."""
    database = Database(url)
    try:
        async with database.write() as session:
            firm = await create_firm(session, "Feed Plans")
            staff = await create_staff(session, firm, email="fp@firm.test", display_name="Flo")
            principal = Principal("staff", staff.id, firm.id, "Flo", role="staff")
    finally:
        await database.close()
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "INSERT INTO matters (firm_id, reference, title, last_seq, created_at)"
            " SELECT $1, 'PLAN' || lpad(g::text, 4, '0'), 'Plan', 500, now()"
            " FROM generate_series(1, 40) AS g",
            principal.firm_id,
        )
        await conn.execute(
            "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id,"
            " actor_name, payload, client_id, created_at)"
            " SELECT m.id, g,"
            "  (ARRAY['note','phase','access','bot','keys','message','message','message',"
            "   'message','message'])[g % 10 + 1],"
            "  'staff', CASE WHEN g % 2 = 1 THEN 'contact' ELSE 'staff' END, $2, 'X',"
            "  '{\"thread\":\"t' || (g % 10) || '\"}', 'k' || g, now()"
            " FROM matters m CROSS JOIN generate_series(1, 500) AS g"
            " WHERE m.firm_id = $1 ORDER BY g, m.id",
            principal.firm_id,
            principal.id,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return principal


async def _plans_of(url: str, run: Any) -> list[str]:
    """EXPLAIN of every statement ``run(session)`` sends that reads ``events``."""
    database = Database(url)
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "events" in statement:
            sent.append((statement, params))

    sa_event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.read() as session:
            await run(session)
        plans = []
        async with database.autocommit() as conn:
            for statement, params in sent:
                rows = await conn.fetch("EXPLAIN " + statement, *params)
                plans.append("\n".join(str(r[0]) for r in rows))
        return plans
    finally:
        await database.close()


@pytest.mark.parametrize(
    "query",
    [FeedQuery(), FeedQuery(type="phase"), FeedQuery(unread=True), FeedQuery(matter="PLAN0003")],
    ids=["all", "type", "unread", "matter"],
)
async def test_the_feed_reads_by_its_index(fresh_url: str, query: FeedQuery) -> None:
    principal = await _seed_feed(fresh_url)

    async def run(session: Any) -> None:
        page = await read_feed(session, principal, query)
        assert page.rows

    plans = await _plans_of(fresh_url, run)
    assert plans
    for plan in plans:
        assert "Seq Scan on events" not in plan, plan
        assert "ix_events_feed" in plan or "pk_events" in plan, plan
    # each matter probed newest first (index-only unless the filter reads the payload)
    assert any("Scan Backward using ix_events_feed" in plan for plan in plans)


async def test_history_and_thread_pages_read_by_their_indexes(fresh_url: str) -> None:
    principal = await _seed_feed(fresh_url)

    async def run(session: Any) -> None:
        matter = (
            await session.execute(select(Matter).where(Matter.reference == "PLAN0002"))
        ).scalar_one()
        assert len(await stream.read_before(session, matter.id, 501, 50, 4 << 20)) == 50
        thread = thread_expr("postgresql")
        items = (
            select(Event.seq)
            .where(Event.matter_id == matter.id, thread == "t5", Event.kind.in_(ITEM_KINDS))
            .order_by(Event.seq.desc())
            .limit(50)
        )
        assert len((await session.execute(items)).all()) == 50

    plans = await _plans_of(fresh_url, run)
    assert len(plans) >= 2
    for plan in plans:
        assert "Seq Scan on events" not in plan, plan
    assert any("ix_events_thread" in plan for plan in plans), plans
    assert any("uq_events_matter_id_seq" in plan for plan in plans), plans
    assert principal.kind == "staff"


async def test_a_feed_page_is_one_statement_through_the_index(fresh_url: str) -> None:
    """The page is one statement (its size does not grow with the matters, so
    its planning stays cheap), each matter probed backward index-only; with
    ``unread=1`` the walk skips the reader's own rows inside the index (its
    ``actor_id``, migration 0012) and checks marks by their unique index."""
    principal = await _seed_feed(fresh_url)
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:  # the reader has read threads t0-t4 of every matter up to seq 490
        await conn.execute(
            "INSERT INTO read_marks (matter_id, reader, thread, seq, updated_at)"
            " SELECT m.id, $1, 't' || g, 490, now() FROM matters m"
            " CROSS JOIN generate_series(0, 4) AS g",
            f"s{principal.id}",
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    for query in (FeedQuery(), FeedQuery(unread=True), FeedQuery(before=10_000)):

        async def run(session: Any, query: FeedQuery = query) -> None:
            assert (await read_feed(session, principal, query)).rows

        plans = await _plans_of(fresh_url, run)
        assert len(plans) == 1, plans
        plan = plans[0]
        assert "Index Only Scan Backward using ix_events_feed" in plan, plan
        assert "Seq Scan on events" not in plan, plan
        if query.unread:
            # the own-rows test is a filter of the index-only scan, not of a table read
            walk = (
                r"Index Only Scan Backward using ix_events_feed .*\n"
                r".*Index Cond: .*\n.*Filter: .*actor_id <> "
            )
            assert re.search(walk, plan), plan
            assert "uq_read_marks_matter_id_reader_thread" in plan, plan
