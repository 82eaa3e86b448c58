"""Unread counts and the first unread item, through the thread index (docs/threads.md).

An item is unread by a reader when it is in a thread the reader sees,
after the reader's read mark in that thread (``read_marks.seq``), not sent
by the reader and not deleted (``events.redacted``). Staff count
``message`` and ``note`` items; a client counts portal ``message`` items
only, of the threads addressed to them unless they see the matter's
applicants. The rule is evaluated per row in SQL, so a client's count
cannot move for a note or for a thread they may not see: those rows never
match.

Every query names the thread expression and the index's kinds exactly as
migration 0010 did (``rtportal.threads.sql``), so it reads
``ix_events_thread``: a count costs the items after the marks, a first
unread item one index range.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Event
from rtportal.db.models_threads import ReadMark
from rtportal.events.visiblesql import client_rule
from rtportal.threads.readers import Reader
from rtportal.threads.sql import in_thread_index, thread_expr

__all__ = [
    "UnreadCounts",
    "counts_query",
    "first_unread",
    "first_unread_query",
    "mark_of",
    "unread_counts",
]


class UnreadCounts(dict[str, int]):
    """Thread -> unread items (only threads with some); ``total`` is the matter's count."""

    @property
    def total(self) -> int:
        return sum(self.values())


def _items(dialect: str, reader: Reader) -> list[Any]:
    """The conditions of an item the reader sees and did not send (not deleted)."""
    principal = reader.principal
    conds: list[Any] = [
        in_thread_index(),  # the index's own predicate, spelled as it is
        thread_expr(dialect).is_not(None),
        Event.redacted.is_(False),
        not_(and_(Event.actor_kind == principal.kind, Event.actor_id == principal.id)),
    ]
    if reader.staff:
        conds.append(Event.kind.in_(("message", "note")))
        return conds
    # The client rule of every read (``rtportal.events.visiblesql``), bound to the reader.
    sees = client_rule(dialect, reader.see_applicants, principal.id)
    conds += [Event.kind == "message", sees]
    return conds


def counts_query(dialect: str, matter_id: int, reader: Reader, thread: str | None) -> Any:
    """``(thread, count)`` rows of the reader's unread items (of one ``thread`` if given)."""
    th = thread_expr(dialect)
    mark = and_(
        ReadMark.matter_id == Event.matter_id,
        ReadMark.reader == reader.id,
        ReadMark.thread == th,
    )
    query = (
        select(th.label("thread"), func.count())
        .select_from(Event)
        .outerjoin(ReadMark, mark)
        .where(
            Event.matter_id == matter_id,
            *_items(dialect, reader),
            Event.seq > func.coalesce(ReadMark.seq, 0),
        )
        .group_by(th)
    )
    return query if thread is None else query.where(th == thread)


async def unread_counts(
    session: AsyncSession, matter_id: int, reader: Reader, thread: str | None = None
) -> UnreadCounts:
    """The reader's unread items per thread of the matter (of one ``thread`` if given)."""
    dialect = session.get_bind().dialect.name
    rows = await session.execute(counts_query(dialect, matter_id, reader, thread))
    return UnreadCounts({str(t): int(n) for t, n in rows.all() if n})


async def mark_of(session: AsyncSession, matter_id: int, reader: Reader, thread: str) -> int:
    """The reader's read mark in the thread (a seq; 0 when none)."""
    seq = (
        await session.execute(
            select(ReadMark.seq).where(
                ReadMark.matter_id == matter_id,
                ReadMark.reader == reader.id,
                ReadMark.thread == thread,
            )
        )
    ).scalar()
    return int(seq or 0)


async def first_unread(
    session: AsyncSession, matter_id: int, reader: Reader, thread: str
) -> tuple[int, int | None]:
    """``(mark, seq)``: the reader's mark in the thread and the seq of the first
    unread item after it (``None`` when everything is read).

    ``GET .../first-unread``: a page of the thread's items read ``after`` the
    mark begins with the first unread item (or the reader's own items sent
    since, which are not unread).
    """
    dialect = session.get_bind().dialect.name
    mark = await mark_of(session, matter_id, reader, thread)
    query = first_unread_query(dialect, matter_id, reader, thread, mark)
    seq = (await session.execute(query)).scalar()
    return mark, None if seq is None else int(seq)


def first_unread_query(dialect: str, matter_id: int, reader: Reader, thread: str, mark: int) -> Any:
    """The seq of the reader's first unread item of ``thread`` after ``mark``."""
    return select(func.min(Event.seq)).where(
        Event.matter_id == matter_id,
        thread_expr(dialect) == thread,
        *_items(dialect, reader),
        Event.seq > mark,
    )
