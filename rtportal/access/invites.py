"""The portal invite lifecycle, staff side: invite, resend, remove, regenerate.

docs/access.md ("The portal of a matter") is the contract. Each function
runs in the caller's ``Unit`` (one transaction): the invite rows, their
outbox messages (``rtportal.notify.outbox``), the audit entries and the
matter's ``access`` / ``welcome`` events commit together; the caller then
delivers the messages and, for ``remove`` / ``regenerate``, closes the
contact's live websockets (``Closing``).

Link and passcode (``rtportal.access.invitecodes``) are stored only as
keyed hashes and replaced on every resend. An invite whose firm access
expiry passed is ``expired``: the membership stops at once
(``MatterMember.expires_at``), and the row's status is brought in line the
next time staff act on the matter's invites (``expire_due``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import audit, directory, roles, templates
from rtportal.access.credentials import clear_login, login_taken
from rtportal.access.disclosures import check_disclosures
from rtportal.access.invitesend import E2eeLink, portal_url, send_link
from rtportal.access.removal import end_membership
from rtportal.access.sessions import revoke_principal_tokens
from rtportal.db.models import Contact, Firm, Invite, Matter, utcnow
from rtportal.errors import BadRequest, NotFound, PreconditionFailed
from rtportal.events.unit import Unit
from rtportal.notify.outbox import Notifier, forget_held_bodies
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "LIVE",
    "MAX_ROUND",
    "METHODS",
    "Closing",
    "InviteRequest",
    "LinkKeys",
    "RoundKeys",
    "Sent",
    "effective_status",
    "expire_due",
    "has_active_invite",
    "invite_round",
    "load_invite",
    "parse_method",
    "parse_round",
    "portal_url",
    "regenerate",
    "remove",
    "resend",
]

METHODS = ("email", "sms", "email_sms")
LIVE = ("pending", "active")  # the states that keep a matter's portal on
MAX_ROUND = 20  # contacts per invite round
# Bytes once merged: the welcome kind's bounds (rtportal.events.kinds).
MAX_WELCOME_SUBJECT = 2000
MAX_WELCOME_TEXT = 48_000


@dataclass(frozen=True, slots=True)
class InviteRequest:
    contact_id: int
    method: str
    see_applicants: bool


@dataclass(slots=True)
class Sent:
    """What a service did, for the caller to finish after the commit."""

    invites: list[Invite] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)  # outbox ids to deliver
    # ``own_mail`` delivery: (invite id, contact id, link token) for the caller's mail.
    links: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RoundKeys:
    """The end-to-end encrypted parts of an invite round, already checked by
    ``rtportal.keys.invites`` (docs/keys.md "Portal on / client invited")."""

    delivery: str  # "portal" or "own_mail"
    frk: str  # the firm root key's fingerprint (base64url), for the link
    welcome: dict[int, bytes]  # contact id -> the welcome item's envelope
    secrets: dict[int, str]  # contact id -> the invite secret R (delivery "portal")


@dataclass(frozen=True, slots=True)
class LinkKeys:
    """A resend's or regeneration's new invite secret in an end-to-end encrypted
    firm (docs/keys.md "Regenerate login details / lost password")."""

    delivery: str  # "portal" or "own_mail"
    frk: str  # the firm root key's fingerprint (base64url), for the link
    secret: str | None  # R' (delivery "portal"; ``None`` for own_mail)


@dataclass(frozen=True, slots=True)
class Closing:
    """Websockets to close after the commit: the contact's on ``matter_id``, and
    all of them when its sessions were revoked."""

    matter_id: int
    contact_id: int
    sessions_revoked: bool
    # The membership ended (remove): its sockets close 4011 "access removed".
    # A regeneration keeps the member; only the sessions end (4010).
    membership_ended: bool = True


def parse_method(raw: object, field_name: str = "method") -> str:
    if not isinstance(raw, str) or raw not in METHODS:
        raise BadRequest(f"{field_name}: must be one of {', '.join(METHODS)}", field=field_name)
    return raw


def _text(raw: object, field_name: str, maximum: int) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip() or len(raw) > maximum:
        raise BadRequest(
            f"{field_name}: must be a non-empty string of at most {maximum} characters",
            field=field_name,
        )
    return raw


def parse_round(body: dict[str, Any]) -> tuple[list[InviteRequest], str | None, str | None]:
    """``{invites: [{contact_id, method, see_applicants}], subject?, body?}``."""
    unknown = set(body) - {"invites", "subject", "body"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    raw = body.get("invites")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ROUND:
        raise BadRequest(f"invites: must be a list of 1 to {MAX_ROUND} invites", field="invites")
    requests: list[InviteRequest] = []
    for i, item in enumerate(raw):
        where = f"invites[{i}]"
        if not isinstance(item, dict) or set(item) - {"contact_id", "method", "see_applicants"}:
            raise BadRequest(
                f"{where}: must be {{contact_id, method, see_applicants}}", field=where
            )
        contact_id = item.get("contact_id")
        if not isinstance(contact_id, int) or isinstance(contact_id, bool):
            raise BadRequest(f"{where}.contact_id: must be an integer", field=f"{where}.contact_id")
        see = item.get("see_applicants", True)
        if not isinstance(see, bool):
            raise BadRequest(
                f"{where}.see_applicants: must be a boolean", field=f"{where}.see_applicants"
            )
        method = parse_method(item.get("method"), f"{where}.method")
        if any(r.contact_id == contact_id for r in requests):
            raise BadRequest(f"{where}.contact_id: named twice", field=f"{where}.contact_id")
        requests.append(InviteRequest(contact_id, method, see))
    subject = _text(body.get("subject"), "subject", templates.MAX_SUBJECT)
    text = _text(body.get("body"), "body", templates.MAX_BODY)
    return requests, subject, text


def effective_status(invite: Invite, now: datetime) -> str:
    """The invite's state now: an active invite past its access expiry is ``expired``."""
    if (
        invite.status == "active"
        and invite.access_expires_at is not None
        and invite.access_expires_at <= now
    ):
        return "expired"
    return invite.status


