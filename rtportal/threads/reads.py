"""Read marks: how far each reader has read each thread; they only move forward.

``mark_read`` is the one write path, for ``POST .../threads/{thread}/read``
and the websocket ``read`` frame alike: the caller must see the matter and
the thread (``not_found`` otherwise, as for a thread that does not exist),
``upto`` is a cursor of the matter's log (``rtportal.events.cursor``) not
ahead of its head. The mark is stored as ``max(old, upto)`` in one
statement (an upsert whose update applies only when it moves the mark
forward), so concurrent marks of one reader never move it back.

After the commit, a mark that moved publishes a ``receipt`` to those who
see the thread (``rtportal.threads.receipts``), and every mark an
``unread`` frame to the reader's other connections subscribed to the
matter (not the one the ``read`` came from: it gets the ack).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership
from rtportal.db import Database
from rtportal.db.models import Matter, utcnow
from rtportal.db.models_threads import ReadMark
from rtportal.errors import InvalidCursor, NotFound
from rtportal.events.cursor import CursorCodec
from rtportal.principal import Principal
from rtportal.realtime.message import Ephemeral
from rtportal.threads.cursors import parse_upto
from rtportal.threads.liveframes import PublishEphemeral, new_id, publish, unread_frame
from rtportal.threads.readers import (
    Reader,
    ThreadInfo,
    client_members,
    reader_for,
    sees,
    thread_info,
)
from rtportal.threads.receipts import hides_staff, receipt_message, shown_to
from rtportal.threads.unread import mark_of, unread_counts

__all__ = ["Marked", "mark_read", "visible_thread"]


@dataclass(frozen=True, slots=True)
class Marked:
    """The outcome of a read mark: the mark in effect and the reader's unread counts."""

    matter: str
    matter_id: int
    thread: str
    upto: int  # the mark in effect (a seq: threads.cursors.cursor_out writes it)
    moved: bool
    unread: int  # of this thread
    matter_unread: int


async def visible_thread(
    session: AsyncSession, principal: Principal, ref: str, thread: str
) -> tuple[Matter, Reader, ThreadInfo]:
    """The matter, the caller as its reader and the thread, or ``NotFound`` (also
    for a thread the caller may not see: indistinguishable from a missing one)."""
    matter = await membership.can_access(session, principal, ref)
    reader = await reader_for(session, principal, matter.id)
    info = await thread_info(session, matter.id, thread)
    if info is None or not sees(reader, info):
        raise NotFound("no such thread")
    return matter, reader, info


async def _advance(
    session: AsyncSession, matter_id: int, reader: str, thread: str, seq: int
) -> bool:
    """Upsert the mark to ``max(old, seq)``; whether it moved."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = insert(ReadMark).values(
        matter_id=matter_id, reader=reader, thread=thread, seq=seq, updated_at=utcnow()
    )
    stmt = values.on_conflict_do_update(
        index_elements=["matter_id", "reader", "thread"],
        set_={"seq": values.excluded.seq, "updated_at": values.excluded.updated_at},
        where=ReadMark.seq < values.excluded.seq,
    ).returning(ReadMark.seq)
    return (await session.execute(stmt)).first() is not None


async def mark_read(
    db: Database,
    send: PublishEphemeral | None,
    principal: Principal,
    ref: str,
    thread: str,
    upto: object,
    *,
    cursors: CursorCodec,
    conn_id: str | None = None,
) -> Marked:
    """Move the caller's read mark of ``thread`` to ``upto`` (never back); publish after commit.

    ``upto``: the cursor as sent (a JSON value), parsed for the caller and
    the matter (``threads.cursors.parse_upto``). ``conn_id``: the websocket
    connection the mark came from (its ``unread`` frame is the ack instead).
    """
    async with db.write() as session:
        matter, reader, info = await visible_thread(session, principal, ref, thread)
        seq = parse_upto(cursors, upto, principal, matter.id).after
        if seq > matter.last_seq:
            raise InvalidCursor("upto: ahead of the matter's log")
        if not reader.staff:
            # A client's mark stays on an event it sees (a position such as a
            # subscribe's head may name a staff-only one): its own mark and
            # its receipt are cursors it can match, and hint at nothing.
            seq, only = await shown_to(session, matter.id, thread, seq)
            if only is not None and principal.id not in only:
                seq = 0
        moved = seq > 0 and await _advance(session, matter.id, reader.id, thread, seq)
        receipt = None
        if moved:
            members = await client_members(session, matter.id)
            hide = await hides_staff(session, matter.firm_id)
            shown, only = await shown_to(session, matter.id, thread, seq)
            receipt = receipt_message(
                cursors, matter, info, reader, members, hide, seq, shown, only
            )
    async with db.read() as session:
        mark = await mark_of(session, matter.id, reader, thread)
        counts = await unread_counts(session, matter.id, reader)
    unread = counts.get(thread, 0)
    if receipt is not None:
        await publish(send, receipt)
    frame = unread_frame(matter.reference, thread, unread, counts.total)
    await publish(
        send,
        Ephemeral(
            new_id(),
            matter.id,
            matter.reference,
            frame,
            user=(principal.kind, principal.id),
            skip_conn=conn_id,
        ),
    )
    return Marked(matter.reference, matter.id, thread, mark, moved, unread, counts.total)
