"""Read receipts: who has read a thread how far, as each viewer may see it (docs/threads.md).

A receipt is a read mark (``read_marks``) seen from the other side. Staff
and bots see every reader of a thread. A client sees the readers of a
thread they see, except: staff and bot readers when the firm hides staff
receipts (``firms.hide_staff_receipts``), and co-applicants they may not
know of (``rtportal.threads.readers.knows``). The live ``receipt`` frame of
a mark goes to the same people (``receipt_message``).

A client only ever gets the cursor of an event it can see: another
reader's mark (a staff member who read up to a note, a co-applicant's mark
naming another thread's event) is shown to a client at the thread's last
client-visible event at or before it (``last_visible``), or not at all when
there is none. A token of a staff-only event would tell a client that one
exists, and where.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Contact, Event, Firm, Matter, StaffUser
from rtportal.db.models_threads import ReadMark
from rtportal.events.cursor import CursorCodec
from rtportal.keys import ids
from rtportal.realtime.message import Ephemeral
from rtportal.threads.cursors import ViewerClass, cursor_out
from rtportal.threads.liveframes import new_id, receipt_frame
from rtportal.threads.readers import Reader, ThreadInfo, client_viewers, knows, welcome_of
from rtportal.threads.sql import ITEM_KINDS, thread_expr

__all__ = ["MAX_RECEIPTS", "hides_staff", "last_visible", "receipt_message", "receipts", "shown_to"]

# Readers listed per thread: every member who ever read it is far fewer.
MAX_RECEIPTS = 1000


async def hides_staff(session: AsyncSession, firm_id: int) -> bool:
    """Whether the firm hides staff readers from its clients."""
    value = (
        await session.execute(select(Firm.hide_staff_receipts).where(Firm.id == firm_id))
    ).scalar()
    return bool(value)


def _last_visible_query(dialect: str, matter_id: int, thread: str, upto: Any) -> Any:
    """The seq of the thread's last event at or before ``upto`` that every client who
    sees the thread sees: its portal items, edits and deletes (the ``to`` of a client
    thread's items is the opener's, so they are one set). Through ``ix_events_thread``."""
    return select(func.max(Event.seq)).where(
        Event.matter_id == matter_id,
        thread_expr(dialect) == thread,
        Event.kind.in_(ITEM_KINDS),  # the index's own predicate, spelled as it is
        Event.audience == "portal",
        Event.seq <= upto,
    )


async def last_visible(session: AsyncSession, matter_id: int, thread: str, upto: int) -> int:
    """A mark ``upto`` as every client who sees the thread may see it: the thread's
    last client-visible item event at or before it (0 when there is none)."""
    dialect = session.get_bind().dialect.name
    seq = (await session.execute(_last_visible_query(dialect, matter_id, thread, upto))).scalar()
    return int(seq or 0)


async def shown_to(
    session: AsyncSession, matter_id: int, thread: str, upto: int
) -> tuple[int, frozenset[int] | None]:
    """``(seq, only)``: the mark ``upto`` as clients may see it, and ``None``, or, for
    a mark that reaches only a welcome thread's ``welcome`` event (seen by the
    contacts it names alone), that event and the contacts who may be shown it."""
    seq = await last_visible(session, matter_id, thread, upto)
    if seq == 0:
        welcome = await welcome_of(session, matter_id, thread)
        if welcome is not None and welcome[0] <= upto:
            return welcome
    return seq, None


async def _names(
    session: AsyncSession, wanted: list[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    staff = [pid for kind, pid in wanted if kind != "contact"]
    contacts = [pid for kind, pid in wanted if kind == "contact"]
    names: dict[tuple[str, int], str] = {}
    if staff:
        rows = await session.execute(
            select(StaffUser.id, StaffUser.role, StaffUser.display_name).where(
                StaffUser.id.in_(staff)
            )
        )
        for pid, role, name in rows.all():
            names[("bot" if role == "bot" else "staff", int(pid))] = str(name)
    if contacts:
        found = await session.execute(
            select(Contact.id, Contact.display_name).where(Contact.id.in_(contacts))
        )
        for pid, name in found.all():
            names[("contact", int(pid))] = str(name)
    return names


async def receipts(
    session: AsyncSession, cursors: CursorCodec, matter: Matter, viewer: Reader, info: ThreadInfo
) -> list[dict[str, Any]]:
    """``[{"reader", "name", "upto"}]`` of the thread, furthest first, as ``viewer`` sees them."""
    shown_seq: Any = ReadMark.seq
    if not viewer.staff:  # each mark at the last event a client sees (one statement)
        dialect = session.get_bind().dialect.name
        query = _last_visible_query(dialect, matter.id, info.thread, ReadMark.seq)
        shown_seq = query.scalar_subquery()
    rows = await session.execute(
        select(ReadMark.reader, shown_seq, ReadMark.seq)
        .where(ReadMark.matter_id == matter.id, ReadMark.thread == info.thread, ReadMark.seq > 0)
        .order_by(ReadMark.seq.desc(), ReadMark.reader)
        .limit(MAX_RECEIPTS)
    )
    found = rows.all()
    welcome = None
    if not viewer.staff and any(not seq for _, seq, _ in found):
        welcome = await welcome_of(session, matter.id, info.thread)
    marks = []
    for reader, seq, raw in found:
        if not seq and welcome is not None and viewer.principal.id in welcome[1]:
            seq = welcome[0] if welcome[0] <= raw else 0  # only the welcome, named to the viewer
        if seq and (parsed := ids.parse(reader)):  # no visible event before it: not shown
            marks.append((parsed, int(seq)))
    hide = not viewer.staff and await hides_staff(session, matter.firm_id)
    shown = []
    for (kind, pid), seq in marks:
        if not viewer.staff:
            if kind != "contact" and hide:
                continue
            if not knows(viewer.principal.id, viewer.see_applicants, info, kind, pid):
                continue
        shown.append(((kind, pid), seq))
    names = await _names(session, [who for who, _ in shown])
    return [
        {
            "reader": ids.of_kind(kind, pid),
            "name": names.get((kind, pid), ""),
            "upto": cursor_out(cursors, viewer.principal, matter.id, seq),
        }
        for (kind, pid), seq in shown
        if (kind, pid) in names  # a reader whose account is gone is not shown
    ]


def receipt_message(
    cursors: CursorCodec,
    matter: Matter,
    info: ThreadInfo,
    reader: Reader,
    members: dict[int, bool],
    hide_staff: bool,
    upto: int,
    portal_upto: int,
    only: frozenset[int] | None = None,
) -> Ephemeral:
    """The live ``receipt`` of ``reader``'s new mark, for those who see the thread
    and may know of the reader (``members``: ``readers.client_members``);
    ``portal_upto``, ``only``: the mark as clients may see it (``shown_to``; 0: not shown)."""
    p = reader.principal
    hidden = (reader.staff and hide_staff) or portal_upto == 0
    contacts = frozenset() if hidden else client_viewers(members, info, about=p)
    if only is not None:
        contacts &= only
    ref, name = matter.reference, p.display_name

    def frame(viewer: ViewerClass, seq: int) -> str:
        return receipt_frame(
            ref, info.thread, reader.id, name, cursor_out(cursors, viewer, matter.id, seq)
        )

    staff_frame, portal_frame = frame("staff", upto), frame("portal", portal_upto or upto)
    return Ephemeral(
        new_id(),
        matter.id,
        ref,
        staff_frame,
        staff=True,
        contacts=contacts,
        portal_frame=None if portal_frame == staff_frame else portal_frame,
    )