async def load_invite(session: AsyncSession, principal: Principal, invite_id: object) -> Invite:
    """A staff member's firm's invite; ``NotFound`` for anything else (another firm's,
    a missing one, a malformed id; clients and bots never see invites)."""
    if (
        principal.kind != "staff"
        or not isinstance(invite_id, int)
        or isinstance(invite_id, bool)
        or not 1 <= invite_id <= directory.MAX_ID
    ):
        raise NotFound("no such invite")
    invite = await session.get(Invite, invite_id)
    if invite is None or invite.firm_id != principal.firm_id:
        raise NotFound("no such invite")
    return invite


async def _event(unit: Unit, matter: Matter, actor: Principal, action: str, invite: Invite) -> None:
    await unit.append(
        matter=matter,
        actor=actor,
        kind="access",
        audience="staff",
        payload={
            "action": action,
            "contact_id": invite.contact_id,
            "invite_id": invite.id,
            "method": invite.method,
        },
        system=True,
    )


async def _record(
    unit: Unit,
    principal: Principal,
    firm: Firm,
    matter: Matter,
    invite: Invite,
    audit_action: str,
    event_action: str,
    address: str | None,
    detail: dict[str, Any],
) -> None:
    """A staff act on an invite, recorded twice in its transaction: the audit
    log's entry and the matter's staff-only ``access`` event."""
    await audit.record(
        unit.session,
        firm_id=firm.id,
        action=audit_action,
        actor=principal,
        target=("invite", invite.id),
        matter_id=matter.id,
        address=address,
        detail=detail,
    )
    await _event(unit, matter, principal, event_action, invite)


async def expire_due(unit: Unit, matter: Matter, actor: Principal) -> None:
    """Mark the matter's invites past their access expiry ``expired`` (one
    ``access`` event each); their memberships already stopped at the expiry."""
    now = utcnow()
    rows = await unit.session.execute(
        select(Invite).where(
            Invite.matter_id == matter.id,
            Invite.status == "active",
            Invite.access_expires_at.is_not(None),
            Invite.access_expires_at <= now,
        )
    )
    for invite in rows.scalars():
        invite.status = "expired"
        invite.link_hash = None
        invite.passcode_hash = None
        await forget_held_bodies(unit.session, invite.id)
        await end_membership(unit.session, matter.id, "contact", invite.contact_id)
        await _event(unit, matter, actor, "expired", invite)
    await unit.session.flush()


async def _address_for(session: AsyncSession, contact: Contact, method: str) -> None:
    """``PreconditionFailed`` unless the contact can receive ``method`` and sign in
    with the address it goes to (no one else of the firm signs in with it)."""
    email = await directory.primary_email(session, contact.id)
    mobile = await directory.primary_mobile(session, contact.id)
    if method in ("email", "email_sms") and email is None:
        raise PreconditionFailed("contact_no_email", contact_id=contact.id)
    if method in ("sms", "email_sms") and mobile is None:
        raise PreconditionFailed("contact_no_mobile", contact_id=contact.id)
    login = email if email is not None else mobile
    if login is not None and await login_taken(
        session, contact.firm_id, login, "contact", contact.id
    ):
        raise PreconditionFailed("login_in_use", contact_id=contact.id)


def _bounded(text: str, maximum: int, field_name: str) -> str:
    if len(text.encode("utf-8")) > maximum:
        raise BadRequest(f"{field_name}: over {maximum} bytes once merged", field=field_name)
    return text


