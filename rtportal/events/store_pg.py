"""The event log's PostgreSQL store (asyncpg): the write path's statements.

See ``rtportal.events.batch`` for why the statements run on the driver, and
``rtportal.events.log.append_batch``/``commit_batch`` for what they
guarantee. ``write``/``write_one`` run inside the caller's transaction;
``commit`` is one autocommitted statement (the functions of migrations
0002-0004).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rtportal.events.batch import Checked, Stored, Written, driver_of, guards_of, row_values
from rtportal.events.guards import GuardMoved

__all__ = ["Also", "commit", "write", "write_one"]

# A companion's statement and rows (``rtportal.events.companion``).
Also = tuple[str, list[tuple[Any, ...]]]

# Row locks in ascending id order: two transactions (of two workers) that
# lock overlapping sets of matters always queue, never deadlock. Sent
# through SQLAlchemy (``exec_driver_sql``: no compiling), first:
# SQLAlchemy's asyncpg adapter BEGINs its transaction lazily, on its first
# statement, and the raw statements after it must run in that transaction
# (``batch.driver_of`` checks).
LOCK = "SELECT id FROM matters WHERE id = ANY($1::INTEGER[]) ORDER BY id FOR UPDATE"
# After the locks, one statement does the rest (its snapshot is taken once
# the locks are held, so it sees whatever a writer that held them committed):
# ``old`` finds the stored events among the items' idempotency keys (one probe
# of the key's index per item, a LATERAL subquery with LIMIT 1 as migration
# 0003's function: asyncpg keeps the statement prepared, and a generic plan
# PostgreSQL made for a plain join while ``events`` was small hash-joined a
# scan of the whole table once it was not, until the connection re-planned,
# ``REPLAN_SECONDS``); the
# other items (``fresh``) are numbered per matter (``k`` of ``n``, in item
# order); ``heads`` adds ``n`` to each matter's ``last_seq``; the insert
# gives item ``k`` the seq ``head - n + k``. Returned: the ``old`` rows and
# the new heads (Python derives the same seqs, ``batch.seqs_of``). Parameters: one
# array per column of ``r``, in item order, then ``created_at``.
WRITE = (
    "WITH r AS (SELECT * FROM unnest($1::INTEGER[], $2::INTEGER[], $3::TEXT[], $4::TEXT[],"
    " $5::TEXT[], $6::INTEGER[], $7::TEXT[], $8::TEXT[], $9::BYTEA[], $10::TEXT[])"
    " AS r(idx, matter_id, kind, audience, actor_kind, actor_id, actor_name, payload, blob,"
    " client_id)),"
    " old AS (SELECT r.idx, e.seq, e.kind, e.audience, e.actor_name, e.payload, e.blob,"
    " e.created_at FROM r CROSS JOIN LATERAL (SELECT x.seq, x.kind, x.audience,"
    " x.actor_name, x.payload, x.blob, x.created_at FROM events AS x"
    " WHERE x.matter_id = r.matter_id AND x.actor_kind = r.actor_kind"
    " AND x.actor_id = r.actor_id AND x.client_id = r.client_id LIMIT 1) AS e),"
    " fresh AS (SELECT r.*, row_number() OVER (PARTITION BY r.matter_id ORDER BY r.idx) AS k,"
    " count(*) OVER (PARTITION BY r.matter_id) AS n FROM r"
    " WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.idx = r.idx)),"
    " heads AS (UPDATE matters AS m SET last_seq = m.last_seq + c.n"
    " FROM (SELECT DISTINCT matter_id, n FROM fresh) AS c WHERE m.id = c.matter_id"
    " RETURNING m.id, m.last_seq),"
    " ins AS (INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id,"
    " actor_name, payload, blob, client_id, created_at)"
    " SELECT f.matter_id, h.last_seq - f.n + f.k, f.kind, f.audience, f.actor_kind, f.actor_id,"
    " f.actor_name, f.payload, f.blob, f.client_id, $11::TIMESTAMPTZ"
    " FROM fresh AS f JOIN heads AS h ON h.id = f.matter_id)"
    " SELECT 'old' AS src, idx, seq, kind, audience, actor_name, payload, blob, created_at"
    " FROM old UNION ALL SELECT 'head', id, last_seq, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM heads"
)
# A batch of one (a lone send: light load, the HTTP API, the demo) takes the
# two plain statements it always took, on both backends: cheaper for one row
# than the batch statements (CTEs, unnest, window functions), same
# guarantees. The UPDATE takes the matter's row lock (and the next seq)
# first, so a concurrent retry of the same key waits for it and, once it
# holds the lock, its INSERT meets the winner's committed row. On
# PostgreSQL it goes through SQLAlchemy, first (its transaction, as above).
NEXT_SEQ = "UPDATE matters SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq"
# Parameters: ``batch.row_values``.
INSERT = (
    "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,"
    " payload, blob, client_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
# A retry (same actor, matter, client_id) hits the unique constraint: no row back.
INSERT_ONCE = INSERT + " ON CONFLICT DO NOTHING RETURNING id"
FIND_STORED = (
    "SELECT seq, kind, audience, actor_name, payload, blob, created_at FROM events"
    " WHERE matter_id = $1 AND actor_kind = $2 AND actor_id = $3 AND client_id = $4"
)
GIVE_BACK_SEQ = "UPDATE matters SET last_seq = last_seq - 1 WHERE id = $1"
# The group commit's batch in one round trip, outside any transaction (the
# statement is its own): the function of migrations 0002/0003, which takes
# the locks of ``LOCK`` and then runs ``WRITE``'s statement; same
# parameters as ``WRITE``, same rows back.
APPEND = "SELECT * FROM rtp_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# Most batches: the function of migration 0004, the same without looking the
# sends up first; a retried send fails it on this key (``commit``).
APPEND_FRESH = "SELECT * FROM rtp_append_fresh($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# A batch whose sends carry the versions their checks read (``batch.guards_of``):
# the function of migration 0015 locks the matters and raises ``GUARD_MOVED``
# (nothing written, whatever else the statement writes) if a version moved,
# else runs ``APPEND_FRESH``'s function (``$12`` true) or ``APPEND``'s.
APPEND_GUARDED = (
    "SELECT * FROM rtp_append_guarded($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
GUARD_MOVED = "RTP01"
IDEMPOTENCY_KEY = "uq_events_matter_id_actor_kind_actor_id_client_id"


async def write(conn: AsyncConnection, unique: list[Checked], at: datetime) -> Written:
    """Two statements: the ordered row locks (through SQLAlchemy: it starts
    the transaction), then ``WRITE`` on the driver."""
    _no_guards(unique)
    ids = sorted({c.matter_id for c in unique})
    locked = set((await conn.exec_driver_sql(LOCK, (ids,))).scalars())
    live = [c for c in unique if c.matter_id in locked]  # the others: NotFound
    if not live:
        return {}, {}
    driver = await driver_of(conn)
    return _result(await driver.fetch(WRITE, *_arrays(live), at))


_COLUMN = re.compile(r":c([1-9][0-9]?)\b")


def _with_also(statement: str, sql: str, first: int) -> str:
    """``statement`` and a companion's query ``sql`` (one row: a function that
    writes, planned once) as one statement: same transaction, no extra round
    trip. ``b`` is materialised, so it runs once, and only after ``a`` has
    run (its condition reads ``a``), when ``a`` returned a row (else nothing
    was written for it to go with): ``a`` takes its matters' row locks in id
    order first. Left to the planner, ``b`` (one row) is scanned outermost
    and so runs first: its foreign-key checks would take key-share locks on
    those matters before them, and two workers' batches of one matter would
    each wait for the other's (a deadlock). The companion's ``:at`` is the
    batch's time (``$11``), its ``:c1``... the parameters from ``$first``
    on, after the statement's own."""
    sql = _COLUMN.sub(lambda m: f"${first + int(m[1]) - 1}", sql).replace(":at", "$11")
    # Both are the program's own SQL constants, never input.
    return (
        f"WITH a AS ({statement}), b AS MATERIALIZED"  # noqa: S608
        f" (SELECT * FROM ({sql}) AS w WHERE EXISTS (SELECT 1 FROM a))"
        " SELECT a.* FROM a, b"
    )


