"""Who reads a thread: a reader's view of the rule "Who sees what" (docs/threads.md).

The read side (marks, unread counts, receipts, typing) needs the rule in
three forms, all here so they cannot drift apart:

* may this reader see this thread (``sees``): staff and bots every thread
  of their matters; a client member only client threads, and of those the
  ones addressed to them (``to``) unless their membership says
  ``see_applicants``; a welcome thread nobody has replied in only its
  invitees (the rule of ``items.Found.seen_by``, which pages and sends use);
* which contacts see a thread (``client_viewers``), for live frames;
* may a viewer learn of another person in the thread (``knows``): a
  receipt or a typing frame names its reader or typist, and a client
  without ``see_applicants`` must not learn of a co-applicant the thread is
  not addressed to.

A thread's kind and recipients are read through the thread index
(``rtportal.threads.sql``): its first portal ``message`` makes it a client
thread addressed to that message's ``to`` (the server copies the opener's
``to`` onto every reply); a thread of only notes (or staff messages) is
internal. A welcome thread (``welcome-<id>``) is a client thread even
before anyone replied in it: its opener is a ``welcome`` event (not an
indexed kind), whose ``to`` it takes; only such threads are looked up
outside the index.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership
from rtportal.db.models import Event, MatterMember
from rtportal.events.validate import valid_thread
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.threads.sql import (
    held_by_clients,
    in_thread_index,
    in_welcome_index,
    thread_expr,
)

__all__ = [
    "Reader",
    "ThreadInfo",
    "client_members",
    "client_viewers",
    "knows",
    "portal_seq",
    "portal_upto",
    "reader_for",
    "sees",
    "thread_info",
    "welcome_readers",
]

_WELCOME_RE = re.compile(r"welcome-([1-9][0-9]{0,9})")


@dataclass(frozen=True, slots=True)
class Reader:
    """A member reading one matter: staff (and bots) or a client with their visibility."""

    principal: Principal
    see_applicants: bool  # always True for staff and bots

    @property
    def id(self) -> str:
        """The rtp1 id (``s3``, ``c12``, ``b1``): how read marks name a reader."""
        return ids.of(self.principal)

    @property
    def staff(self) -> bool:
        return self.principal.is_staff


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    thread: str
    internal: bool
    to: tuple[int, ...]  # contact ids a client thread is addressed to
    # A welcome thread nobody has replied in: only its ``welcome``'s ``to`` see it,
    # whatever their membership (``items.Found.seen_by``, the same rule).
    invitees_only: bool = False


def welcome_readers(info: ThreadInfo) -> frozenset[int] | None:
    """The clients a welcome thread's marks may be shown to: those its ``welcome``
    names (``None``: not a welcome thread). A co-applicant who sees the other
    applicants sees the replies in it, never the welcome event itself, and a
    mark clamped to that event would hand them its cursor."""
    if info.internal or _WELCOME_RE.fullmatch(info.thread) is None:
        return None
    return frozenset(info.to)


async def reader_for(session: AsyncSession, principal: Principal, matter_id: int) -> Reader:
    """The caller as a reader of a matter they may access (``can_access`` checked first)."""
    if principal.is_staff:
        return Reader(principal, True)
    see = (
        await session.execute(
            select(MatterMember.see_applicants).where(
                MatterMember.matter_id == matter_id,
                MatterMember.principal_kind == principal.kind,
                MatterMember.principal_id == principal.id,
                membership.live(),
            )
        )
    ).scalar()
    return Reader(principal, bool(see))


def _to(payload: str) -> tuple[int, ...] | None:
    """``payload.to`` (``None``: none stored, as on messages from before threads)."""
    try:
        value = json.loads(payload).get("to")
    except (ValueError, AttributeError):
        return None
    if not isinstance(value, list):
        return None
    return tuple(v for v in value if type(v) is int)


async def thread_info(session: AsyncSession, matter_id: int, thread: str) -> ThreadInfo | None:
    """The thread's kind and recipients, or ``None`` when the matter has no such thread."""
    if not valid_thread(thread):
        return None
    dialect = session.get_bind().dialect.name
    th = thread_expr(dialect)
    base = select(Event.payload).where(
        Event.matter_id == matter_id, th == thread, in_thread_index()
    )
    opener = (
        await session.execute(
            select(Event.payload, Event.actor_kind, Event.actor_id)
            .where(Event.matter_id == matter_id, th == thread, in_thread_index())
            .where(Event.kind == "message", Event.audience == "portal")
            .order_by(Event.seq)
            .limit(1)
        )
    ).first()
    if opener is not None:
        to = _to(opener.payload)
        if to is None and opener.actor_kind == "contact":
            to = (int(opener.actor_id),)  # a client's own thread, stored before threads
        return ThreadInfo(thread, False, to or ())
    if _WELCOME_RE.fullmatch(thread) is not None:
        welcome = (
            await session.execute(
                select(Event.payload)
                .where(Event.matter_id == matter_id, in_welcome_index(), th == thread)
                .order_by(Event.seq)
                .limit(1)
            )
        ).scalar()
        if welcome is not None:
            return ThreadInfo(thread, False, _to(welcome) or (), invitees_only=True)
    internal = (
        await session.execute(base.where(Event.kind.in_(("message", "note"))).limit(1))
    ).scalar()
    return None if internal is None else ThreadInfo(thread, True, ())


