"""Seed data of the feed and history benchmarks: one SQL statement per table, per dialect.

Rows are made by the database (``generate_series`` on PostgreSQL, a
recursive CTE on SQLite), so a million events take seconds, not minutes.
Event ``k`` (1..n, inserted in that order, so ``events.id`` follows it) is:

* every 20th a ``note`` (audience staff), then one each of ``phase``,
  ``access`` (staff), ``bot``, ``keys`` (not a feed kind); the rest
  ``message``, written by a contact when ``k`` is odd, else by staff;
* messages and notes carry ``thread`` ``t<k mod threads>`` and a client id
  ``<label><k>`` (so their item is ``<sender>.<label><k>``) and a 192-byte blob, as an
  encrypted item does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["seed_events", "seed_matters", "seed_read_marks", "seed_tag"]


_ACCESS = '{"action"\\:"invited","contact_id"\\:1,"invite_id"\\:1}'


def _series(dialect: str) -> str:
    if dialect == "postgresql":
        return "(SELECT generate_series(1, :n) AS k) AS g"
    return "(WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < :n) SELECT k FROM s) AS g"  # noqa: E501


def _blob(dialect: str) -> str:
    if dialect == "postgresql":
        return "decode(repeat(md5(CAST(g.k AS TEXT)), 12), 'hex')"
    return "randomblob(192)"


def _now(dialect: str) -> str:
    return "now()" if dialect == "postgresql" else "strftime('%Y-%m-%d %H:%M:%f', 'now')"


async def seed_matters(session: AsyncSession, firm_id: int, prefix: str, count: int) -> None:
    """``count`` matters ``<prefix>0001``... (a four-letter prefix: valid references)."""
    dialect = session.get_bind().dialect.name
    ref = (
        "'" + prefix + "' || lpad(CAST(g.k AS TEXT), 4, '0')"
        if dialect == "postgresql"
        else f"printf('{prefix}%04d', g.k)"
    )
    await session.execute(
        text(
            "INSERT INTO matters (firm_id, reference, title, last_seq, created_at) "
            f"SELECT :firm, {ref}, 'Matter ' || CAST(g.k AS TEXT), 0, {_now(dialect)} "
            f"FROM {_series(dialect)}"
        ),
        {"firm": firm_id, "n": count},
    )


async def seed_events(
    session: AsyncSession,
    *,
    firm_id: int,
    n: int,
    staff_id: int,
    contact_id: int,
    bot_id: int,
    threads: int,
    label: str = "k",
) -> None:
    """``n`` events spread over the firm's matters (event ``k`` to matter number
    ``k * 7919 mod matters``: every matter gets its share, interleaved in time)."""
    dialect = session.get_bind().dialect.name
    kind = (
        "CASE g.k % 20 WHEN 0 THEN 'note' WHEN 1 THEN 'phase' WHEN 2 THEN 'access' "
        "WHEN 3 THEN 'bot' WHEN 4 THEN 'keys' ELSE 'message' END"
    )
    sql = f"""
        INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,
                            payload, blob, client_id, created_at, redacted)
        SELECT matter_id, base + row_number() OVER (PARTITION BY matter_id ORDER BY k), kind,
               CASE WHEN kind IN ('note', 'access', 'keys') THEN 'staff' ELSE 'portal' END,
               actor_kind,
               CASE actor_kind WHEN 'contact' THEN CAST(:contact AS INTEGER)
                               WHEN 'bot' THEN CAST(:bot AS INTEGER)
                               ELSE CAST(:staff AS INTEGER) END,
               'Someone',
               CASE WHEN kind IN ('message', 'note')
                    THEN '{{"thread"\\:"t' || CAST(k % CAST(:threads AS INTEGER) AS TEXT) || '"}}'
                    WHEN kind = 'phase' THEN '{{"phase"\\:"Review"}}'
                    WHEN kind = 'access' THEN '{_ACCESS}'
                    WHEN kind = 'bot' THEN '{{"status"\\:"checked"}}'
                    ELSE '{{"what"\\:"epoch"}}' END,
               CASE WHEN kind IN ('message', 'note') THEN blob END,
               CASE WHEN kind IN ('message', 'note') THEN CAST(:label AS TEXT) || k END,
               {_now(dialect)}, {"false" if dialect == "postgresql" else "0"}
        FROM (
            SELECT g.k AS k, m.id AS matter_id, m.last_seq AS base, {kind} AS kind,
                   CASE WHEN {kind} = 'bot' THEN 'bot'
                        WHEN {kind} = 'message' AND g.k % 2 = 1 THEN 'contact'
                        ELSE 'staff' END AS actor_kind,
                   {_blob(dialect)} AS blob
            FROM {_series(dialect)}
            JOIN (SELECT id, last_seq, row_number() OVER (ORDER BY id) - 1 AS idx
                  FROM matters WHERE firm_id = :firm) AS m
              ON m.idx = (CAST(g.k AS BIGINT) * 7919)
                         % (SELECT count(*) FROM matters WHERE firm_id = :firm)
        ) AS e
        ORDER BY k
    """
    params: dict[str, Any] = {
        "n": n,
        "firm": firm_id,
        "staff": staff_id,
        "contact": contact_id,
        "bot": bot_id,
        "threads": threads,
        "label": label,
    }
    await session.execute(text(sql), params)
    await session.execute(
        text(
            "UPDATE matters SET last_seq = (SELECT coalesce(max(seq), 0) FROM events "
            "WHERE events.matter_id = matters.id) WHERE firm_id = :firm"
        ),
        {"firm": firm_id},
    )


async def seed_read_marks(
    session: AsyncSession, firm_id: int, reader: str, threads: int, behind: int
) -> None:
    """``reader`` has read half the threads of every matter up to ``behind`` events ago."""
    dialect = session.get_bind().dialect.name
    await session.execute(
        text(
            "INSERT INTO read_marks (matter_id, reader, thread, seq, updated_at) "
            f"SELECT m.id, :reader, 't' || CAST(g.k - 1 AS TEXT), m.last_seq - :behind, "
            f"{_now(dialect)} FROM matters m CROSS JOIN {_series(dialect)} "
            "WHERE m.firm_id = :firm"
        ),
        {"reader": reader, "n": threads // 2, "behind": behind, "firm": firm_id},
    )


async def seed_tag(session: AsyncSession, firm_id: int, tag: str, every: int) -> None:
    """One tag on every ``every``-th message of the firm."""
    dialect = session.get_bind().dialect.name
    await session.execute(
        text(
            "INSERT INTO tags (firm_id, tag, name_blob, created_by, created_at) "
            f"VALUES (:firm, :tag, :blob, 's1', {_now(dialect)})"
        ),
        {"firm": firm_id, "tag": tag, "blob": b"\x00" * 200},
    )
    await session.execute(
        text(
            "INSERT INTO item_tags (matter_id, item, seq, tag_id, added_by, added_at) "
            "SELECT e.matter_id, e.actor_kind || '.' || e.client_id, e.seq, "
            f"(SELECT id FROM tags WHERE firm_id = :firm AND tag = :tag), 's1', {_now(dialect)} "
            "FROM events e JOIN matters m ON m.id = e.matter_id "
            "WHERE m.firm_id = :firm AND e.kind = 'message' AND e.id % :every = 0"
        ),
        {"firm": firm_id, "tag": tag, "every": every},
    )
