"""The client side of an invite: open the link, then accept it.

No session is needed: the link secret is the credential. ``open_invite``
reads (it consumes nothing); ``accept`` checks the passcode where the
method has one (each try counted in its own committed transaction, so a
request that then fails still spent it; after ``PASSCODE_TRIES`` the
passcode is locked), then in one transaction consumes the link with a
conditional ``UPDATE`` (of concurrent accepts of one link exactly one
succeeds), admits the contact to the matter, sets (or checks) the
password and issues a session.

A link works only while its invite is pending (or active with new login
details from a regeneration), is the latest one sent (a resend replaces
the stored hash) and has not expired; everything else is ``invalid_link``,
with the same message whatever the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import base64url
from rtportal.access import audit, directory, passwords, totp
from rtportal.access.credentials import (
    LOGIN_SECRET_BYTES,
    Kdf,
    credential_of,
    login_taken,
    set_login,
)
from rtportal.access.invitecodes import PASSCODE_TRIES, link_hash, passcode_matches
from rtportal.access.membership import live
from rtportal.access.ratelimit import Limiter
from rtportal.access.sessions import Exchanged, issue_session
from rtportal.db import Database
from rtportal.db.models import (
    Contact,
    Credential,
    Firm,
    Invite,
    Matter,
    MatterMember,
    utcnow,
)
from rtportal.errors import (
    BadRequest,
    InvalidCredentials,
    InvalidLink,
    InvalidPasscode,
    PreconditionFailed,
)
from rtportal.events.unit import Publish, Unit
from rtportal.notify.outbox import forget_held_bodies
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["Acceptance", "accept", "open_invite", "parse_acceptance"]

_BLOB_MAX = 64 * 1024  # key backup / public keys: opaque, bounded


@dataclass(frozen=True, slots=True)
class Acceptance:
    token: object
    passcode: object
    kdf: Kdf | None
    login_secret: bytes
    key_backup: bytes | None
    public_keys: bytes | None
    totp: str | None = None  # the second factor, for a contact who enrolled one


def parse_acceptance(body: dict[str, Any]) -> Acceptance:
    """``{token, passcode?, kdf, login_secret, key_backup?, public_keys?, totp?}``;
    ``kdf`` may be left out when the contact already has a password."""
    allowed = {"token", "passcode", "kdf", "login_secret", "key_backup", "public_keys", "totp"}
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    code = body.get("totp")
    if code is not None and not isinstance(code, str):
        raise BadRequest("totp: must be a string", field="totp")
    passcode = body.get("passcode")
    if passcode is not None and not isinstance(passcode, str):
        raise BadRequest("passcode: must be a string of 6 digits", field="passcode")
    kdf = Kdf.parse(body["kdf"]) if body.get("kdf") is not None else None
    secret = base64url.decode(body.get("login_secret"), LOGIN_SECRET_BYTES, "login_secret")
    if secret is None or len(secret) != LOGIN_SECRET_BYTES:
        raise BadRequest("login_secret: must be 32 bytes of base64url", field="login_secret")
    return Acceptance(
        body.get("token"),
        passcode,
        kdf,
        secret,
        base64url.decode(body.get("key_backup"), _BLOB_MAX, "key_backup"),
        base64url.decode(body.get("public_keys"), _BLOB_MAX, "public_keys"),
        code,
    )


async def _live_invite(
    session: AsyncSession, key: bytes, token: object, now: datetime
) -> tuple[Invite, bytes]:
    hashed = link_hash(key, token)
    if hashed is None:
        raise InvalidLink("this link is not valid (used, replaced or expired)")
    invite = (
        await session.execute(select(Invite).where(Invite.link_hash == hashed))
    ).scalar_one_or_none()
    if (
        invite is None
        or invite.status not in ("pending", "active")
        or invite.link_expires_at is None
        or invite.link_expires_at <= now
        or (invite.access_expires_at is not None and invite.access_expires_at <= now)
    ):
        raise InvalidLink("this link is not valid (used, replaced or expired)")
    return invite, hashed


def _has_password(credential: Credential | None) -> bool:
    return credential is not None and credential.verifier is not None


async def open_invite(db: Database, settings: Settings, token: object) -> dict[str, Any]:
    """What the acceptance page shows; consumes nothing."""
    async with db.read() as session:
        invite, _ = await _live_invite(session, settings.secret_key, token, utcnow())
        firm = await session.get(Firm, invite.firm_id)
        matter = await session.get(Matter, invite.matter_id)
        contact = await session.get(Contact, invite.contact_id)
        assert firm is not None and matter is not None and contact is not None
        credential = await credential_of(session, "contact", contact.id)
        email = await directory.primary_email(session, contact.id)
    has_password = _has_password(credential)
    return {
        "firm": {"name": firm.name, "slug": firm.slug},
        "matter": {"ref": matter.reference, "title": matter.title},
        # the id names the client's rtp1 user ("c<id>"), from which the page derives its keys
        "contact": {"name": contact.display_name, "id": contact.id},
        "email": email,
        # portal: the server saw the link's secret; the page then hands over to a fresh key
        "delivery": invite.delivery,
        "needs_passcode": invite.method == "email_sms",
        "has_password": has_password,
        # The stored salt and parameters to derive the same login secret; for a
        # new password a fresh salt with the server's parameters for new ones.
        "kdf": (Kdf.of(credential) if has_password and credential else Kdf.new(settings)).to_json(),
    }


async def _spend_passcode_try(
    db: Database, key: bytes, invite: Invite, passcode: object, now: datetime
) -> None:
    """Count one try (committed whatever happens next), then check the passcode."""
    if invite.passcode_tries >= PASSCODE_TRIES:
        raise InvalidPasscode("too many wrong passcodes: ask the firm to resend the invite")
    async with db.write() as session:
        spent = await session.execute(
            update(Invite)
            .where(
                Invite.id == invite.id,
                Invite.link_hash == invite.link_hash,
                Invite.passcode_tries < PASSCODE_TRIES,
            )
            .values(passcode_tries=Invite.passcode_tries + 1)
        )
        counted = spent.rowcount == 1  # type: ignore[attr-defined]
    if not counted:
        raise InvalidPasscode("too many wrong passcodes: ask the firm to resend the invite")
    if (
        invite.passcode_expires_at is None
        or invite.passcode_expires_at <= now
        or not passcode_matches(key, invite.id, invite.passcode_hash, passcode)
    ):
        left = max(0, PASSCODE_TRIES - invite.passcode_tries - 1)
        raise InvalidPasscode("wrong or expired passcode", tries_left=left)


async def _admit(
    session: AsyncSession, invite: Invite, firm: Firm, now: datetime
) -> datetime | None:
    """The contact's membership of the matter (a regenerated client keeps theirs)."""
    expires = (
        None if firm.invite_expiry_days is None else now + timedelta(days=firm.invite_expiry_days)
    )
    found = await session.execute(
        select(MatterMember).where(
            MatterMember.matter_id == invite.matter_id,
            MatterMember.principal_kind == "contact",
            MatterMember.principal_id == invite.contact_id,
            live(),
        )
    )
    member = found.scalars().first()
    if member is None:
        session.add(
            MatterMember(
                matter_id=invite.matter_id,
                principal_kind="contact",
                principal_id=invite.contact_id,
                role="client",
                see_applicants=invite.see_applicants,
                expires_at=expires,
            )
        )
        await session.flush()
        return expires
    member.see_applicants = invite.see_applicants
    return member.expires_at


