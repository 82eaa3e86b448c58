"""The staff activity feed: newest first across every matter the reader may see.

Rows are events of the feed kinds (``FEED_KINDS``), each of one type:
``client_message`` (a ``message`` a contact wrote), ``message`` (one staff or
a bot wrote), ``note``, ``phase``, ``invite`` (the ``access`` lifecycle) and
``bot``; ``document`` is a type with no kind yet (its filter is empty).
Deleted items (``redacted``) are not shown. Who reads: staff (every matter
of their firm) and bots (their matters), by ``membership.visible_matters``;
contacts get ``not_found``.

Order and pages: the global ``events.id`` (insertion order), keyset pages
below an opaque ``FeedCursor``. A page is read through migration 0012's
``ix_events_feed`` on ``(matter_id, id, kind, actor_kind, actor_id,
redacted)`` over the feed kinds, whatever the number of matters or events:

1. per visible matter, the newest matching id below the cursor: one
   backward index probe each;
2. ``T`` = the ``limit``-th largest of those; the page's rows all have
   ``id >= T`` (the ``limit`` matters whose newest row is ``>= T`` hold at
   least ``limit`` such rows), and only matters whose newest is ``>= T``
   hold any: the page is the newest ``limit`` rows of those matters with
   ``id >= T``.

PostgreSQL runs both steps as one statement (``LATERAL`` joins: its size,
hence its planning, does not grow with the matters); SQLite, which has no
``LATERAL``, runs step 1, then step 2 as a union of one index range per
candidate matter (in-process: there is no server planning to save).

A tag filter reads the tag's ``item_tags`` rows instead (a tag is on few
items). The unread filter keeps items (``message``, ``note``) the reader
did not write, after their read mark in the item's thread (``read_marks``):
the kind and author tests are answered inside the index (``actor_id`` is
in it), so a matter's walk reads from the table only other people's items,
each checked against the reader's mark in its thread by the marks' unique
index. A matter with nothing unread is walked back to its start (its own
and other kinds' rows cost an index entry each, others' items already read a
row read and a mark probe each): the cost grows with such matters' items.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    not_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership
from rtportal.db.models import Event, ItemTag, Matter, ReadMark, Tag
from rtportal.db.models_threads import FEED_KINDS
from rtportal.errors import BadRequest, NotFound
from rtportal.events.audience import view_for
from rtportal.events.log import event_of_row
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.threads import tags
from rtportal.threads.sql import thread_expr

__all__ = ["FEED_KINDS", "TYPES", "Feed", "FeedQuery", "read_feed", "type_of"]

# ``FEED_KINDS`` is migration 0011's ``ix_events_feed`` predicate: every query
# repeats it (SQLite uses a partial index only when the query holds its WHERE term).
TYPES = ("client_message", "message", "note", "phase", "invite", "document", "bot")
_ITEM_KINDS = ("message", "note")


@dataclass(frozen=True, slots=True)
class FeedQuery:
    matter: str | None = None
    type: str | None = None
    tag: str | None = None
    unread: bool = False
    before: int | None = None  # an events.id (FeedCursor)
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Feed:
    rows: list[dict[str, Any]]
    last_id: int | None  # the next page is below it; None on the last page


def type_of(kind: str, actor_kind: str) -> str:
    if kind == "message":
        return "client_message" if actor_kind == "contact" else "message"
    return "invite" if kind == "access" else kind


def _type_condition(feed_type: str | None) -> ColumnElement[bool] | None:
    match feed_type:
        case None:
            return None
        case "client_message":
            return and_(Event.kind == "message", Event.actor_kind == "contact")
        case "message":
            return and_(Event.kind == "message", Event.actor_kind != "contact")
        case "invite":
            return Event.kind == "access"
        case "note" | "phase" | "bot":
            return Event.kind == feed_type
        case "document":
            return false()  # no document kind yet: the type exists, its rows do not
    raise BadRequest(f"type must be one of {', '.join(TYPES)}", field="type", reason="bad_type")


def _kind_in(kinds: tuple[str, ...]) -> ColumnElement[bool]:
    """``events.kind IN ('a', 'b')`` spelled with literals, as the partial index's
    predicate is: SQLite uses a partial index only when the query repeats its term,
    and a bound parameter is not the constant."""
    return Event.kind.in_(bindparam(None, kinds, expanding=True, literal_execute=True))


def _mine() -> ColumnElement[bool]:
    """Written by the reader (``:reader_kind``/``:reader_id``): answered by the index."""
    return and_(
        Event.actor_kind == bindparam("reader_kind", type_=String),
        Event.actor_id == bindparam("reader_id", type_=Integer),
    )


def _unmarked(dialect: str) -> ColumnElement[bool]:
    """No read mark of the reader (``:reader``) at or after the row in its thread:
    the part of the unread rule that reads the row (its thread and seq)."""
    marked = (
        select(ReadMark.id)
        .where(
            ReadMark.matter_id == Event.matter_id,
            ReadMark.reader == bindparam("reader", type_=String),
            ReadMark.thread == thread_expr(dialect),
            ReadMark.seq >= Event.seq,
        )
        .exists()
    )
    return not_(marked)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a page's statements look like; their values are bind parameters, so a
    statement is built once per shape (built per read, the per-matter branches
    cost more than running them)."""

    dialect: str
    type: str | None
    unread: bool
    tag: bool
    before: bool
    floor: bool = False


