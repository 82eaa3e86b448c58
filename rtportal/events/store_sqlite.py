"""The event log's SQLite store: the write path as one plan of statements.

The plan (``_plan``) yields each statement and is sent its rows back; it
runs two ways: on the session's aiosqlite connection (``write``, in the
caller's transaction) and on the writer thread's sqlite3 connection
(``commit``, ``rtportal.db.sqlite_writer``). ``driver_of`` (which sends
the session's deferred BEGIN IMMEDIATE, ``rtportal.db.sqlite_onehop``) or
the writer has run BEGIN IMMEDIATE: the transaction holds the database
write lock, nothing to lock row by row. SQLite 3.35+ (RETURNING).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Generator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from rtportal.events.batch import (
    Checked,
    Stored,
    Written,
    driver_of,
    guards_of,
    row_values,
    seqs_of,
)
from rtportal.events.guards import GuardMoved

__all__ = ["Also", "commit", "write", "write_also"]

# A companion's statement and rows (``rtportal.events.companion``).
Also = tuple[str, list[tuple[Any, ...]]]

STORED = (
    "SELECT e.matter_id, e.actor_kind, e.actor_id, e.client_id, e.seq, e.kind, e.audience,"
    " e.actor_name, e.payload, e.blob, e.created_at FROM json_each(?) AS r JOIN events AS e"
    " ON e.matter_id = json_extract(r.value, '$[0]')"
    " AND e.actor_kind = json_extract(r.value, '$[1]')"
    " AND e.actor_id = json_extract(r.value, '$[2]')"
    " AND e.client_id = json_extract(r.value, '$[3]')"
)
NEXT_SEQS = (
    "UPDATE matters SET last_seq = last_seq + v.n FROM (SELECT json_extract(value, '$[0]') AS mid,"
    " json_extract(value, '$[1]') AS n FROM json_each(?)) AS v"
    " WHERE matters.id = v.mid RETURNING id, last_seq"
)
# Batches: executemany (one hop). A batch of one: as on PostgreSQL.
INSERT = (
    "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,"
    " payload, blob, client_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ONCE = INSERT + " ON CONFLICT DO NOTHING RETURNING id"
NEXT_SEQ = "UPDATE matters SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
FIND_STORED = (
    "SELECT seq, kind, audience, actor_name, payload, blob, created_at FROM events"
    " WHERE matter_id = ? AND actor_kind = ? AND actor_id = ? AND client_id = ?"
)
GIVE_BACK_SEQ = "UPDATE matters SET last_seq = last_seq - 1 WHERE id = ?"
# The matters whose access_version moved since the batch's checks (pairs of
# [matter_id, version] as JSON): any row refuses the batch (``GuardMoved``).
MOVED = (
    "SELECT m.id FROM json_each(?) AS g JOIN matters AS m ON m.id = json_extract(g.value, '$[0]')"
    " WHERE m.access_version <> json_extract(g.value, '$[1]')"
)


def _time(at: datetime) -> str:
    """SQLAlchemy's SQLite spelling of ``UTCDateTime`` (naive UTC, microseconds)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _stored(row: Sequence[Any]) -> Stored:
    seq, kind, audience, actor_name, payload, blob, created_at = row
    when = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    return Stored(seq, kind, audience, actor_name, payload, blob, when)


# The SQLite write is one plan, run two ways: on the session's aiosqlite
# connection (``append_batch``, in the caller's transaction) and on the
# writer thread's sqlite3 connection (``commit_batch``). The plan yields
# each statement as ``(sql, parameters, many)`` and is sent its rows back;
# its return value is the ``Written``.
_Step = tuple[str, Any, bool]
_Plan = Generator[_Step, list[Any], Written]