async def accept(
    db: Database,
    publish: Publish | None,
    settings: Settings,
    limiter: Limiter,
    request: Acceptance,
    address: str | None,
) -> Exchanged:
    """Accept an invite: the contact becomes a member and is signed in.

    A contact who already has a password spends a try of
    the sign-in account limit on each check of it here (the same count as
    ``POST /api/v1/signin``), so a link is no way around that limit."""
    key = settings.secret_key
    now = utcnow()
    async with db.read() as session:
        invite, hashed = await _live_invite(session, key, request.token, now)
        credential = await credential_of(session, "contact", invite.contact_id)
        firm_row = await session.get(Firm, invite.firm_id)
        account = (
            f"acct|{firm_row.slug}|{credential.email}"
            if firm_row is not None and credential is not None
            else None
        )
        login_name = await directory.primary_email(
            session, invite.contact_id
        ) or await directory.primary_mobile(session, invite.contact_id)
    if invite.method == "email_sms":
        await _spend_passcode_try(db, key, invite, request.passcode, now)
    has_password = _has_password(credential)
    if has_password:
        assert credential is not None and credential.verifier is not None
        if account is not None:
            await limiter.hit(
                "signin",
                account,
                limit=settings.signin_account_limit,
                window=settings.signin_window,
            )
        verified = await passwords.hashing().verify(credential.verifier, request.login_secret)
        if not verified.ok:
            raise InvalidCredentials("wrong password for this account")
    elif request.kdf is None:
        raise BadRequest("kdf: required to set a password", field="kdf")
    else:
        request.kdf.check(settings)  # weak_kdf_params below the server's floor
    async with Unit(db, publish, settings) as unit:
        session = unit.session
        consumed = await session.execute(
            update(Invite)
            .where(
                Invite.id == invite.id,
                Invite.link_hash == hashed,
                Invite.status.in_(("pending", "active")),
                Invite.link_expires_at > now,
            )
            .values(link_hash=None, passcode_hash=None)
        )
        if consumed.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidLink("this link is not valid (used, replaced or expired)")
        await forget_held_bodies(session, invite.id)  # the link is used up
        row = await session.get(Invite, invite.id)
        firm = await session.get(Firm, invite.firm_id)
        matter = await session.get(Matter, invite.matter_id)
        contact = await session.get(Contact, invite.contact_id)
        assert row is not None and firm is not None and matter is not None and contact is not None
        await session.refresh(row)
        first_acceptance = row.status == "pending"
        row.access_expires_at = await _admit(session, row, firm, now)
        row.status = "active"
        if first_acceptance:
            row.accepted_at = now
        if not has_password:
            assert request.kdf is not None and login_name is not None
            # Checked at the invite too; someone may have taken it since.
            if await login_taken(session, firm.id, login_name, "contact", contact.id):
                raise PreconditionFailed("login_in_use", contact_id=contact.id)
            await set_login(
                session,
                firm_id=firm.id,
                principal_kind="contact",
                principal_id=contact.id,
                email=login_name,
                kdf=request.kdf,
                login_secret=request.login_secret,
                key_backup=request.key_backup,
                public_keys=request.public_keys,
            )
        if has_password:
            # A contact with a password may have a second factor: a link is no
            # way around it (a code, or second_factor_required; the consumed
            # link rolls back with this transaction).
            current = await credential_of(session, "contact", contact.id)
            assert current is not None
            # The contact's identity is kept: it is certified in their other matters and
            # the backup is its only copy (docs/keys.md "A second matter": the page binds
            # this link's key to it instead). Only a password from before the firm's keys,
            # with no identity yet, takes the one the page made.
            if request.public_keys is not None or request.key_backup is not None:
                if current.public_keys is not None or current.key_backup is not None:
                    raise BadRequest(
                        "public_keys: this account already has an identity key",
                        field="public_keys",
                        reason="identity_exists",
                    )
                current.public_keys = request.public_keys
                current.key_backup = request.key_backup
            await totp.check_second_factor(
                session, settings, limiter, current, required=False, code=request.totp
            )
        principal = Principal("contact", contact.id, firm.id, contact.display_name)
        made = await issue_session(session, settings, principal, label="invite acceptance")
        await audit.record(
            session,
            firm_id=firm.id,
            action="invite.accepted",
            actor=principal,
            target=("invite", row.id),
            matter_id=matter.id,
            address=address,
            detail={"password_set": not has_password},
        )
        await unit.append(
            matter=matter,
            actor=principal,
            kind="access",
            audience="staff",
            payload={
                "action": "accepted",
                "contact_id": contact.id,
                "invite_id": row.id,
                "method": row.method,
            },
            system=True,
        )
    if has_password and account is not None:
        await limiter.reset("signin", account)
    return made