def sees(reader: Reader, info: ThreadInfo) -> bool:
    """May ``reader`` see the items of the thread ``info``?"""
    if reader.staff:
        return True
    if info.internal:
        return False
    see_applicants = reader.see_applicants and not info.invitees_only
    return see_applicants or reader.principal.id in info.to


async def client_members(session: AsyncSession, matter_id: int) -> dict[int, bool]:
    """The matter's live client members: contact id -> ``see_applicants``."""
    rows = await session.execute(
        select(MatterMember.principal_id, MatterMember.see_applicants).where(
            and_(
                MatterMember.matter_id == matter_id,
                MatterMember.principal_kind == "contact",
                membership.live(),
            )
        )
    )
    return {int(cid): bool(see) for cid, see in rows.all()}


def knows(
    viewer_id: int, viewer_sees_applicants: bool, info: ThreadInfo, other_kind: str, other_id: int
) -> bool:
    """May the client ``viewer_id`` (who sees the thread) learn that another
    principal (``other_kind``, ``other_id``) is in it?

    Staff and bots are the firm: a client may know of them (the firm's
    ``hide_staff_receipts`` is applied by receipts, not here). Another
    contact only when the viewer sees the matter's applicants, or the thread
    is addressed to that contact (its ``to``, which the viewer sees).
    """
    if other_kind != "contact" or other_id == viewer_id:
        return True
    return viewer_sees_applicants or other_id in info.to


def client_viewers(
    members: dict[int, bool], info: ThreadInfo, about: Principal | None = None
) -> frozenset[int]:
    """The contacts (of ``client_members``) who see the thread, and ``about``
    (a reader or typist) when given."""
    if info.internal:
        return frozenset()
    return frozenset(
        cid
        for cid, see in members.items()
        if ((see and not info.invitees_only) or cid in info.to)
        and (about is None or knows(cid, see, info, about.kind, about.id))
    )


def portal_seq(
    dialect: str, matter_id: Any, thread: Any, upto: Any, welcome: bool = True
) -> ColumnElement[Any]:
    """SQL: the seq of the thread's last event a client who sees it holds, at or before
    ``upto`` (``NULL``: none). ``matter_id``, ``thread`` and ``upto`` are values or
    columns (a correlated subquery over ``read_marks``).

    Every client who sees a client thread sees the same events of it (its portal
    items, edits and deletes carry the opener's ``to``), so one clamp serves them
    all. A mark shown to a client as this event, never as a staff-only one: an
    event cursor of a note would tell that something hidden follows their last
    item (and a mark set from a position would turn it into that hint).
    ``welcome=False``: for a client the thread's ``welcome`` does not name
    (``welcome_readers``), who holds its items only."""
    th = thread_expr(dialect)
    items = select(func.max(Event.seq)).where(
        Event.matter_id == matter_id,
        th == thread,
        in_thread_index(),  # the index's predicate
        held_by_clients(),
        Event.seq <= upto,
    )
    if not welcome:
        return items.scalar_subquery()
    opener = select(func.max(Event.seq)).where(
        Event.matter_id == matter_id,
        in_welcome_index(),
        th == thread,
        Event.seq <= upto,
    )
    return func.coalesce(items.scalar_subquery(), opener.scalar_subquery())


async def portal_upto(
    session: AsyncSession, matter_id: int, thread: str, upto: int, welcome: bool = True
) -> int:
    """``portal_seq`` of one mark (0: no event of the thread a client holds)."""
    dialect = session.get_bind().dialect.name
    query = select(portal_seq(dialect, matter_id, thread, upto, welcome))
    value = (await session.execute(query)).scalar()
    return int(value or 0)
