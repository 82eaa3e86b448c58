"""Byte bounds for pages of a matter's log (backlog reads, HTTP history).

A page is read by count (``limit``) *and* by the stored bytes of its events
(payload text plus blob), so that a page of maximum-size events costs a
bounded amount of memory. The bound is computed in the same statement as
the page: a subquery sizes at most ``limit`` events in page order and keeps
those whose preceding events in the page total less than ``max_bytes`` (so
the first event is always included, however large). The page stays
gapless: it is a prefix of the count-bounded page, and the reader
continues after its last event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Event

__all__ = ["first_seq_within", "last_seq_within"]


def _stored_bytes(session: AsyncSession) -> ColumnElement[Any]:
    """An event row's payload and blob size in bytes (PostgreSQL: without detoasting)."""
    if session.get_bind().dialect.name == "postgresql":
        payload: ColumnElement[Any] = func.octet_length(Event.payload)
        blob: ColumnElement[Any] = func.octet_length(Event.blob)
    else:  # SQLite: length() of a text counts characters; of a blob, bytes
        payload = func.length(cast(Event.payload, LargeBinary))
        blob = func.length(Event.blob)
    return payload + func.coalesce(blob, 0)


def _within(
    session: AsyncSession,
    matter_id: int,
    bound: ColumnElement[bool],
    ascending: bool,
    limit: int,
    max_bytes: int,
) -> Any:
    order = Event.seq if ascending else Event.seq.desc()
    sized = (
        select(Event.seq.label("seq"), _stored_bytes(session).label("size"))
        .where(Event.matter_id == matter_id, bound)
        .order_by(order)
        .limit(limit)
        .subquery()
    )
    page_order = sized.c.seq if ascending else sized.c.seq.desc()
    before = func.sum(sized.c.size).over(order_by=page_order) - sized.c.size
    running = select(sized.c.seq, before.label("before")).subquery()
    edge = func.max(running.c.seq) if ascending else func.min(running.c.seq)
    return select(edge).where(running.c.before < max_bytes).scalar_subquery()


def last_seq_within(
    session: AsyncSession, matter_id: int, after_seq: int, limit: int, max_bytes: int
) -> Any:
    """A scalar subquery: the last seq of the forward page after ``after_seq``."""
    return _within(session, matter_id, Event.seq > after_seq, True, limit, max_bytes)


def first_seq_within(
    session: AsyncSession, matter_id: int, before_seq: int, limit: int, max_bytes: int
) -> Any:
    """A scalar subquery: the first seq of the backward page before ``before_seq``."""
    return _within(session, matter_id, Event.seq < before_seq, False, limit, max_bytes)