def _also_columns(also: Also) -> list[list[Any]]:
    """A companion's rows as one array per column."""
    return [list(column) for column in zip(*also[1], strict=True)]


def _no_guards(unique: list[Checked]) -> None:
    """In a caller's transaction the checks run in that transaction: a send that
    carries a version (checked outside it) belongs to ``commit``."""
    if guards_of(unique):  # pragma: no cover - a bug in the caller
        raise RuntimeError("versioned sends go through commit_batch")


async def commit(
    driver: Any, unique: list[Checked], at: datetime, also: Also | None = None
) -> Written:
    """The whole batch in one autocommitted statement: ``APPEND_FRESH``
    (no idempotency lookup) for two or more sends, and if one of them was
    stored already (its insert hits the idempotency key: the statement wrote
    nothing), or for a batch of one, ``APPEND``. ``also``: a companion's
    statement and rows (``rtportal.events.companion``), in the same statement,
    its columns as arrays after the statement's own parameters."""
    arrays = _arrays(unique)
    guards = guards_of(unique)
    if guards:
        return await _commit_guarded(driver, guards, arrays, at, also)
    fresh_sql, append_sql = APPEND_FRESH, APPEND
    params: list[Any] = [*arrays, at]
    if also is not None:
        first = len(params) + 1
        fresh_sql = _with_also(APPEND_FRESH, also[0], first)
        append_sql = _with_also(APPEND, also[0], first)
        params.extend(_also_columns(also))
    try:
        if len(unique) > 1:
            try:
                rows = await driver.fetch(fresh_sql, *params)
                return {}, {matter_id: head for _, matter_id, head in rows}
            except asyncpg.UniqueViolationError as err:
                if err.constraint_name != IDEMPOTENCY_KEY:
                    raise
        return _result(await driver.fetch(append_sql, *params))
    except asyncpg.IntegrityConstraintViolationError as err:  # pragma: no cover - a bug
        raise IntegrityError(None, None, err) from err