def _plan(unique: list[Checked], at: datetime) -> _Plan:
    """The statements of a batch (the transaction already holds the write
    lock): for one send, its seq then its row (a retry gives the seq back
    and returns the stored row); for several, up to three: the stored keys,
    the seqs, the rows. First, when sends carry the versions their checks
    read (``guards_of``), one statement that they still hold (in the same
    transaction: nothing can move them before the commit)."""
    when = _time(at)
    guards = guards_of(unique)
    if guards:
        moved = yield MOVED, (json.dumps(guards),), False
        if moved:
            raise GuardMoved(int(row[0]) for row in moved)
    if len(unique) == 1:
        c = unique[0]
        matter_id = c.matter_id
        found = yield NEXT_SEQ, (matter_id,), False
        if not found:
            return {}, {}  # matter gone: NotFound
        ((head,),) = found
        row = row_values(c, head, when)
        if c.key is None:
            yield INSERT, row, False
            return {}, {matter_id: head}
        if (yield INSERT_ONCE, row, False):
            return {}, {matter_id: head}
        stored_rows = yield FIND_STORED, c.key, False
        if not stored_rows:  # pragma: no cover - only a (matter, seq) clash gets here
            raise RuntimeError(f"seq {head} of matter {matter_id} already exists")
        yield GIVE_BACK_SEQ, (matter_id,), False
        return {c.index: _stored(stored_rows[0])}, {}
    keys = [c.key for c in unique if c.key is not None]
    stored: dict[int, Stored] = {}
    if keys:
        found = yield STORED, (json.dumps(keys),), False
        by_key = {(r[0], r[1], r[2], r[3]): _stored(r[4:]) for r in found}
        stored = {c.index: by_key[c.key] for c in unique if c.key is not None and c.key in by_key}
    fresh = [c for c in unique if c.index not in stored]
    if not fresh:
        return stored, {}
    counts = Counter(c.matter_id for c in fresh)
    pairs = json.dumps([[m, n] for m, n in sorted(counts.items())])
    heads = dict((yield NEXT_SEQS, (pairs,), False))
    seqs = seqs_of(fresh, heads)
    rows = [row_values(c, seqs[c.index], when) for c in fresh if c.index in seqs]
    if rows:
        yield INSERT, rows, True
    return stored, heads


async def write(conn: AsyncConnection, unique: list[Checked], at: datetime) -> Written:
    """``_plan`` on the session's driver (aiosqlite), in its transaction."""
    driver = await driver_of(conn)
    plan = _plan(unique, at)
    try:
        sql, params, many = next(plan)
        while True:
            if many:
                await driver.executemany(sql, params)
                rows: list[Any] = []
            else:
                rows = list(await driver.execute_fetchall(sql, params))
            sql, params, many = plan.send(rows)
    except StopIteration as done:
        return cast(Written, done.value)


def _plan_also(unique: list[Checked], at: datetime, also: Also | None) -> _Plan:
    """``_plan``, then a companion's rows (their time last) in one ``executemany``."""
    written = yield from _plan(unique, at)
    if also is not None:
        sql, rows = also
        when = _time(at)
        yield sql, [(*row, when) for row in rows], True
    return written


async def write_also(
    session: AsyncSession, sql: str, rows: list[tuple[Any, ...]], at: datetime
) -> None:
    """A companion's rows in the session's transaction (in-memory SQLite's batches)."""
    if rows:
        driver = await driver_of(await session.connection())
        when = _time(at)
        await driver.executemany(sql, [(*row, when) for row in rows])


def commit(
    unique: list[Checked], at: datetime, also: Also | None, conn: sqlite3.Connection
) -> Written:
    """``_plan`` on the writer thread's connection, inside its
    transaction (``SQLiteWriter.run``): no hop between the statements; with
    a companion's rows (``rtportal.events.companion``) after the events."""
    plan = _plan_also(unique, at, also)
    try:
        sql, params, many = next(plan)
        while True:
            if many:
                conn.executemany(sql, params)
                rows: list[Any] = []
            else:
                rows = conn.execute(sql, params).fetchall()
            sql, params, many = plan.send(rows)
    except StopIteration as done:
        return cast(Written, done.value)
