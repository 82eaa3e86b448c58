"""What the log's write path hands each backend's store, and what it gets back.

The write path (``rtportal.events.log.append_batch``/``commit_batch``) runs
a constant number of statements per batch, not per event, in one module per
backend (``store_pg``, ``store_sqlite``). SQLAlchemy owns the transaction
(BEGIN [IMMEDIATE] / COMMIT / rollback) and the pool, but the hot statements
run on the DBAPI driver's own connection (``driver_of``) inside that
transaction: SQLAlchemy's per-statement work (compiled-cache lookup, bind
and result processing, ORM execute, greenlet hops) would otherwise be a
large share of a busy worker's CPU. Statements are plain SQL constants, the same text
whatever the batch size; per-event values travel as arrays (PostgreSQL:
unnest) or one JSON text (SQLite: json_each).

Driver errors are turned back into the SQLAlchemy errors SQLAlchemy would
have raised (``driver_error``), once, here; ``rtportal.db.Database`` maps
those to ``Unavailable`` at its boundary, as for every other statement.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from rtportal.db.models import Matter
from rtportal.db.sqlite_onehop import begin_now
from rtportal.events.send import Send
from rtportal.principal import Principal

__all__ = [
    "DRIVER_ERRORS",
    "AppendItem",
    "Checked",
    "Key",
    "Stored",
    "Written",
    "driver_error",
    "driver_of",
    "guards_of",
    "row_values",
    "seqs_of",
]

# Driver errors: SQLite's and asyncpg's (a lost connection may surface as OSError).
DRIVER_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class AppendItem:
    """One send to append: ``matter`` must come from ``can_access`` for ``actor``."""

    matter: Matter
    actor: Principal
    send: Send
    # Written by the server's own service (may write system kinds): never
    # set for a client's HTTP or websocket send.
    system: bool = False
    # The matter's ``access_version`` this send was checked at (remembered
    # facts, ``rtportal.events.guards``): the write refuses the batch
    # (``GuardMoved``) if the matter's version is no longer it. ``None``: the
    # send's checks ran in the write's own transaction, or it has none.
    guard: int | None = None


Key = tuple[int, str, int, str]  # (matter_id, actor_kind, actor_id, client_id)


@dataclass(slots=True)
class Checked:
    """A valid item, its position in the batch and its canonical content."""

    index: int
    item: AppendItem
    payload_text: str
    blob: bytes | None
    key: Key | None
    # ``item.matter.id`` read once: an ORM attribute costs a descriptor call.
    matter_id: int


class Stored(NamedTuple):
    """A stored event an item's idempotency key names (read by the write path)."""

    seq: int
    kind: str
    audience: str
    actor_name: str
    payload: str
    blob: bytes | None
    created_at: datetime


Written = tuple[dict[int, Stored], dict[int, int]]  # (stored by item index, new heads)


def guards_of(unique: list[Checked]) -> list[tuple[int, int]]:
    """The batch's distinct ``(matter_id, access_version)`` the write must find unchanged."""
    return sorted({(c.matter_id, c.item.guard) for c in unique if c.item.guard is not None})


def seqs_of(fresh: list[Checked], heads: dict[int, int]) -> dict[int, int]:
    """Item index -> seq: each matter's new items take the seqs up to its new
    head, in item order (the same rule as ``store_pg.WRITE``'s ``k`` and ``n``)."""
    counts = Counter(c.matter_id for c in fresh)
    next_seq = {m: heads[m] - counts[m] + 1 for m in counts if m in heads}
    seqs: dict[int, int] = {}
    for c in fresh:
        matter_id = c.matter_id
        if matter_id in next_seq:  # else deleted since can_access: NotFound
            seqs[c.index] = next_seq[matter_id]
            next_seq[matter_id] += 1
    return seqs


def row_values(c: Checked, seq: int, at: Any) -> tuple[Any, ...]:
    """An insert's parameters, in the column order of both stores' INSERT."""
    send, actor = c.item.send, c.item.actor
    return (
        c.matter_id, seq, send.kind, send.audience, actor.kind, actor.id,
        actor.display_name, c.payload_text, c.blob, send.client_id, at,
    )  # fmt: skip


async def driver_of(conn: AsyncConnection) -> Any:
    """The driver's connection under ``conn`` (``aiosqlite.Connection`` or
    ``asyncpg.Connection``), checked to be inside the open transaction: a
    raw statement outside it would autocommit, and a rollback would not
    undo it."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        in_transaction = driver.is_in_transaction()
    else:
        await begin_now(raw.dbapi_connection)  # SQLite sends BEGIN with a statement
        in_transaction = driver.in_transaction
    if not in_transaction:  # pragma: no cover - a bug in the order of statements
        raise RuntimeError("the write path's statements must run in the open transaction")
    return driver


async def driver_error(conn: AsyncConnection, err: Exception) -> DBAPIError:
    """The SQLAlchemy error SQLAlchemy would have raised for a driver error:
    ``Database`` maps ``OperationalError`` to ``Unavailable``; a connection
    found closed is invalidated (as SQLAlchemy does), so the pool drops it."""
    if isinstance(err, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(None, None, err)
    lost = False
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        lost = (
            driver is None
            or driver.is_closed()
            or isinstance(err, OSError | asyncpg.PostgresConnectionError)
        )
    if lost:
        await conn.invalidate(err)
    if lost or isinstance(err, sqlite3.OperationalError | OSError):
        return OperationalError(None, None, err, connection_invalidated=lost)
    return DBAPIError(None, None, err)
