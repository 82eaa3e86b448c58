"""What staff see of a matter's portal: whether it is on, and its invites with
their delivery (the read side of ``rtportal.access.invites``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.invites import LIVE, effective_status
from rtportal.db.models import Contact, Invite, Matter, OutboxMessage, utcnow

__all__ = ["invite_body", "list_invites", "portal_on"]


async def portal_on(session: AsyncSession, matter_ids: list[int]) -> set[int]:
    """Which of the matters have their portal on (an invite pending, or active
    and unexpired)."""
    if not matter_ids:
        return set()
    now = utcnow()
    rows = await session.execute(
        select(Invite).where(Invite.matter_id.in_(matter_ids), Invite.status.in_(LIVE))
    )
    return {row.matter_id for row in rows.scalars() if effective_status(row, now) in LIVE}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def invite_body(invite: Invite, contact: Contact, delivery: list[OutboxMessage]) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": invite.id,
        "contact": {"id": contact.id, "name": contact.display_name},
        "status": effective_status(invite, now),
        "method": invite.method,
        # who sent the link: the portal, or the staff member's own mail client
        "sent_by": invite.delivery,
        "see_applicants": invite.see_applicants,
        "resends": invite.resends,
        "created_at": _iso(invite.created_at),
        "sent_at": _iso(invite.sent_at),
        "accepted_at": _iso(invite.accepted_at),
        "removed_at": _iso(invite.removed_at),
        "link_expires_at": _iso(invite.link_expires_at),
        "access_expires_at": _iso(invite.access_expires_at),
        "delivery": [
            {"channel": m.channel, "status": m.status, "error": m.error} for m in delivery
        ],
    }


async def list_invites(session: AsyncSession, matter: Matter) -> list[dict[str, Any]]:
    """The matter's invites, newest first, each with the delivery status of its
    latest messages (one per channel, from its last send)."""
    rows = await session.execute(
        select(Invite, Contact)
        .join(Contact, Contact.id == Invite.contact_id)
        .where(Invite.matter_id == matter.id)
        .order_by(Invite.id.desc())
        .limit(500)
    )
    pairs = [(invite, contact) for invite, contact in rows.all()]
    ids = [invite.id for invite, _ in pairs]
    latest: dict[tuple[int, str], OutboxMessage] = {}
    if ids:
        messages = await session.execute(
            select(OutboxMessage).where(OutboxMessage.invite_id.in_(ids)).order_by(OutboxMessage.id)
        )
        for message in messages.scalars():
            assert message.invite_id is not None
            latest[(message.invite_id, message.channel)] = message
    out = []
    for invite, contact in pairs:
        delivery: list[OutboxMessage] = []
        for channel in ("email", "sms"):
            found = latest.get((invite.id, channel))
            if found is not None and (invite.sent_at is None or found.created_at >= invite.sent_at):
                delivery.append(found)
        out.append(invite_body(invite, contact, delivery))
    return out