async def _live_invite_of(session: AsyncSession, matter_id: int, contact_id: int) -> list[Invite]:
    rows = await session.execute(
        select(Invite).where(
            Invite.matter_id == matter_id,
            Invite.contact_id == contact_id,
            Invite.status.in_(LIVE),
        )
    )
    return list(rows.scalars())


async def invite_round(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    matter: Matter,
    requests: list[InviteRequest],
    subject: str | None,
    body: str | None,
    address: str | None,
    keys: RoundKeys | None = None,
) -> Sent:
    """Invite each contact (all or none): turn the matter's portal on.

    A contact not yet an applicant of the matter is linked as one. A
    contact with a pending or active invite on this matter is refused
    (``already_invited``); one whose access expired may be invited again.
    With ``keys`` (an end-to-end encrypted firm) the welcome item is the
    contact's envelope (thread ``welcome-<contact id>``, no plaintext) and
    the link is delivered as ``keys.delivery`` says.
    """
    roles.require(principal, "portal.manage", matter)
    session = unit.session
    # One round at a time per matter: two concurrent rounds cannot both invite a contact.
    await session.execute(select(Matter.id).where(Matter.id == matter.id).with_for_update())
    await expire_due(unit, matter, principal)
    firm = await session.get(Firm, matter.firm_id)
    assert firm is not None
    # The firm's disclosure documents come before any invite (docs/documents.md).
    await check_disclosures(session, firm, matter.id)
    template = await templates.default_template(session, firm.id)
    contacts: list[Contact] = []
    for request in requests:
        try:
            contact = await directory.get_contact(session, firm.id, request.contact_id)
        except NotFound:
            raise NotFound("no such contact", contact_id=request.contact_id) from None
        await _address_for(session, contact, request.method)
        if await _live_invite_of(session, matter.id, contact.id):
            raise PreconditionFailed("already_invited", contact_id=contact.id)
        contacts.append(contact)
    sent = Sent()
    for request, contact in zip(requests, contacts, strict=True):
        await directory.link_applicant(session, matter, contact)
        values = {
            "company": firm.name,
            "client_name": contact.display_name,
            "matter_ref": matter.reference,
        }
        invite = Invite(
            firm_id=firm.id,
            matter_id=matter.id,
            contact_id=contact.id,
            method=request.method,
            see_applicants=request.see_applicants,
            status="pending",
            subject=templates.merge(subject or template.subject, values),
            body=templates.merge(body or template.body, values),
            created_by=principal.id,
            delivery="portal" if keys is None else keys.delivery,
        )
        session.add(invite)
        await session.flush()
        public = {"portal_link": portal_url(settings, firm)}
        welcome_subject = _bounded(
            templates.merge(invite.subject, public), MAX_WELCOME_SUBJECT, "subject"
        )
        welcome_text = _bounded(templates.merge(invite.body, public), MAX_WELCOME_TEXT, "body")
        e2ee = None
        if keys is not None and contact.id in keys.secrets:
            e2ee = E2eeLink(keys.secrets[contact.id], keys.frk)
        link = await send_link(session, settings, notifier, firm, matter, invite, e2ee)
        sent.messages += link.messages
        if invite.delivery == "own_mail":
            sent.links.append((invite.id, contact.id, link.token))
        sent.invites.append(invite)
        await _record(
            unit,
            principal,
            firm,
            matter,
            invite,
            "invite.sent",
            "invited",
            address,
            {"contact_id": contact.id, "method": invite.method},
        )
        if keys is not None:
            # End-to-end encrypted: the server relays the envelope, knows no text.
            await unit.append(
                matter=matter,
                actor=principal,
                kind="welcome",
                audience="portal",
                payload={"thread": f"welcome-{contact.id}", "to": [contact.id]},
                blob=keys.welcome[contact.id],
                system=True,
            )
            continue
        await unit.append(
            matter=matter,
            actor=principal,
            kind="welcome",
            audience="portal",
            payload={
                "thread": f"welcome-{invite.id}",
                "to": [contact.id],
                "subject": welcome_subject,
                "text": welcome_text,
            },
            system=True,
        )
    return sent


async def _managed(
    unit: Unit, principal: Principal, invite_id: object
) -> tuple[Invite, Matter, Firm, Contact]:
    session = unit.session
    invite = await load_invite(session, principal, invite_id)
    matter = await session.get(Matter, invite.matter_id)
    firm = await session.get(Firm, invite.firm_id)
    contact = await session.get(Contact, invite.contact_id)
    assert matter is not None and firm is not None and contact is not None
    roles.require(principal, "portal.manage", matter)
    await session.execute(select(Matter.id).where(Matter.id == matter.id).with_for_update())
    await session.refresh(invite)
    await expire_due(unit, matter, principal)
    return invite, matter, firm, contact


