"""PostgreSQL: queueing a client's message for review probes the idempotency key's
index, not every message the sender wrote (migration 0021).

``rtp_queue_reviews`` runs on a generic plan made once per connection. Here the
plan is made while ``events`` is nearly empty, then the sender writes 20,000
messages in the matter (no ANALYZE, as on a busy new matter before autovacuum
gets to it), and the plan PostgreSQL runs for the next call is read
(``auto_explain`` notices of the nested statement). 0019's spelling probed the
feed's partial index there: a walk of all 20,000 per queued message.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from rtportal.db import Database
from rtportal.db.migrations import revision_module
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from tests.support.pgdb import migrated_pg_database, nested_plans

_QUEUE = (
    "SELECT rtp_queue_reviews($1::int[], $2::int[], $3::text[], $4::text[], $5::text[],"
    " $6::int[], $7::date[], $8::text[], $9)"
)


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    async with migrated_pg_database("rtp_probetest") as url:
        yield url


async def _seed(url: str) -> tuple[int, int, int]:
    """(firm, matter, client): a matter whose responsible staff member reviews."""
    database = Database(url)
    async with database.write() as session:
        firm = await create_firm(session, "Probe & Co")
        pat = await create_staff(session, firm, email="p@firm.test", display_name="Pat")
        matter = await create_matter(session, firm, title="One", responsible=pat)
        cleo = await create_contact(session, firm, display_name="Cleo")
        await add_member(session, matter, cleo)
    await database.close()
    return firm.id, matter.id, cleo.id


async def _queue(conn: Any, firm: int, matter: int, client: int, client_id: str) -> None:
    await conn.fetchval(
        _QUEUE,
        [firm],
        [matter],
        ["message"],
        [f"c{client}.{client_id}"],
        ["t1"],
        [client],
        [date.today()],
        [client_id],
        datetime.now(UTC),
    )


async def _grow(conn: Any, matter: int, client: int, rows: int) -> None:
    await conn.execute(
        "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id,"
        " actor_name, payload, client_id, created_at)"
        " SELECT $1, g, 'message', 'portal', 'contact', $2, 'Cleo', '{}', 'bulk-' || g, now()"
        " FROM generate_series(1, $3) AS g",
        matter,
        client,
        rows,
    )
    await conn.execute("UPDATE matters SET last_seq = $2 WHERE id = $1", matter, rows)


@pytest.mark.parametrize("revision", ["0021", "0019"])
async def test_the_review_queue_probes_the_key_after_events_grew(
    fresh_url: str, revision: str
) -> None:
    firm, matter, client = await _seed(fresh_url)
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:
        if revision == "0019":  # the control: the function as 0019 made it
            await conn.execute(revision_module("0019_reviews_written.py")._create())
        await _queue(conn, firm, matter, client, "first")  # planned on ~no events
        await _grow(conn, matter, client, 20_000)
        await conn.execute(
            "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id,"
            " actor_name, payload, client_id, created_at)"
            " VALUES ($1, 20001, 'message', 'portal', 'contact', $2, 'Cleo', '{}', $3, now())",
            matter,
            client,
            "probe-" + secrets.token_hex(4),
        )
        plans = await nested_plans(conn, _queue(conn, firm, matter, client, "probe-x"))
        queued = await conn.fetchval("SELECT count(*) FROM reviews")
    finally:
        await conn.close()
    insert = next(part for part in plans.split("duration:") if "INSERT INTO reviews" in part)
    assert queued == 0  # no message "probe-x": nothing queued, by either function
    # The plan's access to ``events`` (the line naming it and its index condition).
    lines = insert.splitlines()
    at = next(i for i, line in enumerate(lines) if " on events e " in line)
    events = "\n".join(lines[at : at + 2])
    probed = (
        "uq_events_matter_id_actor_kind_actor_id_client_id" in events
        and "matter_id = v.matter_id" in events
        and "client_id)::text = v.client_id" in events
    )
    if revision == "0021":  # one probe of the key per send, whatever the statistics
        assert probed and "Join Filter" not in insert, insert
    else:  # 0019: events scanned, each row matched against the sends
        assert not probed, insert


async def test_the_installed_function_is_0021s(fresh_url: str) -> None:
    conn = await asyncpg.connect(fresh_url.replace("+asyncpg", ""))
    try:
        body = await conn.fetchval("SELECT pg_get_functiondef('rtp_queue_reviews'::regproc)")
    finally:
        await conn.close()
    probe = revision_module("0021_review_probe.py").PROBE
    assert " ".join(probe.split()) in " ".join(body.split()), body
    assert "enable_seqscan" in body and "off" in body, body
