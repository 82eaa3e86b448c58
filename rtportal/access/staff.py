"""Staff management by org admins: invite, resend the setup link, change role,
disable; and the setup link a new staff member uses to choose a password.

A setup link is an ``auth_tokens`` row of kind ``setup`` (stored as a keyed
hash, like every token): single use (a conditional ``UPDATE`` marks it
used, so of two concurrent accepts one wins), lives
``settings.setup_link_ttl`` seconds, and a resend revokes the previous one.
Its secret travels in the URL fragment (``/?firm=<slug>#setup=<token>``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import audit, totp
from rtportal.access.accounts import lock_firm
from rtportal.access.credentials import credential_of
from rtportal.access.directory import is_email
from rtportal.access.sessions import hash_token, revoke_principal_tokens
from rtportal.db.models import AuthToken, Credential, Firm, OutboxMessage, StaffUser, utcnow
from rtportal.errors import BadRequest, Conflict, InvalidLink, NotFound, PreconditionFailed
from rtportal.notify import outbox
from rtportal.notify.outbox import Notifier
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "ROLES",
    "Changed",
    "accept_setup",
    "change",
    "invite",
    "list_staff",
    "open_setup",
    "resend_setup",
    "staff_json",
]

ROLES = ("org_admin", "matter_admin", "staff")
STATUSES = ("active", "disabled")


def staff_json(user: StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.display_name,
        "role": user.role,
        "status": user.status,
        "created_at": user.created_at.isoformat(),
    }


async def list_staff(session: AsyncSession, firm_id: int) -> list[StaffUser]:
    rows = await session.execute(
        select(StaffUser)
        .where(StaffUser.firm_id == firm_id, StaffUser.role != "bot")
        .order_by(StaffUser.id)
    )
    return list(rows.scalars())


async def _member(session: AsyncSession, actor: Principal, user_id: int) -> StaffUser:
    """A staff member (not a bot) of the actor's firm; ``not_found`` for anything else."""
    user = await session.get(StaffUser, user_id)
    if user is None or user.firm_id != actor.firm_id or user.role == "bot":
        raise NotFound("no such staff member")
    return user


def setup_url(settings: Settings, firm: Firm, token: str) -> str:
    return f"{settings.public_url}/?firm={firm.slug}#setup={token}"


