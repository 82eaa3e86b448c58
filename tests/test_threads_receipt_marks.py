"""A client only ever gets the cursor of an event it can see (docs/threads.md, "Unread
counts"): read marks and receipts against staff-only events, other threads' events and
a welcome event, through the services (``mark_read``, ``receipts``) on the real
database, with the live ``receipt`` each mark publishes.

A staff mark on a note is shown to clients at the thread's last event they see
before it; a staff mark before any such event is not shown to clients at all;
a client's own mark given as a position naming a note is stored at the event
before it; a mark reaching only a welcome event is shown to the contact the
welcome names and to no co-applicant.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from rtportal.db.models import Event, Matter
from rtportal.errors import NotFound
from rtportal.events.cursor import CursorCodec
from rtportal.events.event import canonical_json
from rtportal.principal import Principal
from rtportal.realtime.message import Ephemeral
from rtportal.threads.readers import reader_for, thread_info
from rtportal.threads.reads import mark_read
from rtportal.threads.receipts import receipts
from tests.conftest import MakeFirm
from tests.support.threadworld import Applicants


async def _welcome(w: Applicants, contact: Principal) -> int:
    """A ``welcome`` event of ``contact``'s welcome thread (as an invite stores it); its seq."""
    kit = w.kit
    async with kit.db.write() as session:
        row = (
            await session.execute(
                select(Matter).where(Matter.id == kit.matter.id).with_for_update()
            )
        ).scalar_one()
        row.last_seq = seq = row.last_seq + 1
        thread = f"welcome-{contact.id}"
        session.add(
            Event(
                matter_id=row.id,
                seq=seq,
                kind="welcome",
                audience="portal",
                actor_kind="staff",
                actor_id=kit.admin.id,
                actor_name=kit.admin.display_name,
                payload=canonical_json({"thread": thread, "to": [contact.id]}),
                blob=b"RTM1-sealed",
                client_id=f"w{seq}",
            )
        )
    w.seqs.setdefault(thread, []).append(seq)
    return seq


async def test_clients_get_marks_only_at_events_they_see(make_firm: MakeFirm) -> None:
    kit = await make_firm()
    w = await Applicants.make(kit)
    codec = CursorCodec.ephemeral()
    a, b, staff = w.a, w.b, kit.staff
    welcome_b = await _welcome(w, b)
    first = await w.item(kit.admin, "tAB", to=(a.id, b.id))
    note = await w.item(kit.admin, "tAB", kind="note")
    other = await w.item(kit.admin, "tA", to=(a.id,))
    sent: list[Ephemeral] = []

    async def publish(msg: Ephemeral) -> None:
        sent.append(msg)

    async def mark(who: Principal, thread: str, upto: int | str) -> int:
        marked = await mark_read(kit.db, publish, who, kit.ref, thread, upto, cursors=codec)
        return marked.upto

    async def shown(viewer: Principal, thread: str) -> dict[str, int]:
        async with kit.db.read() as session:
            reader = await reader_for(session, viewer, kit.matter.id)
            info = await thread_info(session, kit.matter.id, thread)
            assert info is not None
            rows = await receipts(session, codec, kit.matter, reader, info)
        return {
            r["reader"]: r["upto"] if viewer.is_staff else codec.seq_of(r["upto"], kit.matter.id)
            for r in rows
        }

    def live(msg: Ephemeral) -> tuple[frozenset[int], int | None]:
        """Whom a receipt reaches among clients, and the ``upto`` they are given."""
        if not msg.contacts:
            return msg.contacts, None
        frame = json.loads(msg.portal_frame or msg.frame)
        return msg.contacts, codec.seq_of(frame["upto"], kit.matter.id)

    s = f"s{staff.id}"
    # Staff read tAB up to its note: staff see the note; clients the message before it.
    assert await mark(staff, "tAB", note) == note
    assert live(sent[0]) == (frozenset({a.id, b.id}), first)
    assert await shown(staff, "tAB") == {s: note}
    assert await shown(a, "tAB") == await shown(b, "tAB") == {s: first}
    # A staff mark before any event of the thread a client sees: not shown to clients.
    sent.clear()
    assert await mark(staff, "tA", first) == first
    assert live(sent[0]) == (frozenset(), None)
    assert await shown(a, "tA") == {}
    # A client's mark given as a position naming the note (a subscribe's head, say)
    # is stored at the event before it; one naming another thread's event, likewise.
    assert await mark(a, "tAB", codec.position_token(kit.matter.id, note)) == first
    assert await mark(b, "tAB", codec.event_token(kit.matter.id, other)) == first
    # The welcome of b: staff and b see a mark on it; a (who sees the applicants, but
    # not b's welcome event, nor b's welcome thread before anyone replies) is not
    # shown it, and may not mark it.
    sent.clear()
    thread_b = f"welcome-{b.id}"
    assert await mark(staff, thread_b, welcome_b) == welcome_b
    assert live(sent[0]) == (frozenset({b.id}), welcome_b)
    assert await shown(b, thread_b) == {s: welcome_b}
    assert await shown(a, thread_b) == {}
    assert await mark(b, thread_b, codec.event_token(kit.matter.id, welcome_b)) == welcome_b
    with pytest.raises(NotFound):
        await mark(a, thread_b, codec.event_token(kit.matter.id, welcome_b))
