"""The outbox: every email and SMS the portal sends is first a row here.

A service queues a message in its own transaction (``queue``), so the
message exists exactly when the act that caused it committed; after the
commit, the worker's ``Notifier`` delivers the queued rows (``deliver``)
and records each one's status (``sent``, or ``failed`` with the reason).
With no provider configured for a channel the row is ``held``: an org
admin reads it in the staff app's outbox (the demo works this way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import OutboxMessage

__all__ = ["Channel", "Notifier", "forget_held_bodies", "queue"]

Channel = Literal["email", "sms"]


class Notifier(Protocol):
    """Delivers queued outbox rows after their transaction committed."""

    def transport_for(self, channel: Channel) -> str:
        """``smtp`` / ``sms_http`` when a provider is configured, else ``outbox``."""
        ...

    async def deliver(self, message_ids: Sequence[int]) -> None:
        """Send the rows (status ``queued``), recording ``sent`` or ``failed``; never raises."""
        ...

    async def close(self) -> None: ...


async def queue(
    session: AsyncSession,
    notifier: Notifier,
    *,
    firm_id: int,
    channel: Channel,
    recipient: str,
    subject: str,
    body: str,
    invite_id: int | None = None,
) -> OutboxMessage:
    """Add one message in the caller's transaction; deliver its id after the commit."""
    transport = notifier.transport_for(channel)
    message = OutboxMessage(
        firm_id=firm_id,
        channel=channel,
        transport=transport,
        recipient=recipient,
        subject=subject,
        body=body,
        status="held" if transport == "outbox" else "queued",
        invite_id=invite_id,
    )
    session.add(message)
    await session.flush()
    return message


async def forget_held_bodies(session: AsyncSession, invite_id: int) -> None:
    """Blank the held messages of an invite whose link and passcode are no longer
    the live ones (a resend, an acceptance, a removal, an expiry), in the caller's
    transaction: the outbox never keeps a link or passcode that still works
    beyond the one latest, unused send."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.invite_id == invite_id,
            OutboxMessage.status == "held",
            OutboxMessage.body.is_not(None),
        )
        .values(body=None)
    )
