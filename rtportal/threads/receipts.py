"""Read receipts: who has read a thread how far, as each viewer may see it (docs/threads.md).

A receipt is a read mark (``read_marks``) seen from the other side. Staff
and bots see every reader of a thread. A client sees the readers of a
thread they see, except: staff and bot readers when the firm hides staff
receipts (``firms.hide_staff_receipts``), and co-applicants they may not
know of (``rtportal.threads.readers.knows``). The live ``receipt`` frame of
a mark goes to the same people (``receipt_message``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Contact, Firm, Matter, StaffUser
from rtportal.db.models_threads import ReadMark
from rtportal.events.cursor import CursorCodec
from rtportal.keys import ids
from rtportal.realtime.message import Ephemeral
from rtportal.threads.cursors import ViewerClass, cursor_out
from rtportal.threads.liveframes import new_id, receipt_frame
from rtportal.threads.readers import (
    Reader,
    ThreadInfo,
    client_viewers,
    knows,
    portal_seq,
    welcome_readers,
)

__all__ = ["MAX_RECEIPTS", "hides_staff", "receipt_message", "receipts"]

# Readers listed per thread: every member who ever read it is far fewer.
MAX_RECEIPTS = 1000


async def hides_staff(session: AsyncSession, firm_id: int) -> bool:
    """Whether the firm hides staff readers from its clients."""
    value = (
        await session.execute(select(Firm.hide_staff_receipts).where(Firm.id == firm_id))
    ).scalar()
    return bool(value)


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
    named = welcome_readers(info)
    if not viewer.staff and named is not None and viewer.principal.id not in named:
        return []  # a co-applicant in a welcome thread: see ``welcome_readers``
    seq: Any = ReadMark.seq
    if not viewer.staff:  # a client is shown each mark as the last event it holds
        dialect = session.get_bind().dialect.name
        seq = portal_seq(dialect, ReadMark.matter_id, ReadMark.thread, ReadMark.seq)
    marked = (
        select(ReadMark.reader.label("reader"), seq.label("upto"))
        .where(ReadMark.matter_id == matter.id, ReadMark.thread == info.thread, ReadMark.seq > 0)
        .subquery()
    )
    # Ordered by the marks as the viewer is shown them: ordered by the stored ones, two
    # staff marks shown at one item would tell a client which read on over a note.
    rows = await session.execute(
        select(marked.c.reader, marked.c.upto)
        .where(marked.c.upto.is_not(None))
        .order_by(marked.c.upto.desc(), marked.c.reader)
        .limit(MAX_RECEIPTS)
    )
    marks = [
        (parsed, int(upto)) for reader, upto in rows.all() if upto and (parsed := ids.parse(reader))
    ]
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
    portal_upto: int | None,
) -> Ephemeral:
    """The live ``receipt`` of ``reader``'s new mark, for those who see the thread
    and may know of the reader (``members``: ``readers.client_members``).
    ``portal_upto``: the mark as clients are shown it (``readers.portal_upto``), or
    ``None`` when it did not move for them (staff read on over staff-only events):
    then clients get nothing."""
    p = reader.principal
    hidden = (reader.staff and hide_staff) or not portal_upto
    contacts = frozenset() if hidden else client_viewers(members, info, about=p)
    named = welcome_readers(info)
    if named is not None:
        contacts = contacts & named
    portal_seq_ = portal_upto or upto
    ref, name = matter.reference, p.display_name

    def frame(viewer: ViewerClass) -> str:
        seq = upto if viewer == "staff" else portal_seq_
        return receipt_frame(
            ref, info.thread, reader.id, name, cursor_out(cursors, viewer, matter.id, seq)
        )

    staff_frame, portal_frame = frame("staff"), frame("portal")
    return Ephemeral(
        new_id(),
        matter.id,
        ref,
        staff_frame,
        staff=True,
        contacts=contacts,
        portal_frame=None if portal_frame == staff_frame else portal_frame,
    )
