"""The per-matter event log: ``append_batch``/``append``, ``read_since``, ``head``, ``can_access``.

Every change to a matter is an event with a per-matter ``seq`` (1, 2, 3...
without gaps) written in the caller's transaction. ``seq`` comes from
``UPDATE matters SET last_seq = last_seq + n ... RETURNING last_seq`` (``n``
new events of the matter in the batch): on PostgreSQL the matter's row lock
(taken first, in matter-id order) serialises writers of one matter across
processes until commit; on SQLite the write transaction (``BEGIN
IMMEDIATE``) already holds the database write lock. A rollback undoes the
counter with the insert, so a failed transaction leaves no gap and no
half-written record.

Callers commit, then publish (``hub.publish``); nothing here publishes.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import and_, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from rtportal import jsonlimits, wirejson
from rtportal.db.models import Event, Matter, MatterMember, utcnow
from rtportal.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RtPortalError,
)
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_EVENT_BLOB_MAX, DEFAULT_EVENT_PAYLOAD_MAX

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = [
    "AUDIENCES",
    "DEFAULT_BLOB_MAX",
    "DEFAULT_PAYLOAD_MAX",
    "AppendItem",
    "AppendResult",
    "StoredEvent",
    "active_memberships",
    "append",
    "append_batch",
    "b64decode_any",
    "b64encode_url",
    "can_access",
    "canonical_json",
    "commit_batch",
    "head",
    "heads",
    "list_matters",
    "read_before",
    "read_since",
    "valid_client_id",
    "valid_matter_ref",
]

AUDIENCES = ("portal", "staff")
DEFAULT_PAYLOAD_MAX = DEFAULT_EVENT_PAYLOAD_MAX
DEFAULT_BLOB_MAX = DEFAULT_EVENT_BLOB_MAX

_KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.:~-]{1,64}")
_MATTER_REF_RE = re.compile(r"[A-Z]{4}[0-9]{4}")


# The write path: a constant number of statements per batch, not per event
# (see append_batch), in one small section per backend below.
#
# Why the driver directly: SQLAlchemy still owns the transaction (BEGIN
# [IMMEDIATE] / COMMIT / rollback) and the pool, but the hot statements of a
# send run on the DBAPI driver's own connection (``_driver``) inside that
# transaction. SQLAlchemy's per-statement work (compiled-cache lookup, bind
# and result processing, ORM execute, greenlet hops) was about a fifth of a
# busy worker's CPU; aiosqlite takes one thread hop per statement
# (``execute_fetchall``/``executemany``), asyncpg caches the prepared
# statements itself. Statements are plain SQL constants, the same text
# whatever the batch size; per-event values travel as arrays (PostgreSQL:
# unnest) or one JSON text (SQLite: json_each), not as one parameter per
# value. Driver errors are raised as the SQLAlchemy errors they were
# (``_driver_error``): callers map them as before.

# --- PostgreSQL (asyncpg) --------------------------------------------------
# Row locks in ascending id order: two transactions (of two workers) that
# lock overlapping sets of matters always queue, never deadlock. Sent
# through SQLAlchemy (``exec_driver_sql``: no compiling), first:
# SQLAlchemy's asyncpg adapter BEGINs its transaction lazily, on its first
# statement, and the raw statements after it must run in that transaction
# (``_driver`` checks).
_PG_LOCK = "SELECT id FROM matters WHERE id = ANY($1::INTEGER[]) ORDER BY id FOR UPDATE"
# After the locks, one statement does the rest (its snapshot is taken once
# the locks are held, so it sees whatever a writer that held them committed):
# ``old`` finds the stored events among the items' idempotency keys; the
# other items (``fresh``) are numbered per matter (``k`` of ``n``, in item
# order); ``heads`` adds ``n`` to each matter's ``last_seq``; the insert
# gives item ``k`` the seq ``head - n + k``. Returned: the ``old`` rows and
# the new heads (Python derives the same seqs, ``_seqs``). Parameters: one
# array per column of ``r``, in item order, then ``created_at``.
_PG_WRITE = (
    "WITH r AS (SELECT * FROM unnest($1::INTEGER[], $2::INTEGER[], $3::TEXT[], $4::TEXT[],"
    " $5::TEXT[], $6::INTEGER[], $7::TEXT[], $8::TEXT[], $9::BYTEA[], $10::TEXT[])"
    " AS r(idx, matter_id, kind, audience, actor_kind, actor_id, actor_name, payload, blob,"
    " client_id)),"
    " old AS (SELECT r.idx, e.seq, e.kind, e.audience, e.actor_name, e.payload, e.blob,"
    " e.created_at FROM r JOIN events AS e ON e.matter_id = r.matter_id"
    " AND e.actor_kind = r.actor_kind AND e.actor_id = r.actor_id"
    " AND e.client_id = r.client_id),"
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
_PG_NEXT_SEQ = "UPDATE matters SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq"
# Parameters: ``_row``.
_PG_INSERT = (
    "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,"
    " payload, blob, client_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
# A retry (same actor, matter, client_id) hits the unique constraint: no row back.
_PG_INSERT_ONCE = _PG_INSERT + " ON CONFLICT DO NOTHING RETURNING id"
_PG_FIND_STORED = (
    "SELECT seq, kind, audience, actor_name, payload, blob, created_at FROM events"
    " WHERE matter_id = $1 AND actor_kind = $2 AND actor_id = $3 AND client_id = $4"
)
_PG_GIVE_BACK_SEQ = "UPDATE matters SET last_seq = last_seq - 1 WHERE id = $1"
# The group commit's batch in one round trip, outside any transaction (the
# statement is its own): the function of migrations 0002/0003, which takes
# the locks of ``_PG_LOCK`` and then runs ``_PG_WRITE``'s statement; same
# parameters as ``_PG_WRITE``, same rows back.
_PG_APPEND = "SELECT * FROM rtp_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
# Most batches: the function of migration 0004, the same without looking the
# sends up first; a retried send fails it on this key (``_pg_commit``).
_PG_APPEND_FRESH = "SELECT * FROM rtp_append_fresh($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
_IDEMPOTENCY_KEY = "uq_events_matter_id_actor_kind_actor_id_client_id"

# --- SQLite (aiosqlite; 3.35+ for RETURNING) --------------------------------
# ``session.connection()`` has run BEGIN IMMEDIATE (rtportal.db): the
# transaction holds the database write lock, nothing to lock row by row.
_SQLITE_STORED = (
    "SELECT e.matter_id, e.actor_kind, e.actor_id, e.client_id, e.seq, e.kind, e.audience,"
    " e.actor_name, e.payload, e.blob, e.created_at FROM json_each(?) AS r JOIN events AS e"
    " ON e.matter_id = json_extract(r.value, '$[0]')"
    " AND e.actor_kind = json_extract(r.value, '$[1]')"
    " AND e.actor_id = json_extract(r.value, '$[2]')"
    " AND e.client_id = json_extract(r.value, '$[3]')"
)
_SQLITE_NEXT_SEQS = (
    "UPDATE matters SET last_seq = last_seq + v.n FROM (SELECT json_extract(value, '$[0]') AS mid,"
    " json_extract(value, '$[1]') AS n FROM json_each(?)) AS v"
    " WHERE matters.id = v.mid RETURNING id, last_seq"
)
# Batches: executemany (one hop). A batch of one: as on PostgreSQL.
_SQLITE_INSERT = (
    "INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,"
    " payload, blob, client_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_ONCE = _SQLITE_INSERT + " ON CONFLICT DO NOTHING RETURNING id"
_SQLITE_NEXT_SEQ = "UPDATE matters SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
_SQLITE_FIND_STORED = (
    "SELECT seq, kind, audience, actor_name, payload, blob, created_at FROM events"
    " WHERE matter_id = ? AND actor_kind = ? AND actor_id = ? AND client_id = ?"
)
_SQLITE_GIVE_BACK_SEQ = "UPDATE matters SET last_seq = last_seq - 1 WHERE id = ?"
# Driver errors: SQLite's and asyncpg's (a lost connection may surface as OSError).
_DRIVER_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def valid_matter_ref(ref: str) -> bool:
    """Matter references are four capital letters and four digits ("AAAA0000")."""
    return isinstance(ref, str) and _MATTER_REF_RE.fullmatch(ref) is not None


def valid_client_id(client_id: str) -> bool:
    """Client ids: 1-64 characters of ``A-Za-z0-9_.:~-`` (uuids, ulids fit)."""
    return isinstance(client_id, str) and _CLIENT_ID_RE.fullmatch(client_id) is not None


def canonical_json(value: dict[str, Any]) -> str:
    """One spelling per payload, so retries compare equal byte for byte.

    ``allow_nan=False``: NaN and Infinity are not JSON; stored, they would
    make every later read of the matter fail to encode (a poisoned log).
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def b64encode_url(data: bytes) -> str:
    """Unpadded base64url: the wire form of ``blob``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_any(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; ``BadRequest`` otherwise."""
    if not isinstance(text, str):
        raise BadRequest("blob must be a base64 string")
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except ValueError:
        raise BadRequest("blob is not valid base64") from None


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed (or about to be committed) event, as every layer sees it."""

    matter_id: int
    matter: str
    seq: int
    kind: str
    audience: Literal["portal", "staff"]
    actor: dict[str, Any]
    payload: dict[str, Any]
    blob: bytes | None
    client_id: str | None
    created_at: str
    # Per-viewer-class views built by rtportal.events.audience.view_for, shared by
    # every connection of that class (read-only by convention).
    _views: dict[str, dict[str, Any] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The full (staff) view; ``blob`` as unpadded base64url or ``None``."""
        return {
            "matter": self.matter,
            "seq": self.seq,
            "kind": self.kind,
            "audience": self.audience,
            "actor": dict(self.actor),
            "payload": dict(self.payload),
            "blob": None if self.blob is None else b64encode_url(self.blob),
            "client_id": self.client_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_wire(cls, matter_id: int, data: dict[str, Any]) -> StoredEvent:
        """Rebuild an event from ``to_wire()`` output (e.g. a broker message)."""
        blob = data.get("blob")
        return cls(
            matter_id=matter_id,
            matter=str(data["matter"]),
            seq=int(data["seq"]),
            kind=str(data["kind"]),
            audience=cast(Literal["portal", "staff"], data["audience"]),
            actor=dict(data["actor"]),
            payload=dict(data["payload"]),
            blob=None if blob is None else b64decode_any(blob),
            client_id=data.get("client_id"),
            created_at=str(data["created_at"]),
        )


def _from_row(row: Event, reference: str) -> StoredEvent:
    return StoredEvent(
        matter_id=row.matter_id,
        matter=reference,
        seq=row.seq,
        kind=row.kind,
        audience=cast(Literal["portal", "staff"], row.audience),
        actor={"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        payload=jsonlimits.stored_payload(row.payload),
        blob=row.blob,
        client_id=row.client_id,
        created_at=_iso(row.created_at),
    )


def _validate(
    actor: Principal,
    kind: str,
    audience: str,
    payload: dict[str, Any],
    blob: bytes | None,
    client_id: str | None,
    payload_max: int,
    blob_max: int,
) -> str:
    """Check an append request; returns the canonical payload text."""
    if not isinstance(kind, str) or _KIND_RE.fullmatch(kind) is None:
        raise BadRequest("kind must be 1-32 characters of a-z, 0-9, '_', '.', '-'")
    if audience not in AUDIENCES:
        raise BadRequest("audience must be 'portal' or 'staff'")
    if client_id is not None and not valid_client_id(client_id):
        raise BadRequest("client_id must be 1-64 characters of A-Z a-z 0-9 _ . : ~ -")
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    if blob is not None and not isinstance(blob, bytes | bytearray):
        raise BadRequest("blob must be bytes")
    if not actor.is_staff:
        # Contacts write only what clients may see; staff-only data comes from staff.
        if audience != "portal":
            raise BadRequest("contacts may only append events with audience 'portal'")
        if any(isinstance(k, str) and k.startswith("staff_") for k in payload):
            raise BadRequest("contacts may not set staff_* payload fields")
    try:
        text = canonical_json(payload)
        size = len(text.encode("utf-8"))  # a lone surrogate raises UnicodeEncodeError here
    except (TypeError, ValueError, RecursionError):
        raise BadRequest("payload is not valid JSON (NaN, Infinity, lone surrogate?)") from None
    if size > payload_max:
        raise PayloadTooLarge(f"payload is over {payload_max} bytes")
    if blob is not None and len(blob) > blob_max:
        raise PayloadTooLarge(f"blob is over {blob_max} bytes")
    return text


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One event to append: ``matter`` must come from ``can_access`` for ``actor``."""

    matter: Matter
    actor: Principal
    kind: str
    audience: str
    payload: dict[str, Any]
    blob: bytes | None = None
    client_id: str | None = None


# Per item: ``(event, created)``, or the item's own error (nothing written for it).
AppendResult = tuple[StoredEvent, bool] | RtPortalError

_Key = tuple[int, str, int, str]  # (matter_id, actor_kind, actor_id, client_id)


@dataclass(slots=True)
class _Checked:
    """A valid item, its position in the batch and its canonical content."""

    index: int
    item: AppendItem
    payload_text: str
    blob: bytes | None
    key: _Key | None
    # ``item.matter.id`` read once: an ORM attribute costs a descriptor call.
    matter_id: int


def _same_content(
    kind: str,
    audience: str,
    payload_text: str,
    blob: bytes | None,
    other: _Checked,
) -> bool:
    return (
        kind == other.item.kind
        and audience == other.item.audience
        and payload_text == other.payload_text
        # An empty blob and no blob are the same content on both sides (b""
        # may be stored as either): a retry of an empty blob is not a conflict.
        and (blob or None) == (other.blob or None)
    )


def _conflict() -> Conflict:
    return Conflict("client_id was already used with different content")


def _stored_event(row: _Stored, c: _Checked) -> StoredEvent:
    """The stored event an item's idempotency key names (its key fields are the item's)."""
    item = c.item
    return StoredEvent(
        matter_id=c.matter_id,
        matter=item.matter.reference,
        seq=int(row.seq),
        kind=row.kind,
        audience=cast(Literal["portal", "staff"], row.audience),
        actor={"kind": item.actor.kind, "id": item.actor.id, "name": row.actor_name},
        payload=jsonlimits.stored_payload(row.payload),
        blob=None if row.blob is None else bytes(row.blob),
        client_id=item.client_id,
        created_at=_iso(row.created_at),
    )


def _seqs(fresh: list[_Checked], heads: dict[int, int]) -> dict[int, int]:
    """Item index -> seq: each matter's new items take the seqs up to its new
    head, in item order (the same rule as ``_PG_WRITE``'s ``k`` and ``n``)."""
    counts = Counter(c.matter_id for c in fresh)
    next_seq = {m: heads[m] - counts[m] + 1 for m in counts if m in heads}
    seqs: dict[int, int] = {}
    for c in fresh:
        matter_id = c.matter_id
        if matter_id in next_seq:  # else deleted since can_access: NotFound
            seqs[c.index] = next_seq[matter_id]
            next_seq[matter_id] += 1
    return seqs


class _Stored(NamedTuple):
    """A stored event an item's idempotency key names (read by the write path)."""

    seq: int
    kind: str
    audience: str
    actor_name: str
    payload: str
    blob: bytes | None
    created_at: datetime


_Written = tuple[dict[int, _Stored], dict[int, int]]  # (stored by item index, new heads)


def _row(c: _Checked, seq: int, at: Any) -> tuple[Any, ...]:
    """An insert's parameters, in the column order of ``_PG_INSERT``/``_SQLITE_INSERT``."""
    item, actor = c.item, c.item.actor
    return (
        c.matter_id, seq, item.kind, item.audience, actor.kind, actor.id,
        actor.display_name, c.payload_text, c.blob, item.client_id, at,
    )  # fmt: skip


async def _driver(conn: AsyncConnection) -> Any:
    """The driver's connection under ``conn`` (``aiosqlite.Connection`` or
    ``asyncpg.Connection``), checked to be inside the open transaction: a
    raw statement outside it would autocommit, and a rollback would not
    undo it."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        in_transaction = driver.is_in_transaction()
    else:
        in_transaction = driver.in_transaction
    if not in_transaction:  # pragma: no cover - a bug in the order of statements
        raise RuntimeError("the write path's statements must run in the open transaction")
    return driver


async def _driver_error(conn: AsyncConnection, driver: Any, err: Exception) -> DBAPIError:
    """The SQLAlchemy error SQLAlchemy would have raised for a driver error:
    ``Database`` maps ``OperationalError`` to ``Unavailable``; a connection
    found closed is invalidated (as SQLAlchemy does), so the pool drops it."""
    if isinstance(err, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(None, None, err)
    lost = conn.dialect.name == "postgresql" and (
        driver is None
        or driver.is_closed()
        or isinstance(err, OSError | asyncpg.PostgresConnectionError)
    )
    if lost:
        await conn.invalidate(err)
    if lost or isinstance(err, sqlite3.OperationalError | OSError):
        return OperationalError(None, None, err, connection_invalidated=lost)
    return DBAPIError(None, None, err)


# --- PostgreSQL ----------------------------------------------------------


async def _pg_write(conn: AsyncConnection, unique: list[_Checked], at: datetime) -> _Written:
    """Two statements: the ordered row locks (through SQLAlchemy: it starts
    the transaction), then ``_PG_WRITE`` on the driver."""
    ids = sorted({c.matter_id for c in unique})
    locked = set((await conn.exec_driver_sql(_PG_LOCK, (ids,))).scalars())
    live = [c for c in unique if c.matter_id in locked]  # the others: NotFound
    if not live:
        return {}, {}
    driver = await _driver(conn)
    return _pg_result(await driver.fetch(_PG_WRITE, *_pg_arrays(live), at))


async def _pg_commit(driver: Any, unique: list[_Checked], at: datetime) -> _Written:
    """The whole batch in one autocommitted statement: ``_PG_APPEND_FRESH``
    (no idempotency lookup) for two or more sends, and if one of them was
    stored already (its insert hits the idempotency key: the statement wrote
    nothing), or for a batch of one, ``_PG_APPEND``."""
    arrays = _pg_arrays(unique)
    try:
        if len(unique) > 1:
            try:
                rows = await driver.fetch(_PG_APPEND_FRESH, *arrays, at)
                return {}, {matter_id: head for _, matter_id, head in rows}
            except asyncpg.UniqueViolationError as err:
                if err.constraint_name != _IDEMPOTENCY_KEY:
                    raise
        return _pg_result(await driver.fetch(_PG_APPEND, *arrays, at))
    except asyncpg.IntegrityConstraintViolationError as err:  # pragma: no cover - a bug
        raise IntegrityError(None, None, err) from err


def _pg_arrays(live: list[_Checked]) -> list[list[Any]]:
    """``_PG_WRITE``'s and ``_PG_APPEND``'s array parameters, one per column of ``r``."""
    items = [c.item for c in live]
    return [
        [c.index for c in live],
        [c.matter_id for c in live],
        [i.kind for i in items],
        [i.audience for i in items],
        [i.actor.kind for i in items],
        [i.actor.id for i in items],
        [i.actor.display_name for i in items],
        [c.payload_text for c in live],
        [c.blob for c in live],
        [i.client_id for i in items],
    ]


def _pg_result(rows: Sequence[Any]) -> _Written:
    stored: dict[int, _Stored] = {}
    heads: dict[int, int] = {}
    for src, idx, seq, kind, audience, actor_name, payload, blob, created_at in rows:
        if src == "old":
            stored[idx] = _Stored(seq, kind, audience, actor_name, payload, blob, created_at)
        else:
            heads[idx] = seq
    return stored, heads


async def _pg_write_one(conn: AsyncConnection, c: _Checked, at: datetime) -> _Written:
    """A batch of one: UPDATE ... RETURNING (through SQLAlchemy: it starts
    the transaction), then INSERT on the driver (a retry: the stored row is
    looked up and the seq given back while the lock is held: no gap)."""
    matter_id = c.matter_id
    head = (await conn.exec_driver_sql(_PG_NEXT_SEQ, (matter_id,))).scalar_one_or_none()
    if head is None:
        return {}, {}  # matter gone: NotFound
    driver = await _driver(conn)
    row = _row(c, head, at)
    if c.key is None:
        await driver.execute(_PG_INSERT, *row)
        return {}, {matter_id: head}
    if await driver.fetchval(_PG_INSERT_ONCE, *row) is not None:
        return {}, {matter_id: head}
    found = await driver.fetchrow(_PG_FIND_STORED, *c.key)
    if found is None:  # pragma: no cover - only a (matter, seq) clash gets here
        raise RuntimeError(f"seq {head} of matter {matter_id} already exists")
    await driver.execute(_PG_GIVE_BACK_SEQ, matter_id)
    return {c.index: _Stored(*found)}, {}


# --- SQLite --------------------------------------------------------------


def _sqlite_time(at: datetime) -> str:
    """SQLAlchemy's SQLite spelling of ``UTCDateTime`` (naive UTC, microseconds)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_stored(row: Sequence[Any]) -> _Stored:
    seq, kind, audience, actor_name, payload, blob, created_at = row
    when = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    return _Stored(seq, kind, audience, actor_name, payload, blob, when)


# The SQLite write is one plan, run two ways: on the session's aiosqlite
# connection (``append_batch``, in the caller's transaction) and on the
# writer thread's sqlite3 connection (``commit_batch``). The plan yields
# each statement as ``(sql, parameters, many)`` and is sent its rows back;
# its return value is the ``_Written``.
_Step = tuple[str, Any, bool]
_Plan = Generator[_Step, list[Any], _Written]


def _sqlite_plan(unique: list[_Checked], at: datetime) -> _Plan:
    """The statements of a batch (the transaction already holds the write
    lock): for one send, its seq then its row (a retry gives the seq back
    and returns the stored row); for several, up to three: the stored keys,
    the seqs, the rows."""
    when = _sqlite_time(at)
    if len(unique) == 1:
        c = unique[0]
        matter_id = c.matter_id
        found = yield _SQLITE_NEXT_SEQ, (matter_id,), False
        if not found:
            return {}, {}  # matter gone: NotFound
        ((head,),) = found
        row = _row(c, head, when)
        if c.key is None:
            yield _SQLITE_INSERT, row, False
            return {}, {matter_id: head}
        if (yield _SQLITE_INSERT_ONCE, row, False):
            return {}, {matter_id: head}
        stored_rows = yield _SQLITE_FIND_STORED, c.key, False
        if not stored_rows:  # pragma: no cover - only a (matter, seq) clash gets here
            raise RuntimeError(f"seq {head} of matter {matter_id} already exists")
        yield _SQLITE_GIVE_BACK_SEQ, (matter_id,), False
        return {c.index: _sqlite_stored(stored_rows[0])}, {}
    keys = [c.key for c in unique if c.key is not None]
    stored: dict[int, _Stored] = {}
    if keys:
        found = yield _SQLITE_STORED, (json.dumps(keys),), False
        by_key = {(r[0], r[1], r[2], r[3]): _sqlite_stored(r[4:]) for r in found}
        stored = {c.index: by_key[c.key] for c in unique if c.key is not None and c.key in by_key}
    fresh = [c for c in unique if c.index not in stored]
    if not fresh:
        return stored, {}
    counts = Counter(c.matter_id for c in fresh)
    pairs = json.dumps([[m, n] for m, n in sorted(counts.items())])
    heads = dict((yield _SQLITE_NEXT_SEQS, (pairs,), False))
    seqs = _seqs(fresh, heads)
    rows = [_row(c, seqs[c.index], when) for c in fresh if c.index in seqs]
    if rows:
        yield _SQLITE_INSERT, rows, True
    return stored, heads


async def _sqlite_write(conn: AsyncConnection, unique: list[_Checked], at: datetime) -> _Written:
    """``_sqlite_plan`` on the session's driver (aiosqlite), in its transaction."""
    driver = await _driver(conn)
    plan = _sqlite_plan(unique, at)
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
        return cast(_Written, done.value)


def _sqlite_commit(unique: list[_Checked], at: datetime, conn: sqlite3.Connection) -> _Written:
    """``_sqlite_plan`` on the writer thread's connection, inside its
    transaction (``SQLiteWriter.run``): no hop between the statements."""
    plan = _sqlite_plan(unique, at)
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
        return cast(_Written, done.value)


async def append_batch(
    session: AsyncSession, items: Sequence[AppendItem], settings: Settings | None = None
) -> list[AppendResult]:
    """Append several events in the caller's transaction, in a constant number
    of statements (not per event); one result per item, in item order.

    Items may name many matters, several items one matter (they get
    consecutive seqs in item order) and repeat a ``client_id`` (of the same
    actor and matter: a retry). Statements, whatever the batch size:
    PostgreSQL, two: lock the matters' rows in ascending id order (``SELECT
    ... FOR UPDATE``), then one statement (``_PG_WRITE``) that finds the
    stored events among the items' idempotency keys (its snapshot is taken
    after the locks, so a concurrent writer of the same key has committed),
    allocates each matter's seqs (``UPDATE ... RETURNING``) and inserts the
    new rows. SQLite, up to three (the write transaction holds the database
    lock): the stored keys (``json_each``), ``UPDATE ... RETURNING``, one
    ``executemany`` insert. They run on the driver's connection, in the
    session's transaction (PostgreSQL: after the first, sent through
    SQLAlchemy, which starts it); see the write path's section above.

    An item's own failure is returned, not raised, and writes nothing:
    ``BadRequest``/``PayloadTooLarge`` (validation), ``NotFound`` (another
    firm's or a deleted matter), ``Conflict`` (its ``client_id`` is stored,
    or earlier in the batch, with other content). A retry of a stored or
    earlier item returns that event with ``created=False`` (no new row, do
    not publish it again). Seqs are allocated only for the rows inserted,
    so the transaction stays clean and gapless whatever fails. Backend
    errors raise (the caller rolls back: nothing half-written).
    """
    results, checked = _check(items, settings)
    if checked:
        unique, repeats = _unique(checked)
        conn = await session.connection()  # SQLite: BEGIN IMMEDIATE has run
        at = utcnow()
        pg = conn.dialect.name == "postgresql"
        try:
            if not pg:
                stored, heads = await _sqlite_write(conn, unique, at)
            elif len(unique) == 1:
                stored, heads = await _pg_write_one(conn, unique[0], at)
            else:
                stored, heads = await _pg_write(conn, unique, at)
        except _DRIVER_ERRORS as err:
            raw = await conn.get_raw_connection()
            raise await _driver_error(conn, raw.driver_connection, err) from err
        _finish(unique, repeats, stored, heads, at, results)
    return [r if r is not None else NotFound("no such matter") for r in results]


async def commit_batch(
    db: Database, items: Sequence[AppendItem], settings: Settings | None = None
) -> list[AppendResult]:
    """``append_batch`` in a transaction of its own, committed on return.

    The group commit's write: on PostgreSQL one round trip, the function
    ``rtp_append_fresh`` (migration 0004; ``rtp_append_events`` of 0002/0003
    for a batch of one or one holding a retry: the same locks and statement
    as ``_pg_write``) called outside any transaction, so the statement is its
    own transaction and commits without BEGIN/COMMIT round trips or
    SQLAlchemy's session around it. On SQLite, the same statements as
    ``append_batch`` in one hop to the database's writer thread
    (``rtportal.db.sqlite_writer``: BEGIN IMMEDIATE to COMMIT there, under the
    process's write lock) instead of a hop per statement. Results as
    ``append_batch``'s; committed when returned (backend errors raise,
    nothing written).
    """
    pg = db.backend == "postgresql"
    if not pg and not db.has_sqlite_writer:  # in-memory SQLite
        async with db.write() as session:
            return await append_batch(session, items, settings)
    results, checked = _check(items, settings)
    if checked:
        unique, repeats = _unique(checked)
        at = utcnow()
        if pg:
            async with db.autocommit() as driver:
                stored, heads = await _pg_commit(driver, unique, at)
        else:
            stored, heads = await db.sqlite_transaction(partial(_sqlite_commit, unique, at))
        _finish(unique, repeats, stored, heads, at, results)
    return [r if r is not None else NotFound("no such matter") for r in results]


def _check(
    items: Sequence[AppendItem], settings: Settings | None
) -> tuple[list[AppendResult | None], list[_Checked]]:
    """Validate every item: the errors in ``results``, the valid items checked."""
    payload_max = settings.event_payload_max if settings else DEFAULT_PAYLOAD_MAX
    blob_max = settings.event_blob_max if settings else DEFAULT_BLOB_MAX
    results: list[AppendResult | None] = [None] * len(items)
    checked: list[_Checked] = []
    for index, item in enumerate(items):
        actor = item.actor
        matter_id = item.matter.id
        try:
            if item.matter.firm_id != actor.firm_id:
                raise NotFound("no such matter")
            payload_text = _validate(
                actor,
                item.kind,
                item.audience,
                item.payload,
                item.blob,
                item.client_id,
                payload_max,
                blob_max,
            )
        except RtPortalError as err:
            results[index] = err
            continue
        blob = bytes(item.blob) if item.blob is not None else None
        key = None if item.client_id is None else (matter_id, actor.kind, actor.id, item.client_id)
        checked.append(_Checked(index, item, payload_text, blob, key, matter_id))
    return results, checked


def _unique(checked: list[_Checked]) -> tuple[list[_Checked], list[tuple[_Checked, _Checked]]]:
    """The items that go to the database (first occurrence of each key) and the
    repeats of a key within the batch, settled after it as ``(repeat, first)``."""
    first: dict[_Key, _Checked] = {}
    repeats: list[tuple[_Checked, _Checked]] = []
    unique: list[_Checked] = []
    for c in checked:
        if c.key is not None:
            if c.key in first:
                repeats.append((c, first[c.key]))
                continue
            first[c.key] = c
        unique.append(c)
    return unique, repeats


def _finish(
    unique: list[_Checked],
    repeats: list[tuple[_Checked, _Checked]],
    stored: dict[int, _Stored],
    heads: dict[int, int],
    at: datetime,
    results: list[AppendResult | None],
) -> None:
    """Fill ``results`` from what the write found (``stored``) and allocated (``heads``)."""
    fresh: list[_Checked] = []
    for c in unique:
        row = stored.get(c.index)
        if row is None:
            fresh.append(c)
        elif _same_content(row.kind, row.audience, row.payload, row.blob, c):
            results[c.index] = (_stored_event(row, c), False)
        else:
            results[c.index] = _conflict()
    seqs = _seqs(fresh, heads)
    created_at = _iso(at)
    # Each loaded Matter written to (several items may share one), by identity.
    written: dict[int, tuple[Matter, int]] = {}
    for c in fresh:
        seq = seqs.get(c.index)
        if seq is None:
            continue  # matter gone: NotFound
        item = c.item
        written[id(item.matter)] = (item.matter, c.matter_id)
        results[c.index] = (
            StoredEvent(
                matter_id=c.matter_id,
                matter=item.matter.reference,
                seq=seq,
                kind=item.kind,
                audience=cast(Literal["portal", "staff"], item.audience),
                actor=item.actor.actor(),
                payload=wirejson.loads(c.payload_text),
                blob=c.blob,
                client_id=item.client_id,
                created_at=created_at,
            ),
            True,
        )
    for matter, matter_id in written.values():
        # Keep loaded Matters in step without marking them dirty.
        set_committed_value(matter, "last_seq", heads[matter_id])

    for c, earlier in repeats:
        row = stored.get(earlier.index)
        done = results[earlier.index]
        if row is not None:  # a retry of a stored event, like its first occurrence
            same = _same_content(row.kind, row.audience, row.payload, row.blob, c)
            results[c.index] = (_stored_event(row, c), False) if same else _conflict()
        elif done is None or isinstance(done, RtPortalError):
            continue  # the first occurrence's matter is gone: NotFound too
        elif _same_content(c.item.kind, c.item.audience, c.payload_text, c.blob, earlier):
            results[c.index] = (done[0], False)
        else:
            results[c.index] = _conflict()


async def append(
    session: AsyncSession,
    *,
    matter: Matter,
    actor: Principal,
    kind: str,
    audience: str,
    payload: dict[str, Any],
    blob: bytes | None,
    client_id: str | None,
    settings: Settings | None = None,
) -> tuple[StoredEvent, bool]:
    """Append one event in the caller's transaction; returns ``(event, created)``.

    A batch of one (``append_batch``): ``matter`` must come from
    ``can_access`` for ``actor``. A repeated ``client_id`` of the same actor
    on the same matter returns the stored event with ``created=False`` (do
    not publish it again); the same id with different content raises
    ``Conflict``. Limits come from ``settings`` (defaults: the ``Settings``
    defaults). Errors raise and leave the transaction clean.
    """
    item = AppendItem(matter, actor, kind, audience, payload, blob, client_id)
    (result,) = await append_batch(session, [item], settings)
    if isinstance(result, RtPortalError):
        raise result
    return result


async def read_since(
    session: AsyncSession, matter_id: int, after_seq: int, limit: int
) -> list[StoredEvent]:
    """Events of a matter with ``seq > after_seq``, in seq order, at most ``limit``."""
    if limit <= 0:
        return []
    result = await session.execute(
        select(Event, Matter.reference)
        .join(Matter, Matter.id == Event.matter_id)
        .where(Event.matter_id == matter_id, Event.seq > after_seq)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [_from_row(row, ref) for row, ref in result.all()]


async def read_before(
    session: AsyncSession, matter_id: int, before_seq: int, limit: int
) -> list[StoredEvent]:
    """The newest ``limit`` events with ``seq < before_seq``, returned in seq order.

    For a chat opening on its latest page (``before_seq = head + 1``) and
    scrolling back.
    """
    if limit <= 0 or before_seq <= 1:
        return []
    result = await session.execute(
        select(Event, Matter.reference)
        .join(Matter, Matter.id == Event.matter_id)
        .where(Event.matter_id == matter_id, Event.seq < before_seq)
        .order_by(Event.seq.desc())
        .limit(limit)
    )
    return [_from_row(row, ref) for row, ref in reversed(result.all())]


async def head(session: AsyncSession, matter_id: int) -> int:
    """The matter's last committed seq (0 for an empty log)."""
    result = await session.execute(select(Matter.last_seq).where(Matter.id == matter_id))
    value = result.scalar_one_or_none()
    if value is None:
        raise NotFound("no such matter")
    return int(value)


async def heads(session: AsyncSession, matter_ids: list[int]) -> dict[int, int]:
    """Head seq of several matters in one query (missing matters are left out)."""
    if not matter_ids:
        return {}
    result = await session.execute(
        select(Matter.id, Matter.last_seq).where(Matter.id.in_(matter_ids))
    )
    return {int(mid): int(seq) for mid, seq in result.all()}


def _membership(principal: Principal) -> Any:
    return and_(
        MatterMember.matter_id == Matter.id,
        MatterMember.principal_kind == principal.kind,
        MatterMember.principal_id == principal.id,
        MatterMember.removed_at.is_(None),
    )


async def active_memberships(
    session: AsyncSession, matter_ids: Sequence[int], principal_ids: Sequence[int]
) -> set[tuple[int, str, int]]:
    """``(matter_id, principal_kind, principal_id)`` of the active memberships among these.

    One query (the hub re-checks the contacts and bots it delivers to: a
    membership removed on another worker, or while the broker was down, must
    still stop the live stream).
    """
    if not matter_ids or not principal_ids:
        return set()
    result = await session.execute(
        select(
            MatterMember.matter_id, MatterMember.principal_kind, MatterMember.principal_id
        ).where(
            MatterMember.matter_id.in_(list(matter_ids)),
            MatterMember.principal_id.in_(list(principal_ids)),
            MatterMember.removed_at.is_(None),
        )
    )
    return {(int(mid), str(kind), int(pid)) for mid, kind, pid in result.all()}


async def can_access(session: AsyncSession, principal: Principal, matter_ref: str) -> Matter:
    """The matter ``matter_ref`` if ``principal`` may see it, else ``NotFound``.

    Staff: any matter of their firm. Contacts and bots: matters where they
    are an active member. Another firm's matter, a removed membership and a
    malformed reference all look exactly like a missing matter.
    """
    if not valid_matter_ref(matter_ref):
        raise NotFound("no such matter")
    query = select(Matter).where(
        Matter.reference == matter_ref, Matter.firm_id == principal.firm_id
    )
    if principal.kind != "staff":
        query = query.where(select(MatterMember.id).where(_membership(principal)).exists())
    matter = (await session.execute(query)).scalar_one_or_none()
    if matter is None:
        raise NotFound("no such matter")
    return matter


async def list_matters(session: AsyncSession, principal: Principal) -> list[Matter]:
    """Every matter ``principal`` may see (same rule as ``can_access``), by reference."""
    query = select(Matter).where(Matter.firm_id == principal.firm_id)
    if principal.kind != "staff":
        query = query.where(select(MatterMember.id).where(_membership(principal)).exists())
    result = await session.execute(query.order_by(Matter.reference))
    return list(result.scalars())
