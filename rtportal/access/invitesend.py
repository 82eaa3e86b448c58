"""Sending an invite's link: a new link (and passcode) replacing the previous
ones, and its email/SMS queued in the caller's transaction.

``delivery``: ``portal`` (the portal sends the messages) or ``own_mail``
(the staff member's own mail client does: nothing is queued and the link
token goes back to the caller, docs/keys.md "Portal on / client invited").
An end-to-end encrypted invite sent by the portal carries the invite secret
``R`` and the firm root key's fingerprint in the link's fragment
(``#t=<token>&r=<R>&frk=<fingerprint>``); ``R`` is kept nowhere else, and
the outbox forgets a held message's body once its link is not the live one
(``rtportal.notify.outbox.forget_held_bodies``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import directory, templates
from rtportal.access.invitecodes import new_link, new_passcode
from rtportal.db.models import Firm, Invite, Matter, utcnow
from rtportal.notify import outbox
from rtportal.notify.outbox import Notifier, forget_held_bodies
from rtportal.settings import Settings

__all__ = ["E2eeLink", "SentLink", "portal_url", "send_link"]


@dataclass(frozen=True, slots=True)
class E2eeLink:
    """The fragment parts of an end-to-end encrypted invite link (base64url)."""

    secret: str  # R, the invite secret the client's identity key derives from
    frk: str  # the firm root key's fingerprint, pinned by the client


@dataclass(frozen=True, slots=True)
class SentLink:
    messages: list[int]  # outbox ids to deliver
    token: str  # the link secret (for ``own_mail``: the caller composes the mail)


def portal_url(settings: Settings, firm: Firm) -> str:
    """The firm's portal page (no secret): what the stream's welcome item links to."""
    return f"{settings.public_url}/?firm={firm.slug}"


async def send_link(
    session: AsyncSession,
    settings: Settings,
    notifier: Notifier,
    firm: Firm,
    matter: Matter,
    invite: Invite,
    e2ee: E2eeLink | None = None,
) -> SentLink:
    """New link (and passcode) for ``invite``, replacing any previous ones, and
    its messages queued (none for ``own_mail`` delivery)."""
    now = utcnow()
    await forget_held_bodies(session, invite.id)  # the previous link stops working
    secret, invite.link_hash = new_link(settings.secret_key)
    invite.link_expires_at = now + timedelta(seconds=settings.invite_link_ttl)
    invite.sent_at = now
    if e2ee is None:
        link = f"{portal_url(settings, firm)}#invite={secret}"
    else:
        link = f"{portal_url(settings, firm)}#t={secret}&r={e2ee.secret}&frk={e2ee.frk}"
    code = None
    if invite.method == "email_sms":
        code, invite.passcode_hash = new_passcode(settings.secret_key, invite.id)
        invite.passcode_expires_at = now + timedelta(minutes=10)
    else:
        invite.passcode_hash = None
        invite.passcode_expires_at = None
    invite.passcode_tries = 0
    ids: list[int] = []
    if invite.delivery == "own_mail":
        await session.flush()
        return SentLink(ids, secret)
    if invite.method in ("email", "email_sms"):
        address = await directory.primary_email(session, invite.contact_id)
        assert address is not None  # checked by the caller (_address_for)
        body = templates.merge(invite.body, {"portal_link": link})
        if link not in body:
            body += f"\n\nYour personal link: {link}"
        message = await outbox.queue(
            session,
            notifier,
            firm_id=firm.id,
            channel="email",
            recipient=address,
            subject=templates.merge(invite.subject, {"portal_link": portal_url(settings, firm)}),
            body=body,
            invite_id=invite.id,
        )
        ids.append(message.id)
    if invite.method in ("sms", "email_sms"):
        number = await directory.primary_mobile(session, invite.contact_id)
        assert number is not None
        text = (
            f"{firm.name}: your secure client portal for {matter.reference}: {link}"
            if code is None
            else f"{firm.name}: your portal passcode is {code}. It expires in 10 minutes."
        )
        message = await outbox.queue(
            session,
            notifier,
            firm_id=firm.id,
            channel="sms",
            recipient=number,
            subject="",
            body=text,
            invite_id=invite.id,
        )
        ids.append(message.id)
    await session.flush()
    return SentLink(ids, secret)
