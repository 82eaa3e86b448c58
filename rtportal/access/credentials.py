"""Credentials: how a staff member or contact signs in (``Credential`` rows).

The interface the invite and staff-setup flows use to give a person a
password, and sign-in uses to check it. The browser sends only the login
secret (docs/access.md "Accounts and sign-in"); it is hashed here with
argon2-cffi. This module is the one place that parses and checks the
client-side KDF parameters (``Kdf.parse``, ``Kdf.check``): at least the
floor of the settings (``weak_kdf_params`` below it), at most what
``rtportal.crypto.backup`` accepts (so a browser is never asked for more).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import base64url
from rtportal.access import passwords
from rtportal.crypto.backup import MAX_M_KIB, MAX_P, MAX_T, Argon2Params, derive_password_keys
from rtportal.db.models import Credential, StaffUser, utcnow
from rtportal.errors import BadRequest, PreconditionFailed
from rtportal.settings import Settings

__all__ = [
    "MIN_PASSWORD_CHARS",
    "Kdf",
    "clear_login",
    "credential_of",
    "set_login",
    "set_password_text",
]

SALT_BYTES = 16
LOGIN_SECRET_BYTES = 32
# For passwords the server sees as text (create-firm, the demo): browsers
# enforce their own rule before deriving the login secret.
MIN_PASSWORD_CHARS = 10


@dataclass(frozen=True, slots=True)
class Kdf:
    """The browser's Argon2id salt and parameters for one credential."""

    salt: bytes
    m_kib: int = 65536
    t: int = 3
    p: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": "argon2id",
            "salt": base64url.encode(self.salt),
            "m_kib": self.m_kib,
            "t": self.t,
            "p": self.p,
        }

    def params_text(self) -> str:
        return json.dumps({"m_kib": self.m_kib, "t": self.t, "p": self.p}, sort_keys=True)

    @classmethod
    def new(cls, settings: Settings) -> Kdf:
        """A fresh salt with the settings' parameters for new passwords."""
        return cls(
            secrets.token_bytes(SALT_BYTES),
            settings.login_kdf_m_kib,
            settings.login_kdf_t,
            settings.login_kdf_p,
        )

    @classmethod
    def of(cls, row: Credential) -> Kdf:
        """A stored credential's salt and parameters."""
        params = json.loads(row.kdf_params)
        return cls(row.kdf_salt, int(params["m_kib"]), int(params["t"]), int(params["p"]))

    def check(self, settings: Settings) -> Kdf:
        """``self`` when within bounds: ``weak_kdf_params`` below the settings'
        floor, ``bad_request`` above ``rtportal.crypto.backup``'s maximum."""
        if not (
            1 <= self.p <= MAX_P and 8 * self.p <= self.m_kib <= MAX_M_KIB and 1 <= self.t <= MAX_T
        ):
            raise BadRequest(
                f"kdf parameters out of bounds (m_kib <= {MAX_M_KIB}, t <= {MAX_T}, p <= {MAX_P})"
            )
        if self.m_kib < settings.login_kdf_min_m_kib or self.t < settings.login_kdf_min_t:
            raise PreconditionFailed(
                "weak_kdf_params",
                "kdf parameters below the minimum",
                min_m_kib=settings.login_kdf_min_m_kib,
                min_t=settings.login_kdf_min_t,
            )
        return self

    @classmethod
    def parse(cls, raw: object) -> Kdf:
        """A request's ``kdf`` object; ``BadRequest`` for anything else."""
        if not isinstance(raw, dict) or raw.get("alg") != "argon2id":
            raise BadRequest("kdf must be {alg: argon2id, salt, m_kib, t, p}")
        salt = base64url.decode(raw.get("salt"), SALT_BYTES, "kdf.salt")
        if salt is None or len(salt) != SALT_BYTES:
            raise BadRequest("kdf.salt must be 16 bytes")
        values = [raw.get(k) for k in ("m_kib", "t", "p")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise BadRequest("kdf.m_kib, kdf.t and kdf.p must be integers")
        return cls(salt, *values)  # type: ignore[arg-type]


async def credential_of(
    session: AsyncSession, principal_kind: str, principal_id: int
) -> Credential | None:
    result = await session.execute(
        select(Credential).where(
            Credential.principal_kind == principal_kind, Credential.principal_id == principal_id
        )
    )
    return result.scalar_one_or_none()


async def login_taken(
    session: AsyncSession, firm_id: int, login: str, principal_kind: str, principal_id: int
) -> bool:
    """Does someone else at the firm sign in (or a staff member stand to sign in)
    with ``login``? Sign-in names a person by (firm, email), so two people of
    one firm cannot share one (a couple sharing an address: one of them gets
    invited by SMS, or with their own address)."""
    login = login.lower()
    owner = (
        await session.execute(
            select(Credential.principal_kind, Credential.principal_id).where(
                Credential.firm_id == firm_id, Credential.email == login
            )
        )
    ).first()
    if owner is not None and (owner[0], owner[1]) != (principal_kind, principal_id):
        return True
    staff = (
        await session.execute(
            select(StaffUser.id).where(StaffUser.firm_id == firm_id, StaffUser.email == login)
        )
    ).first()
    return staff is not None and (principal_kind, principal_id) != ("staff", staff[0])


async def set_login(
    session: AsyncSession,
    *,
    firm_id: int,
    principal_kind: str,
    principal_id: int,
    email: str,
    kdf: Kdf,
    login_secret: bytes,
    key_backup: bytes | None = None,
    public_keys: bytes | None = None,
) -> Credential:
    """Give the principal a password (create or replace its credential), in the caller's
    transaction."""
    if len(login_secret) != LOGIN_SECRET_BYTES:
        raise BadRequest("login_secret must be 32 bytes")
    verifier = await passwords.hashing().hash(login_secret)
    row = await credential_of(session, principal_kind, principal_id)
    if row is None:
        row = Credential(
            firm_id=firm_id,
            email=email.lower(),
            principal_kind=principal_kind,
            principal_id=principal_id,
        )
        session.add(row)
    row.email = email.lower()
    row.kdf_salt = kdf.salt
    row.kdf_params = kdf.params_text()
    row.verifier = verifier
    row.key_backup = key_backup
    row.public_keys = public_keys
    row.password_set_at = utcnow()
    await session.flush()
    return row


async def clear_login(session: AsyncSession, principal_kind: str, principal_id: int) -> None:
    """Forget the principal's password (regenerate login details).

    The caller ends the principal's sessions in the same transaction."""
    row = await credential_of(session, principal_kind, principal_id)
    if row is not None:
        row.verifier = None
        await session.flush()


async def set_password_text(
    session: AsyncSession,
    settings: Settings,
    *,
    firm_id: int,
    principal_kind: str,
    principal_id: int,
    email: str,
    password: str,
) -> Credential:
    """``set_login`` from a plain-text password, derived here exactly as a browser
    does (``derive_password_keys`` with the settings' parameters for new
    passwords): only ``rtportal create-firm`` and the demo know a password."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PreconditionFailed(
            "weak_password", f"a password has at least {MIN_PASSWORD_CHARS} characters"
        )
    kdf = Kdf.new(settings)
    keys = derive_password_keys(password, kdf.salt, Argon2Params(kdf.m_kib, kdf.t, kdf.p))
    return await set_login(
        session,
        firm_id=firm_id,
        principal_kind=principal_kind,
        principal_id=principal_id,
        email=email,
        kdf=kdf,
        login_secret=keys.login_secret,
    )
