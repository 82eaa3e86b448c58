"""Reading threads: a matter's thread list and a thread's pages, as the caller may see them.

Both read through migration 0010's thread index (``sql.thread_expr``) and
filter in SQL by the visibility rule of ``audience.view_for`` (a client:
portal events whose ``to`` names them, that they sent, or all when their
membership sees applicants; a welcome only when it names them), so a row
or a count never reflects an event the caller may not see. A page is
bounded by count and by stored bytes in its own statement, as the matter's
log pages are (``rtportal.events.pages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, case, cast, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Event
from rtportal.events.audience import view_for
from rtportal.events.event import StoredEvent, iso_time
from rtportal.events.log import event_of_row
from rtportal.events.visiblesql import client_rule
from rtportal.principal import Principal
from rtportal.threads.items import Found, find_opener
from rtportal.threads.sql import ITEM_KINDS, in_thread_index, thread_expr

__all__ = [
    "ThreadRow",
    "list_threads",
    "more_beyond",
    "read_thread",
    "seen",
    "views",
    "visible",
    "welcome_event",
]

_LISTED = (*ITEM_KINDS, "welcome")


def visible(dialect: str, principal: Principal, see_applicants: bool) -> ColumnElement[bool]:
    """The events of the index's kinds (and welcomes) ``principal`` sees, as SQL: the
    client rule of ``rtportal.events.visiblesql`` (the history pages' own), bound to
    this client."""
    if principal.is_staff:
        return true()
    return client_rule(dialect, see_applicants, principal.id)


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread: str
    kind: str  # client or internal
    to: list[int]
    opener: str | None
    last_seq: int
    last_at: Any
    items: int

    def to_json(self) -> dict[str, Any]:
        return {
            "thread": self.thread,
            "kind": self.kind,
            "to": self.to,
            "opener": self.opener,
            "last": self.last_seq,
            "last_at": iso_time(self.last_at) if isinstance(self.last_at, datetime) else None,
            "items": self.items,
        }


async def list_threads(
    session: AsyncSession,
    matter_id: int,
    principal: Principal,
    see_applicants: bool,
    before: int,
    limit: int,
) -> list[ThreadRow]:
    """The threads the caller sees, newest activity first, whose last seen event is
    before ``before`` (keyset: the ``last`` of the previous page's final row)."""
    dialect = session.get_bind().dialect.name
    expr = thread_expr(dialect)
    rows = await session.execute(
        select(
            expr.label("thread"),
            func.max(Event.seq).label("last"),
            func.max(Event.created_at).label("last_at"),
            func.sum(case((Event.kind.in_(("message", "note", "welcome")), 1), else_=0)).label(
                "items"
            ),
        )
        .where(
            Event.matter_id == matter_id,
            Event.kind.in_(_LISTED),
            expr.is_not(None),
            visible(dialect, principal, see_applicants),
        )
        .group_by(expr)
        .having(func.max(Event.seq) < before)
        .order_by(func.max(Event.seq).desc())
        .limit(limit)
    )
    out: list[ThreadRow] = []
    for row in rows.all():
        opener = await find_opener(session, matter_id, row.thread)
        kind = "internal" if opener is not None and opener.kind == "note" else "client"
        if kind == "internal" and not principal.is_staff:
            continue  # never: a client's rows hold portal events only
        to = list(opener.to) if opener is not None and opener.to is not None else []
        out.append(
            ThreadRow(
                row.thread,
                kind,
                to,
                opener.item if opener is not None else None,
                int(row.last),
                row.last_at,
                int(row.items or 0),
            )
        )
    return out


def _stored_bytes(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.octet_length(Event.payload) + func.coalesce(func.octet_length(Event.blob), 0)
    return func.length(cast(Event.payload, LargeBinary)) + func.coalesce(func.length(Event.blob), 0)


async def read_thread(
    session: AsyncSession,
    matter_id: int,
    reference: str,
    thread: str,
    seq: int,
    forward: bool,
    limit: int,
    max_bytes: int,
    *,
    principal: Principal,
    see_applicants: bool,
) -> list[StoredEvent]:
    """Up to ``limit`` events of the thread after (``forward``) or before ``seq`` that
    ``principal`` sees, in seq order, and about ``max_bytes`` stored bytes (the first
    always). Filtered in SQL, not after: a client's page skipping a note (an empty
    page, one page more) would count the notes; ``view_for`` still shapes each."""
    dialect = session.get_bind().dialect.name
    expr = thread_expr(dialect)
    where = (
        Event.matter_id == matter_id,
        expr == thread,
        in_thread_index(),
        visible(dialect, principal, see_applicants),
        Event.seq > seq if forward else Event.seq < seq,
    )
    order = Event.seq if forward else Event.seq.desc()
    sized = (
        select(Event.seq.label("seq"), _stored_bytes(dialect).label("size"))
        .where(*where)
        .order_by(order)
        .limit(limit)
        .subquery()
    )
    page_order = sized.c.seq if forward else sized.c.seq.desc()
    before = func.sum(sized.c.size).over(order_by=page_order) - sized.c.size
    running = select(sized.c.seq, before.label("before")).subquery()
    edge = select(func.max(running.c.seq) if forward else func.min(running.c.seq)).where(
        running.c.before < max_bytes
    )
    bound = Event.seq <= edge.scalar_subquery() if forward else Event.seq >= edge.scalar_subquery()
    rows = await session.execute(select(Event).where(*where, bound).order_by(order).limit(limit))
    events = [event_of_row(row, reference) for row in rows.scalars()]
    return events if forward else events[::-1]


def seen(opener: Found | None, principal: Principal, see_applicants: bool) -> bool:
    """Does the caller see the thread whose opener is ``opener``?"""
    return opener is not None and opener.seen_by(principal, see_applicants)


def views(
    events: list[StoredEvent], principal: Principal, see_applicants: bool
) -> list[dict[str, Any]]:
    """The events as the caller may see them (``view_for``), the others left out."""
    out = (view_for(e, principal, see_applicants) for e in events)
    return [v for v in out if v is not None]


async def more_beyond(
    session: AsyncSession,
    matter_id: int,
    thread: str,
    seq: int,
    forward: bool,
    *,
    principal: Principal,
    see_applicants: bool,
) -> bool:
    """Does the thread hold an event ``principal`` sees after (``forward``) or before ``seq``?"""
    dialect = session.get_bind().dialect.name
    expr = thread_expr(dialect)
    query = select(Event.seq).where(
        Event.matter_id == matter_id,
        expr == thread,
        in_thread_index(),
        visible(dialect, principal, see_applicants),
        Event.seq > seq if forward else Event.seq < seq,
    )
    return (await session.execute(query.limit(1))).first() is not None


async def welcome_event(
    session: AsyncSession, matter_id: int, reference: str, thread: str
) -> StoredEvent | None:
    """The ``welcome`` event that opened a welcome thread (outside the thread index)."""
    expr = thread_expr(session.get_bind().dialect.name)
    row = await session.execute(
        select(Event)
        .where(Event.matter_id == matter_id, Event.kind == "welcome", expr == thread)
        .order_by(Event.seq)
        .limit(1)
    )
    found = row.scalars().first()
    return None if found is None else event_of_row(found, reference)
