"""PostgreSQL: the write path's plans do not go stale as the tables grow.

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

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from rtportal.db import Database
from rtportal.db import engine as db_module
from rtportal.db.migrate import upgrade
from rtportal.demo import create_firm, create_matter, create_staff
from tests.support.pgdb import new_pg_database

_APPEND = "SELECT * FROM rtp_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database (small tables: plans made here are
    made for small tables)."""
    async with new_pg_database("rtp_plantest") as url:
        await upgrade(url)
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


async def _append(conn: Any, matter_id: int, staff_id: int, n: int = 3) -> None:
    """A batch of ``n`` new events (several rows: the function's batch statement)."""
    ids = [secrets.token_hex(8) for _ in range(n)]
    await conn.fetch(
        _APPEND,
        list(range(n)),
        [matter_id] * n,
        ["message"] * n,
        ["portal"] * n,
        ["staff"] * n,
        [staff_id] * n,
        ["Pat Plans"] * n,
        ["{}"] * n,
        [None] * n,
        ids,
        datetime.now(UTC),
    )


async def _plans_of_next_append(conn: Any, matter_id: int, staff_id: int) -> str:
    """The plans PostgreSQL runs for the function's statements, as text."""
    notices: list[str] = []
    conn.add_log_listener(lambda _conn, msg: notices.append(str(msg.message)))
    await conn.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
        " SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice;"
        " SET client_min_messages = notice"
    )
    await _append(conn, matter_id, staff_id)
    await conn.execute("SET auto_explain.log_min_duration = -1")
    return "\n".join(notices)


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
