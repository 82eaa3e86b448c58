"""Byte bounds for pages of a matter's log (backlog reads, HTTP history).

A page is read by count (``limit``) *and* by the stored bytes of its events
(payload text plus blob), so that a page of maximum-size events costs a
bounded amount of memory. The bound is computed in the same statement as
the page: a subquery sizes at most ``limit`` events in page order and keeps
those whose preceding events in the page total less than ``max_bytes`` (so
the first event is always included, however large). The page stays
gapless: it is a prefix of the count-bounded page, and the reader
continues after its last event.

The bound is built once per dialect and direction, with bind parameters
(``MATTER_ID``, ``SEQ``, ``LIMIT``, ``MAX_BYTES``) that the page query
shares (``rtportal.events.log``). Built per read, its subqueries and their
column collections made ~100 objects in reference cycles per backlog read
(every subscribe reads one), which only the cyclic collector frees; with
the server's raised young-generation threshold (``rtportal.app.GC_THRESHOLDS``)
they got promoted and waited for a rare full collection: ~0.9 KiB per
subscribed idle connection on SQLite, ~0.3 KiB on PostgreSQL.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Integer, LargeBinary, bindparam, cast, func, select

from rtportal.db.models import Event

__all__ = ["LIMIT", "MATTER_ID", "MAX_BYTES", "SEQ", "seq_within", "seq_within_where"]

# Bind parameter names of the bound (a page query uses the same ones).
MATTER_ID = "page_matter_id"
SEQ = "page_seq"  # the page is after (forward) or before (backward) this seq
LIMIT = "page_limit"
MAX_BYTES = "page_max_bytes"


def _stored_bytes(dialect: str) -> ColumnElement[Any]:
    """An event row's payload and blob size in bytes (PostgreSQL: without detoasting)."""
    if dialect == "postgresql":
        payload: ColumnElement[Any] = func.octet_length(Event.payload)
        blob: ColumnElement[Any] = func.octet_length(Event.blob)
    else:  # SQLite: length() of a text counts characters; of a blob, bytes
        payload = func.length(cast(Event.payload, LargeBinary))
        blob = func.length(Event.blob)
    return payload + func.coalesce(blob, 0)


@functools.cache
def seq_within(dialect: str, ascending: bool) -> Any:
    """A scalar subquery: the last seq of the forward page after ``SEQ``
    (``ascending``), or the first seq of the backward page before it.
    Built once per ``dialect`` (``session.get_bind().dialect.name``) and
    direction; the caller's query binds ``MATTER_ID``, ``SEQ``, ``LIMIT``
    and ``MAX_BYTES``.
    """
    return seq_within_where(dialect, ascending, None)


def seq_within_where(dialect: str, ascending: bool, where: ColumnElement[bool] | None) -> Any:
    """``seq_within`` over the events that match ``where`` only (a client's page:
    ``rtportal.events.visible``), built per read."""
    seq = bindparam(SEQ, type_=Integer)
    order = Event.seq if ascending else Event.seq.desc()
    conds = [
        Event.matter_id == bindparam(MATTER_ID, type_=Integer),
        Event.seq > seq if ascending else Event.seq < seq,
    ]
    if where is not None:
        conds.append(where)
    sized = (
        select(Event.seq.label("seq"), _stored_bytes(dialect).label("size"))
        .where(*conds)
        .order_by(order)
        .limit(bindparam(LIMIT, type_=Integer))
        .subquery()
    )
    page_order = sized.c.seq if ascending else sized.c.seq.desc()
    before = func.sum(sized.c.size).over(order_by=page_order) - sized.c.size
    running = select(sized.c.seq, before.label("before")).subquery()
    edge = func.max(running.c.seq) if ascending else func.min(running.c.seq)
    return (
        select(edge).where(running.c.before < bindparam(MAX_BYTES, type_=Integer)).scalar_subquery()
    )