@functools.lru_cache(maxsize=512)
def _indexed(shape: _Shape) -> tuple[ColumnElement[bool], ...]:
    """The filters ``ix_events_feed`` answers by itself (every column is in it)."""
    out: list[ColumnElement[bool]] = [_kind_in(FEED_KINDS), Event.redacted.is_(False)]
    typed = _type_condition(shape.type)
    if typed is not None:
        out.append(typed)
    if shape.before:
        out.append(Event.id < bindparam("before", type_=Integer))
    if shape.floor:
        out.append(Event.id >= bindparam("floor", type_=Integer))
    if shape.unread:  # items (message, note) the reader did not write
        out += [_kind_in(_ITEM_KINDS), not_(_mine())]
    return tuple(out)


def _conditions(shape: _Shape) -> tuple[ColumnElement[bool], ...]:
    """Every filter of the shape: the indexed ones and, for unread, the read mark."""
    if not shape.unread:
        return _indexed(shape)
    return (*_indexed(shape), _unmarked(shape.dialect))


def _page(limit: int) -> Any:
    return (
        select(Event, Matter.reference, Matter.title)
        .join(Matter, Matter.id == Event.matter_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )


@functools.lru_cache(maxsize=512)
def _union_page(shape: _Shape, matters: int, limit: int) -> Any:
    """SQLite, step 2: the newest ``limit`` rows of each of ``matters`` matters
    (``:m0``...), one index range each (no plan sorts a matter's whole history),
    then the page."""
    conditions = _conditions(shape)
    branches = [
        select(Event.id)
        .where(Event.matter_id == bindparam(f"m{i}", type_=Integer), *conditions)
        .order_by(Event.id.desc())
        .limit(limit)
        .subquery()
        for i in range(matters)
    ]
    newest = union_all(*(select(b.c.id) for b in branches)).subquery()
    # The page's ids first, then one primary-key read each: an ``IN`` over the
    # union lets PostgreSQL walk the whole log backward to meet them.
    top = select(newest.c.id).order_by(newest.c.id.desc()).limit(limit).subquery()
    return _page(limit).join(top, top.c.id == Event.id)


def _newest(shape: _Shape, matter_id: Any, floor: Any | None, limit: Any) -> Any:
    """PostgreSQL: the newest ``limit`` matching ids of the matter ``matter_id`` (a
    column of the enclosing query), at or above ``floor``, as a ``LATERAL``
    subquery: one backward range of ``ix_events_feed``.

    With ``unread`` the indexed filters run first in a subquery of their own
    (``OFFSET 0`` keeps PostgreSQL from merging it into the outer one): the scan
    stays index-only past the reader's own rows and the other kinds, and only
    the rows it yields are read from the table for their thread and seq and
    checked against the reader's marks."""
    conditions = list(_indexed(shape))
    if floor is not None:
        conditions.append(Event.id >= floor)
    ids = select(Event.id).where(Event.matter_id == matter_id, *conditions)
    if not shape.unread:
        return ids.order_by(Event.id.desc()).limit(limit).lateral()
    walk = ids.order_by(Event.id.desc()).offset(0).correlate_except(Event).subquery()
    return (
        select(walk.c.id)
        .join(Event, Event.id == walk.c.id)
        .where(_unmarked(shape.dialect))
        .order_by(walk.c.id.desc())
        .limit(limit)
        .lateral()
    )


def _one_statement(shape: _Shape, visible: ColumnElement[bool], limit: int) -> Any:
    """PostgreSQL: the whole page in one statement (the two steps of the module
    docstring as ``LATERAL`` joins; no statement's size depends on the number of
    matters, so planning stays well under a millisecond)."""
    top = _newest(shape, Matter.id, None, 1)
    candidates = (
        select(Matter.id.label("matter_id"), top.c.id.label("top"))
        .join(top, true())
        .where(visible)
        .order_by(top.c.id.desc())
        .limit(limit)
        .cte("candidates")
    )
    # The ``limit``-th newest matter's newest row, when there are that many.
    floor = (
        select(case((func.count() >= limit, func.min(candidates.c.top)), else_=0))
        .correlate(None)
        .scalar_subquery()
    )
    rows = _newest(shape, candidates.c.matter_id, floor, limit)
    ids = select(rows.c.id).select_from(candidates).join(rows, true())
    page = ids.order_by(rows.c.id.desc()).limit(limit).subquery()
    return _page(limit).join(page, page.c.id == Event.id)


async def _tag_id(session: AsyncSession, principal: Principal, tag: str) -> int:
    row = None
    if tags.valid_tag(tag):
        query = select(Tag.id).where(Tag.firm_id == principal.firm_id, Tag.tag == tag)
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound("no such tag", reason="no_such_tag")
    return int(row)


async def read_feed(session: AsyncSession, principal: Principal, q: FeedQuery) -> Feed:
    """One page of ``principal``'s feed."""
    if not principal.is_staff:
        raise NotFound("no such endpoint")
    _type_condition(q.type)  # refuse an unknown type before reading anything
    shape = _Shape(
        session.get_bind().dialect.name, q.type, q.unread, q.tag is not None, q.before is not None
    )
    params: dict[str, Any] = {
        "before": q.before,
        "reader": ids.of(principal),
        "reader_kind": principal.kind,
        "reader_id": principal.id,
    }
    if q.tag is not None:
        params["tag_id"] = await _tag_id(session, principal, q.tag)
    visible = membership.visible_matters(principal)
    if q.matter is not None:
        visible = Matter.id == (await membership.can_access(session, principal, q.matter)).id
    if q.tag is not None:
        # Read from the tag's item_tags rows (ix_item_tags_tag), each item's event by
        # (matter, seq): a tag is on few items, so no per-matter bound is needed.
        if shape.dialect == "postgresql":
            # A prepared statement's generic plan (from its sixth run on) knows
            # neither the tag nor the limit and walks the whole log backward
            # (measured: 22 ms instead of 5 at 200,000 events, growing with the
            # log); this read plans with the values, for this transaction only.
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        query = (
            _page(q.limit)
            .join(ItemTag, and_(ItemTag.matter_id == Event.matter_id, ItemTag.seq == Event.seq))
            .where(ItemTag.tag_id == bindparam("tag_id", type_=Integer), visible)
            .where(*_conditions(shape))
        )
    elif shape.dialect == "postgresql":
        query = _one_statement(shape, visible, q.limit)
    else:
        matter_ids, floor = await _candidates(session, visible, shape, params, q.limit)
        if not matter_ids:
            return Feed([], None)
        if floor is not None:
            shape = dataclasses.replace(shape, floor=True)
            params["floor"] = floor
        params.update({f"m{i}": m for i, m in enumerate(matter_ids)})
        query = _union_page(shape, len(matter_ids), q.limit)
    found = (await session.execute(query, params)).all()
    on = await tags.tags_of(session, [(e.matter_id, e.seq) for e, _, _ in found])
    rows = [_row(e, ref, title, principal, on) for e, ref, title in found]
    last = found[-1][0].id if len(found) == q.limit else None
    return Feed(rows, last)


async def _candidates(
    session: AsyncSession,
    visible: ColumnElement[bool],
    shape: _Shape,
    params: dict[str, Any],
    limit: int,
) -> tuple[list[int], int | None]:
    """Step 1: the (at most ``limit``) matters that can hold a row of the page, and
    the page's floor id when there are more matters than that."""
    newest = (
        select(Event.id)
        .where(Event.matter_id == Matter.id, *_conditions(shape))
        .order_by(Event.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    result = await session.execute(select(Matter.id, newest).where(visible), params)
    tops = sorted(((int(top), int(m)) for m, top in result.all() if top is not None), reverse=True)
    floor = tops[limit - 1][0] if len(tops) >= limit else None
    return [m for _, m in tops[:limit]], floor


def _row(
    event_row: Event,
    reference: str,
    title: str,
    principal: Principal,
    on: dict[tuple[int, int], list[str]],
) -> dict[str, Any]:
    event = event_of_row(event_row, reference)
    thread = event.payload.get("thread")
    item = event.payload.get("item")
    if item is None and event.kind in _ITEM_KINDS and event.client_id is not None:
        item = f"{ids.of_kind(event_row.actor_kind, event_row.actor_id)}.{event.client_id}"  # type: ignore[arg-type]
    return {
        "matter": reference,
        "title": title,
        "seq": event.seq,
        "kind": event.kind,
        "type": type_of(event.kind, event_row.actor_kind),
        "from_client": event_row.actor_kind == "contact",
        "thread": thread if isinstance(thread, str) else None,
        "item": item if isinstance(item, str) else None,
        "at": event.created_at,
        "tags": on.get((event.matter_id, event.seq), []),
        "event": view_for(event, principal),
    }