async def _send_setup(
    session: AsyncSession, settings: Settings, notifier: Notifier, firm: Firm, user: StaffUser
) -> OutboxMessage:
    """Revoke the member's earlier setup links, issue a new one, queue its email."""
    now = utcnow()
    await session.execute(
        update(AuthToken)
        .where(
            AuthToken.principal_kind == "staff",
            AuthToken.principal_id == user.id,
            AuthToken.kind == "setup",
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AuthToken(
            token_hash=hash_token(settings.secret_key, token),
            kind="setup",
            principal_kind="staff",
            principal_id=user.id,
            firm_id=firm.id,
            label="setup link",
            created_at=now,
            expires_at=now + timedelta(seconds=settings.setup_link_ttl),
        )
    )
    days = max(1, settings.setup_link_ttl // 86400)
    body = (
        f"Hello {user.display_name},\n\n"
        f"You have been invited to the {firm.name} client portal.\n"
        f"Choose your password here (the link works once, for {days} day(s)):\n\n"
        f"{setup_url(settings, firm, token)}\n"
    )
    return await outbox.queue(
        session,
        notifier,
        firm_id=firm.id,
        channel="email",
        recipient=user.email,
        subject=f"Your {firm.name} portal account",
        body=body,
    )


async def invite(
    session: AsyncSession,
    settings: Settings,
    notifier: Notifier,
    actor: Principal,
    *,
    email: str,
    name: str,
    role: str,
    address: str | None,
) -> tuple[StaffUser, OutboxMessage]:
    """A new staff member (status ``invited``) and their setup link's email."""
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    email = email.strip().lower()
    # One mailbox: "a@x, b@y" must not send the setup link to two people.
    if not is_email(email):
        raise BadRequest("email must be one email address")
    await lock_firm(session, actor.firm_id)
    firm = await session.get(Firm, actor.firm_id)
    assert firm is not None
    taken = await session.execute(
        select(func.count())
        .select_from(Credential)
        .where(Credential.firm_id == firm.id, Credential.email == email)
    )
    user_taken = await session.execute(
        select(func.count())
        .select_from(StaffUser)
        .where(StaffUser.firm_id == firm.id, StaffUser.email == email)
    )
    if int(taken.scalar_one()) or int(user_taken.scalar_one()):
        raise Conflict("someone at this firm already has this email")
    user = StaffUser(firm_id=firm.id, email=email, display_name=name, role=role, status="invited")
    session.add(user)
    await session.flush()
    message = await _send_setup(session, settings, notifier, firm, user)
    await audit.record(
        session,
        firm_id=firm.id,
        action="staff.invited",
        actor=actor,
        target=("staff", user.id),
        address=address,
        detail={"email": email, "role": role},
    )
    return user, message


async def resend_setup(
    session: AsyncSession,
    settings: Settings,
    notifier: Notifier,
    actor: Principal,
    user_id: int,
    address: str | None,
) -> OutboxMessage:
    """A new setup link for a member who has not set a password yet."""
    await lock_firm(session, actor.firm_id)
    user = await _member(session, actor, user_id)
    if user.status != "invited":
        raise PreconditionFailed("not_invited", "this staff member is not awaiting setup")
    firm = await session.get(Firm, actor.firm_id)
    assert firm is not None
    message = await _send_setup(session, settings, notifier, firm, user)
    await audit.record(
        session,
        firm_id=firm.id,
        action="staff.setup_resent",
        actor=actor,
        target=("staff", user.id),
        address=address,
    )
    return message


@dataclass(frozen=True, slots=True)
class Changed:
    user: StaffUser
    disabled: bool  # its sessions were revoked: close its websockets after commit
    # Promoted to a role that needs a second factor it has not enrolled: its
    # sessions (which never saw one) were revoked; close its websockets too.
    sessions_ended: bool = False


async def _audit(
    session: AsyncSession,
    actor: Principal,
    user: StaffUser,
    action: str,
    address: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit entry of ``actor`` acting on staff member ``user``."""
    await audit.record(
        session,
        firm_id=user.firm_id,
        action=action,
        actor=actor,
        target=("staff", user.id),
        address=address,
        detail=detail,
    )


async def _other_active_admins(session: AsyncSession, firm_id: int, user_id: int) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(StaffUser)
        .where(
            StaffUser.firm_id == firm_id,
            StaffUser.role == "org_admin",
            StaffUser.status == "active",
            StaffUser.id != user_id,
        )
    )
    return int(result.scalar_one())


async def change(
    session: AsyncSession,
    actor: Principal,
    user_id: int,
    *,
    role: str | None,
    status: str | None,
    address: str | None,
) -> Changed:
    """Change a member's role and/or status; the firm keeps one active org admin."""
    if role is not None and role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    # One change of a firm's staff at a time (PostgreSQL; SQLite has one writer),
    # so two admins demoting each other cannot leave the firm without one.
    await lock_firm(session, actor.firm_id)
    user = await _member(session, actor, user_id)
    loses_admin = user.role == "org_admin" and user.status == "active"
    loses_admin = loses_admin and (
        (role is not None and role != "org_admin") or status == "disabled"
    )
    if loses_admin and await _other_active_admins(session, user.firm_id, user.id) == 0:
        raise PreconditionFailed("last_org_admin", "the firm's last active org admin stays")
    role_changed = role is not None and role != user.role
    if role is not None and role != user.role:
        await _audit(session, actor, user, "role.changed", address, {"from": user.role, "to": role})
        user.role = role
    sessions_ended = False
    firm = await session.get(Firm, user.firm_id)
    if role_changed and firm is not None and totp.required_for(firm, "staff", user.role):
        credential = await credential_of(session, "staff", user.id)
        if credential is None or credential.totp_enabled_at is None:
            ended = await revoke_principal_tokens(session, "staff", user.id)
            sessions_ended = ended > 0
            if ended:
                await _audit(session, actor, user, "sessions.revoked", address, {"count": ended})
    disabled = False
    if status == "disabled" and user.status != "disabled":
        user.status = "disabled"
        revoked = await revoke_principal_tokens(session, "staff", user.id)
        await _audit(session, actor, user, "staff.disabled", address)
        await _audit(session, actor, user, "sessions.revoked", address, {"count": revoked})
        disabled = True
    elif status == "active" and user.status == "disabled":
        user.status = "active"
        await _audit(session, actor, user, "staff.enabled", address)
    await session.flush()
    return Changed(user, disabled, sessions_ended)


async def _setup_row(session: AsyncSession, settings: Settings, token: object) -> AuthToken:
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise InvalidLink("unknown, used or expired setup link")
    row = (
        await session.execute(
            select(AuthToken).where(
                AuthToken.token_hash == hash_token(settings.secret_key, token),
                AuthToken.kind == "setup",
            )
        )
    ).scalar_one_or_none()
    now = utcnow()
    if (
        row is None
        or row.used_at is not None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
    ):
        raise InvalidLink("unknown, used or expired setup link")
    return row


async def open_setup(
    session: AsyncSession, settings: Settings, token: object
) -> tuple[Firm, StaffUser]:
    """The firm and member a live setup link is for; ``invalid_link`` else."""
    row = await _setup_row(session, settings, token)
    user = await session.get(StaffUser, row.principal_id)
    firm = await session.get(Firm, row.firm_id)
    if user is None or firm is None or user.status == "disabled":
        raise InvalidLink("unknown, used or expired setup link")
    return firm, user


async def accept_setup(
    session: AsyncSession, settings: Settings, token: object
) -> tuple[Firm, StaffUser]:
    """Use the link up (once: a conditional ``UPDATE``) and make the member active;
    the caller sets the password in the same transaction."""
    row = await _setup_row(session, settings, token)
    await lock_firm(session, row.firm_id)
    firm, user = await open_setup(session, settings, token)
    used = await session.execute(
        update(AuthToken)
        .where(AuthToken.id == row.id, AuthToken.used_at.is_(None), AuthToken.revoked_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidLink("unknown, used or expired setup link")
    user.status = "active"
    await session.flush()
    return firm, user