async def _commit_guarded(
    driver: Any,
    guards: list[tuple[int, int]],
    arrays: list[list[Any]],
    at: datetime,
    also: Also | None = None,
) -> Written:
    """``commit`` for a batch carrying versions: ``APPEND_GUARDED``, fresh first
    (with a companion's statement and rows, as ``commit``)."""
    ids, versions = [m for m, _ in guards], [v for _, v in guards]
    sql, extra = APPEND_GUARDED, []
    if also is not None:
        sql = _with_also(APPEND_GUARDED, also[0], len(arrays) + 5)  # after $11 .. $14
        extra = _also_columns(also)
    try:
        if len(arrays[0]) > 1:
            try:
                return _result(await driver.fetch(sql, *arrays, at, True, ids, versions, *extra))
            except asyncpg.UniqueViolationError as err:
                if err.constraint_name != IDEMPOTENCY_KEY:
                    raise
        return _result(await driver.fetch(sql, *arrays, at, False, ids, versions, *extra))
    except asyncpg.PostgresError as err:
        if err.sqlstate == GUARD_MOVED:
            raise GuardMoved(int(m) for m in str(err.detail or "").split(",") if m) from err
        if isinstance(err, asyncpg.IntegrityConstraintViolationError):  # pragma: no cover
            raise IntegrityError(None, None, err) from err
        raise


def _arrays(live: list[Checked]) -> list[list[Any]]:
    """``WRITE``'s and ``APPEND``'s array parameters, one per column of ``r``."""
    items = [c.item for c in live]
    return [
        [c.index for c in live],
        [c.matter_id for c in live],
        [i.send.kind for i in items],
        [i.send.audience for i in items],
        [i.actor.kind for i in items],
        [i.actor.id for i in items],
        [i.actor.display_name for i in items],
        [c.payload_text for c in live],
        [c.blob for c in live],
        [i.send.client_id for i in items],
    ]


def _result(rows: Sequence[Any]) -> Written:
    stored: dict[int, Stored] = {}
    heads: dict[int, int] = {}
    for src, idx, seq, kind, audience, actor_name, payload, blob, created_at in rows:
        if src == "old":
            stored[idx] = Stored(seq, kind, audience, actor_name, payload, blob, created_at)
        else:
            heads[idx] = seq
    return stored, heads


async def write_one(conn: AsyncConnection, c: Checked, at: datetime) -> Written:
    """A batch of one: UPDATE ... RETURNING (through SQLAlchemy: it starts
    the transaction), then INSERT on the driver (a retry: the stored row is
    looked up and the seq given back while the lock is held: no gap)."""
    _no_guards([c])
    matter_id = c.matter_id
    head = (await conn.exec_driver_sql(NEXT_SEQ, (matter_id,))).scalar_one_or_none()
    if head is None:
        return {}, {}  # matter gone: NotFound
    driver = await driver_of(conn)
    row = row_values(c, head, at)
    if c.key is None:
        await driver.execute(INSERT, *row)
        return {}, {matter_id: head}
    if await driver.fetchval(INSERT_ONCE, *row) is not None:
        return {}, {matter_id: head}
    found = await driver.fetchrow(FIND_STORED, *c.key)
    if found is None:  # pragma: no cover - only a (matter, seq) clash gets here
        raise RuntimeError(f"seq {head} of matter {matter_id} already exists")
    await driver.execute(GIVE_BACK_SEQ, matter_id)
    return {c.index: Stored(*found)}, {}
