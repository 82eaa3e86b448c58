"""The per-matter event log: ``append_batch``/``commit_batch``/``append``,
``read_since``/``read_before``, ``head``/``heads``.

Every change to a matter is an event with a per-matter ``seq`` (1, 2, 3...
without gaps) written in the caller's transaction. ``seq`` comes from
``UPDATE matters SET last_seq = last_seq + n ... RETURNING last_seq`` (``n``
new events of the matter in the batch): on PostgreSQL the matter's row lock
(taken first, in matter-id order) serialises writers of one matter across
processes until commit; on SQLite the write transaction (``BEGIN
IMMEDIATE``) already holds the database write lock. A rollback undoes the
counter with the insert, so a failed transaction leaves no gap and no
half-written record. The statements live in one module per backend
(``store_pg``, ``store_sqlite``); requests are checked by ``validate``
against the kind registry (``kinds``).

Nothing here publishes: the group commit publishes what it committed, and
other writers go through a unit of work (``rtportal.events.unit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from rtportal import jsonlimits, wirejson
from rtportal.db.models import Event, Matter, utcnow
from rtportal.errors import Conflict, NotFound, RtPortalError
from rtportal.events import pages, store_pg, store_sqlite
from rtportal.events.batch import (
    DRIVER_ERRORS,
    AppendItem,
    Checked,
    Key,
    Stored,
    driver_error,
    seqs_of,
)
from rtportal.events.companion import Also
from rtportal.events.event import Audience, StoredEvent, iso_time
from rtportal.events.send import Send
from rtportal.events.validate import validate
from rtportal.events.visiblesql import CONTACT, client_sees
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_EVENT_BLOB_MAX, DEFAULT_EVENT_PAYLOAD_MAX

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = [
    "AppendItem",
    "AppendResult",
    "append",
    "append_batch",
    "commit_batch",
    "event_of_row",
    "head",
    "heads",
    "read_before",
    "read_since",
    "visible_beyond",
]


def event_of_row(row: Event, reference: str) -> StoredEvent:
    """A stored row as the event every layer sees (the log's reads, thread pages, the feed)."""
    return StoredEvent(
        matter_id=row.matter_id,
        matter=reference,
        seq=row.seq,
        kind=row.kind,
        audience=cast("Audience", row.audience),
        actor={"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        payload=jsonlimits.stored_payload(row.payload),
        blob=row.blob,
        client_id=row.client_id,
        created_at=iso_time(row.created_at),
        redacted=bool(row.redacted),
    )


# Per item: ``(event, created)``, or the item's own error (nothing written for it).
AppendResult = tuple[StoredEvent, bool] | RtPortalError
# A client's history: (contact id, their membership's see_applicants).
Client = tuple[int, bool]


def _same_content(
    kind: str,
    audience: str,
    payload_text: str,
    blob: bytes | None,
    other: Checked,
) -> bool:
    return (
        kind == other.item.send.kind
        and audience == other.item.send.audience
        and payload_text == other.payload_text
        # An empty blob and no blob are the same content on both sides (b""
        # may be stored as either): a retry of an empty blob is not a conflict.
        and (blob or None) == (other.blob or None)
    )


def _conflict() -> Conflict:
    return Conflict("client_id was already used with different content")


def _stored_event(row: Stored, c: Checked) -> StoredEvent:
    """The stored event an item's idempotency key names (its key fields are the item's)."""
    item = c.item
    return StoredEvent(
        matter_id=c.matter_id,
        matter=item.matter.reference,
        seq=int(row.seq),
        kind=row.kind,
        audience=cast("Audience", row.audience),
        actor={"kind": item.actor.kind, "id": item.actor.id, "name": row.actor_name},
        payload=jsonlimits.stored_payload(row.payload),
        blob=None if row.blob is None else bytes(row.blob),
        client_id=item.send.client_id,
        created_at=iso_time(row.created_at),
    )


async def append_batch(
    session: AsyncSession, items: Sequence[AppendItem], settings: Settings | None = None
) -> list[AppendResult]:
    """Append several events in the caller's transaction, in a constant number
    of statements (not per event); one result per item, in item order.

    Items may name many matters, several items one matter (they get
    consecutive seqs in item order) and repeat a ``client_id`` (of the same
    actor and matter: a retry). Statements, whatever the batch size:
    PostgreSQL, two: lock the matters' rows in ascending id order (``SELECT
    ... FOR UPDATE``), then one statement (``store_pg.WRITE``) that finds the
    stored events among the items' idempotency keys (its snapshot is taken
    after the locks, so a concurrent writer of the same key has committed),
    allocates each matter's seqs (``UPDATE ... RETURNING``) and inserts the
    new rows. SQLite, up to three (the write transaction holds the database
    lock): the stored keys (``json_each``), ``UPDATE ... RETURNING``, one
    ``executemany`` insert. They run on the driver's connection, in the
    session's transaction (PostgreSQL: after the first, sent through
    SQLAlchemy, which starts it); see ``rtportal.events.batch``.

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
        conn = await session.connection()  # SQLite: BEGIN IMMEDIATE is sent by driver_of
        at = utcnow()
        pg = conn.dialect.name == "postgresql"
        try:
            if not pg:
                stored, heads = await store_sqlite.write(conn, unique, at)
            elif len(unique) == 1:
                stored, heads = await store_pg.write_one(conn, unique[0], at)
            else:
                stored, heads = await store_pg.write(conn, unique, at)
        except DRIVER_ERRORS as err:
            raise await driver_error(conn, err) from err
        _finish(unique, repeats, stored, heads, at, results)
    return [r if r is not None else NotFound("no such matter") for r in results]


async def commit_batch(
    db: Database,
    items: Sequence[AppendItem],
    settings: Settings | None = None,
    also: Also | None = None,
) -> list[AppendResult]:
    """``append_batch`` in a transaction of its own, committed on return.

    The group commit's write: on PostgreSQL one round trip, the function
    ``rtp_append_fresh`` (migration 0004; ``rtp_append_events`` of 0002/0003
    for a batch of one or one holding a retry: the same locks and statement
    as ``store_pg.write``) called outside any transaction, so the statement is its
    own transaction and commits without BEGIN/COMMIT round trips or
    SQLAlchemy's session around it. On SQLite, the same statements as
    ``append_batch`` in one hop to the database's writer thread
    (``rtportal.db.sqlite_writer``: BEGIN IMMEDIATE to COMMIT there, under the
    process's write lock) instead of a hop per statement. Results as
    ``append_batch``'s; committed when returned (backend errors raise,
    nothing written).

    ``also``: a companion's rows (``rtportal.events.companion``), written in
    the same transaction (PostgreSQL: the same statement) for the items
    that are valid; idempotent, so a retried item's row is not doubled.
    """
    pg = db.backend == "postgresql"
    if not pg and not db.has_sqlite_writer:  # in-memory SQLite
        async with db.write() as session:
            written = await append_batch(session, items, settings)
            if also is not None:
                valid = [i for i, r in enumerate(written) if not isinstance(r, RtPortalError)]
                await store_sqlite.write_also(session, also.sqlite, also.kept(valid), utcnow())
            return written
    results, checked = _check(items, settings)
    if checked:
        unique, repeats = _unique(checked)
        at = utcnow()
        extra = None
        if also is not None:
            rows = also.kept([c.index for c in unique])
            if rows:
                extra = (also.pg if pg else also.sqlite, rows)
        if pg:
            async with db.autocommit() as driver:
                stored, heads = await store_pg.commit(driver, unique, at, extra)
        else:
            stored, heads = await db.sqlite_transaction(
                partial(store_sqlite.commit, unique, at, extra)
            )
        _finish(unique, repeats, stored, heads, at, results)
    return [r if r is not None else NotFound("no such matter") for r in results]


def _check(
    items: Sequence[AppendItem], settings: Settings | None
) -> tuple[list[AppendResult | None], list[Checked]]:
    """Validate every item: the errors in ``results``, the valid items checked."""
    payload_max = settings.event_payload_max if settings else DEFAULT_EVENT_PAYLOAD_MAX
    blob_max = settings.event_blob_max if settings else DEFAULT_EVENT_BLOB_MAX
    results: list[AppendResult | None] = [None] * len(items)
    checked: list[Checked] = []
    for index, item in enumerate(items):
        actor, send = item.actor, item.send
        matter_id = item.matter.id
        try:
            if item.matter.firm_id != actor.firm_id:
                raise NotFound("no such matter")
            payload_text = validate(actor, send, payload_max, blob_max, system=item.system)
        except RtPortalError as err:
            results[index] = err
            continue
        blob = bytes(send.blob) if send.blob is not None else None
        client_id = send.client_id
        key = None if client_id is None else (matter_id, actor.kind, actor.id, client_id)
        checked.append(Checked(index, item, payload_text, blob, key, matter_id))
    return results, checked


def _unique(checked: list[Checked]) -> tuple[list[Checked], list[tuple[Checked, Checked]]]:
    """The items that go to the database (first occurrence of each key) and the
    repeats of a key within the batch, settled after it as ``(repeat, first)``."""
    first: dict[Key, Checked] = {}
    repeats: list[tuple[Checked, Checked]] = []
    unique: list[Checked] = []
    for c in checked:
        if c.key is not None:
            if c.key in first:
                repeats.append((c, first[c.key]))
                continue
            first[c.key] = c
        unique.append(c)
    return unique, repeats


def _finish(
    unique: list[Checked],
    repeats: list[tuple[Checked, Checked]],
    stored: dict[int, Stored],
    heads: dict[int, int],
    at: datetime,
    results: list[AppendResult | None],
) -> None:
    """Fill ``results`` from what the write found (``stored``) and allocated (``heads``)."""
    fresh: list[Checked] = []
    for c in unique:
        row = stored.get(c.index)
        if row is None:
            fresh.append(c)
        elif _same_content(row.kind, row.audience, row.payload, row.blob, c):
            results[c.index] = (_stored_event(row, c), False)
        else:
            results[c.index] = _conflict()
    seqs = seqs_of(fresh, heads)
    created_at = iso_time(at)
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
                kind=item.send.kind,
                audience=cast("Audience", item.send.audience),
                actor=item.actor.actor(),
                payload=wirejson.loads(c.payload_text),
                blob=c.blob,
                client_id=item.send.client_id,
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
        elif _same_content(c.item.send.kind, c.item.send.audience, c.payload_text, c.blob, earlier):
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
    system: bool = False,
) -> tuple[StoredEvent, bool]:
    """Append one event in the caller's transaction; returns ``(event, created)``.

    A batch of one (``append_batch``): ``matter`` must come from
    ``can_access`` for ``actor``. A repeated ``client_id`` of the same actor
    on the same matter returns the stored event with ``created=False`` (do
    not publish it again); the same id with different content raises
    ``Conflict``. ``system``: a write of the server's own service (may write
    system kinds, ``rtportal.events.kinds``). Limits come from ``settings``
    (defaults: the ``Settings`` defaults). Errors raise and leave the transaction clean.
    """
    item = AppendItem(
        matter, actor, Send(matter.reference, kind, audience, payload, blob, client_id), system
    )
    (result,) = await append_batch(session, [item], settings)
    if isinstance(result, RtPortalError):
        raise result
    return result


@cache
def _page_query(dialect: str | None, forward: bool, client: tuple[str, bool] | None = None) -> Any:
    """A page of a matter's log after (``forward``) or before ``pages.SEQ``, at
    most ``pages.LIMIT`` events and, with a ``dialect``, ``pages.MAX_BYTES``.

    Built once (see ``rtportal.events.pages``): executed with the parameters
    ``pages.MATTER_ID``, ``pages.SEQ``, ``pages.LIMIT`` (and ``pages.MAX_BYTES``
    with a ``dialect``; with ``client``, (dialect, a client's ``see_applicants``),
    also ``visiblesql.CONTACT``: the page holds only the events that client sees).
    """
    seq = bindparam(pages.SEQ, type_=Integer)
    query = (
        select(Event, Matter.reference)
        .join(Matter, Matter.id == Event.matter_id)
        .where(
            Event.matter_id == bindparam(pages.MATTER_ID, type_=Integer),
            Event.seq > seq if forward else Event.seq < seq,
        )
    )
    if client is not None:
        query = query.where(client_sees(*client))
    if dialect is not None:
        edge = pages.seq_within(dialect, forward, None if client is None else client[1])
        query = query.where(Event.seq <= edge if forward else Event.seq >= edge)
    return query.order_by(Event.seq if forward else Event.seq.desc()).limit(
        bindparam(pages.LIMIT, type_=Integer)
    )


async def _read_page(
    session: AsyncSession,
    matter_id: int,
    seq: int,
    limit: int,
    max_bytes: int | None,
    forward: bool,
    client: Client | None = None,
) -> Sequence[Any]:
    params = {pages.MATTER_ID: matter_id, pages.SEQ: seq, pages.LIMIT: limit}
    dialect = None
    if max_bytes is not None:
        dialect = session.get_bind().dialect.name
        params[pages.MAX_BYTES] = max_bytes
    only = None
    if client is not None:
        params[CONTACT], sees = client
        only = (session.get_bind().dialect.name, sees)
    result = await session.execute(_page_query(dialect, forward, only), params)
    return result.all()


async def visible_beyond(
    session: AsyncSession, matter_id: int, seq: int, forward: bool, client: Client
) -> bool:
    """Does the client see an event after (``forward``) or before ``seq``?"""
    dialect = session.get_bind().dialect.name
    contact, sees = client
    query = select(Event.id).where(
        Event.matter_id == matter_id,
        Event.seq > seq if forward else Event.seq < seq,
        client_sees(dialect, sees),
    )
    found = await session.execute(query.limit(1), {CONTACT: contact})
    return found.first() is not None


async def read_since(
    session: AsyncSession,
    matter_id: int,
    after_seq: int,
    limit: int,
    max_bytes: int | None = None,
    client: Client | None = None,
) -> list[StoredEvent]:
    """Events of a matter with ``seq > after_seq``, in seq order, at most ``limit``.

    With ``max_bytes``, also at most that many stored bytes (the first event
    always; ``rtportal.events.pages``): fewer than ``limit`` events do not
    mean the log ends there. With ``client``, only the events that client
    sees (``rtportal.events.visiblesql``).
    """
    if limit <= 0:
        return []
    rows = await _read_page(session, matter_id, after_seq, limit, max_bytes, True, client)
    return [event_of_row(row, ref) for row, ref in rows]


async def read_before(
    session: AsyncSession,
    matter_id: int,
    before_seq: int,
    limit: int,
    max_bytes: int | None = None,
    client: Client | None = None,
) -> list[StoredEvent]:
    """The newest ``limit`` events with ``seq < before_seq``, returned in seq order.

    For a chat opening on its latest page (``before_seq = head + 1``) and
    scrolling back. ``max_bytes`` bounds the page as in ``read_since``,
    counted from the newest event back.
    """
    if limit <= 0 or before_seq <= 1:
        return []
    rows = await _read_page(session, matter_id, before_seq, limit, max_bytes, False, client)
    return [event_of_row(row, ref) for row, ref in reversed(rows)]


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
