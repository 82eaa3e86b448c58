"""A matter with threads as docs/threads.md shapes them, for the read side's tests.

Items are stored as the write path stores them (an ``events`` row with its
seq, the matter's head moved in the same transaction), with the contract's
payloads: ``thread``, ``to`` on every message of a client thread (the
server copies the opener's), ``item``. Written here as rows because the
read side (marks, counts, receipts, typing) reads them through the thread
index and must not depend on which writer stored them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update

from rtportal.db import Database
from rtportal.db.models import Event, Matter, MatterMember
from rtportal.events.event import canonical_json
from rtportal.events.log import append
from rtportal.keys import ids
from rtportal.principal import Principal
from tests.conftest import FirmKit

__all__ = ["Applicants", "hide_applicants", "put_item", "put_welcome"]


async def put_item(
    db: Database,
    matter: Matter,
    sender: Principal,
    thread: str,
    *,
    kind: str = "message",
    to: tuple[int, ...] | None = None,
    redacted: bool = False,
) -> int:
    """Store one item (``message`` to ``to``, or ``note``) in ``thread``; its seq."""
    async with db.write() as session:
        row = (
            await session.execute(select(Matter).where(Matter.id == matter.id).with_for_update())
        ).scalar_one()
        seq = row.last_seq + 1
        row.last_seq = seq
        client_id = f"i{seq}"
        payload: dict[str, object] = {"thread": thread, "item": f"{ids.of(sender)}.{client_id}"}
        if to is not None:
            payload["to"] = list(to)
        session.add(
            Event(
                matter_id=matter.id,
                seq=seq,
                kind=kind,
                audience="staff" if kind == "note" else "portal",
                actor_kind=sender.kind,
                actor_id=sender.id,
                actor_name=sender.display_name,
                payload=canonical_json(payload),
                blob=None if redacted else b"RTM1-sealed",
                client_id=client_id,
                redacted=redacted,
            )
        )
    return seq


async def put_welcome(db: Database, matter: Matter, staff: Principal, contact_id: int) -> None:
    """The ``welcome`` event an invite writes: thread ``welcome-<contact_id>``, to that contact."""
    async with db.write() as session:
        row = await session.get(Matter, matter.id)
        assert row is not None
        await append(
            session,
            matter=row,
            actor=staff,
            kind="welcome",
            audience="portal",
            payload={"thread": f"welcome-{contact_id}", "to": [contact_id]},
            blob=None,
            client_id=None,
            system=True,
        )


async def hide_applicants(db: Database, matter: Matter, contact: Principal) -> None:
    """The contact's membership says no to seeing the matter's other applicants."""
    async with db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(
                MatterMember.matter_id == matter.id,
                MatterMember.principal_kind == "contact",
                MatterMember.principal_id == contact.id,
            )
            .values(see_applicants=False)
        )


@dataclass
class Applicants:
    """The kit's matter with two applicants: ``a`` (the kit's contact, sees the
    applicants) and ``b`` (applicants hidden), each with a bearer token."""

    kit: FirmKit
    b: Principal
    b_token: str
    seqs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def a(self) -> Principal:
        return self.kit.contact

    @classmethod
    async def make(cls, kit: FirmKit) -> Applicants:
        b, token = await kit.add_contact("Bea Applicant", matter=kit.matter)
        await hide_applicants(kit.db, kit.matter, b)
        return cls(kit, b, token)

    async def item(
        self,
        sender: Principal,
        thread: str,
        *,
        kind: str = "message",
        to: tuple[int, ...] | None = None,
        redacted: bool = False,
    ) -> int:
        db, matter = self.kit.db, self.kit.matter
        seq = await put_item(db, matter, sender, thread, kind=kind, to=to, redacted=redacted)
        self.seqs.setdefault(thread, []).append(seq)
        return seq


async def add_applicant(kit: FirmKit, name: str, *, sees: bool) -> tuple[Principal, str]:
    """Another client member of the kit's matter (``see_applicants`` as given) and its token."""
    contact, token = await kit.add_contact(name, matter=kit.matter)
    async with kit.db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(
                MatterMember.principal_id == contact.id, MatterMember.principal_kind == "contact"
            )
            .values(see_applicants=sees)
        )
    return contact, token
