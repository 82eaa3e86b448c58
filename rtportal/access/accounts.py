"""Password sign-in and password change (docs/access.md "Accounts and sign-in").

Who may sign in: a staff member whose status is ``active``; a contact with
at least one invite whose status is ``active``. Anyone else (unknown email,
no password yet, disabled, removed) costs the same argon2 verify and gets
the same ``invalid_credentials`` as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import invites, passwords
from rtportal.access.credentials import SALT_BYTES, Kdf
from rtportal.db.models import AuthToken, Credential, Firm, StaffUser, utcnow
from rtportal.errors import InvalidCredentials
from rtportal.settings import Settings

__all__ = [
    "Candidate",
    "can_sign_in",
    "find_firm",
    "firm_key",
    "lock_firm",
    "lookup",
    "prelogin_kdf",
    "revoke_other_tokens",
    "verify_secret",
]

INVALID = "wrong email or password"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What sign-in found for (firm, email) before the secret is checked."""

    firm: Firm | None
    credential: Credential | None
    eligible: bool  # the person may sign in (status), and has a password


async def lock_firm(session: AsyncSession, firm_id: int) -> None:
    """Take the firm row's lock that ``audit.record`` takes, first in a write
    transaction that inserts rows referencing the firm and then audits.

    Taken first, it orders the firm's audited writes before any insert;
    the lock (FOR NO KEY UPDATE, as ``audit.record``) does not conflict
    with the KEY SHARE locks inserts referencing the firm take.
    """
    await session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update(key_share=True))


async def find_firm(session: AsyncSession, slug: str | None) -> Firm | None:
    """The firm a sign-in names by slug; with no slug, the only firm (else None)."""
    if slug:
        return (await session.execute(select(Firm).where(Firm.slug == slug))).scalar_one_or_none()
    firms = (await session.execute(select(Firm).limit(2))).scalars().all()
    return firms[0] if len(firms) == 1 else None


async def can_sign_in(session: AsyncSession, credential: Credential) -> bool:
    """Staff: status active. Contacts: at least one active, unexpired invite."""
    if credential.principal_kind == "staff":
        user = await session.get(StaffUser, credential.principal_id)
        return user is not None and user.status == "active" and user.role != "bot"
    # An active invite past the firm's access expiry does not count.
    return await invites.has_active_invite(session, credential.principal_id)


async def lookup(session: AsyncSession, slug: str | None, email: str) -> Candidate:
    firm = await find_firm(session, slug)
    if firm is None:
        return Candidate(None, None, False)
    credential = (
        await session.execute(
            select(Credential).where(
                Credential.firm_id == firm.id, Credential.email == email.lower()
            )
        )
    ).scalar_one_or_none()
    if credential is None:
        return Candidate(firm, None, False)
    eligible = credential.verifier is not None and await can_sign_in(session, credential)
    return Candidate(firm, credential, eligible)


def firm_key(slug: str | None, found: Candidate) -> str:
    """The firm as named for keys derived from a sign-in: the firm found (a sign-in
    that leaves out the only firm's slug is the same firm), else the slug given."""
    return found.firm.slug if found.firm is not None else (slug or "")


def prelogin_kdf(settings: Settings, slug: str | None, email: str, found: Candidate) -> Kdf:
    """The credential's salt and parameters; for nobody, a stable salt derived
    from the server secret and (firm, email) with the default parameters."""
    if found.credential is not None:
        return Kdf.of(found.credential)
    message = f"prelogin|{firm_key(slug, found)}|{email.lower()}".encode()
    salt = hmac.new(settings.secret_key, message, hashlib.sha256).digest()[:SALT_BYTES]
    return Kdf(salt, settings.login_kdf_m_kib, settings.login_kdf_t, settings.login_kdf_p)


async def verify_secret(found: Candidate, secret: bytes) -> str | None:
    """Check the login secret (a dummy verify of the same cost for nobody).

    Returns the new hash when the server's parameters changed (store it),
    else None; ``InvalidCredentials`` when it does not match."""
    hashing = passwords.hashing()
    verifier = found.credential.verifier if found.credential and found.eligible else None
    result = await hashing.verify(verifier, secret)
    if not result.ok:
        raise InvalidCredentials(INVALID)
    return result.rehash


async def revoke_other_tokens(
    session: AsyncSession, kind: str, principal_id: int, keep_session_id: str | None
) -> list[str]:
    """Revoke every live token of the principal but the caller's own session;
    the session ids revoked (to close their websockets)."""
    query = select(AuthToken.id, AuthToken.token_hash).where(
        AuthToken.principal_kind == kind,
        AuthToken.principal_id == principal_id,
        AuthToken.revoked_at.is_(None),
    )
    rows = [
        (row_id, token_hash)
        for row_id, token_hash in (await session.execute(query)).all()
        if token_hash.hex() != keep_session_id
    ]
    if rows:
        await session.execute(
            update(AuthToken)
            .where(AuthToken.id.in_([row_id for row_id, _ in rows]))
            .values(revoked_at=utcnow())
        )
    return [token_hash.hex() for _, token_hash in rows]