async def resend(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    invite_id: object,
    method: str | None,
    address: str | None,
    keys: LinkKeys | None = None,
) -> Sent:
    """A new link (and passcode) for a pending invite, optionally by another
    method; the previous ones stop working in this transaction. ``keys``: an
    end-to-end encrypted firm's new invite secret (``rtportal.keys.regenerate``
    checked the rest)."""
    invite, matter, firm, contact = await _managed(unit, principal, invite_id)
    if invite.status != "pending":
        raise PreconditionFailed("invite_not_pending", invite_id=invite.id)
    if method is not None:
        await _address_for(unit.session, contact, method)
        invite.method = method
    invite.resends += 1
    sent = await _new_link(unit.session, settings, notifier, firm, matter, invite, keys)
    await _record(
        unit,
        principal,
        firm,
        matter,
        invite,
        "invite.resent",
        "resent",
        address,
        {"contact_id": contact.id, "method": invite.method},
    )
    return sent


async def _new_link(
    session: AsyncSession,
    settings: Settings,
    notifier: Notifier,
    firm: Firm,
    matter: Matter,
    invite: Invite,
    keys: LinkKeys | None,
) -> Sent:
    """The invite's new link, delivered as ``keys`` says (without: as its stored delivery)."""
    e2ee = None
    if keys is not None:
        invite.delivery = keys.delivery
        if keys.secret is not None:
            e2ee = E2eeLink(keys.secret, keys.frk)
    link = await send_link(session, settings, notifier, firm, matter, invite, e2ee)
    sent = Sent([invite], link.messages)
    if invite.delivery == "own_mail":
        sent.links.append((invite.id, invite.contact_id, link.token))
    return sent


async def _other_live_invites(session: AsyncSession, contact_id: int, invite_id: int) -> bool:
    """Has the contact an active, unexpired invite other than ``invite_id``?"""
    now = utcnow()
    rows = await session.execute(
        select(Invite).where(
            Invite.contact_id == contact_id, Invite.id != invite_id, Invite.status == "active"
        )
    )
    return any(effective_status(row, now) == "active" for row in rows.scalars())


async def remove(
    unit: Unit, principal: Principal, invite_id: object, address: str | None
) -> tuple[Invite, Closing]:
    """Remove the contact from the matter's portal: the invite ends, so does the
    membership, and, without another active invite, every session of the contact."""
    invite, matter, firm, contact = await _managed(unit, principal, invite_id)
    if invite.status not in LIVE:
        raise PreconditionFailed("invite_ended", invite_id=invite.id)
    session = unit.session
    invite.status = "removed"
    invite.removed_at = utcnow()
    invite.link_hash = None
    invite.passcode_hash = None
    await forget_held_bodies(session, invite.id)
    await end_membership(session, matter.id, "contact", contact.id)
    revoked = 0
    if not await _other_live_invites(session, contact.id, invite.id):
        revoked = await revoke_principal_tokens(session, "contact", contact.id)
    await _record(
        unit,
        principal,
        firm,
        matter,
        invite,
        "invite.removed",
        "removed",
        address,
        {"contact_id": contact.id, "sessions_revoked": revoked},
    )
    return invite, Closing(matter.id, contact.id, revoked > 0)


async def regenerate(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    invite_id: object,
    method: str | None,
    address: str | None,
    keys: LinkKeys | None = None,
) -> tuple[Sent, Closing]:
    """New login details: the contact's password is cleared, every session of
    theirs ends, and a new link (and passcode) goes out; accepting it sets a
    new password. The invite keeps its state (an active client stays a member).
    ``keys``: as for ``resend``."""
    invite, matter, firm, contact = await _managed(unit, principal, invite_id)
    if invite.status not in LIVE:
        raise PreconditionFailed("invite_ended", invite_id=invite.id)
    session = unit.session
    if method is not None:
        await _address_for(session, contact, method)
        invite.method = method
    await clear_login(session, "contact", contact.id)
    await revoke_principal_tokens(session, "contact", contact.id)
    sent = await _new_link(session, settings, notifier, firm, matter, invite, keys)
    await _record(
        unit,
        principal,
        firm,
        matter,
        invite,
        "login.regenerated",
        "regenerated",
        address,
        {"contact_id": contact.id, "method": invite.method},
    )
    return sent, Closing(matter.id, contact.id, True, membership_ended=False)


async def has_active_invite(session: AsyncSession, contact_id: int) -> bool:
    """May this contact sign in? Only with an active, unexpired invite (on any matter)."""
    return await _other_live_invites(session, contact_id, 0)
