"""Passwords for tests: give a principal a login, derive what a browser sends."""

from __future__ import annotations

from typing import Any

from rtportal import base64url
from rtportal.access.credentials import Kdf, set_login
from rtportal.crypto.backup import Argon2Params, derive_password_keys
from rtportal.db import Database
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["give_password", "secret_for", "signin_body"]


def secret_for(password: str, kdf: dict[str, Any]) -> str:
    """The login secret (unpadded base64url) a browser derives from ``kdf`` (prelogin's)."""
    salt = base64url.decode(kdf["salt"], 16)
    assert salt is not None
    params = Argon2Params(kdf["m_kib"], kdf["t"], kdf["p"])
    return base64url.encode(derive_password_keys(password, salt, params).login_secret)


async def give_password(
    db: Database,
    settings: Settings,
    principal: Principal,
    email: str,
    password: str,
    *,
    key_backup: bytes | None = None,
) -> Kdf:
    """Set ``principal``'s password (a fresh salt, the settings' parameters)."""
    kdf = Kdf.new(settings)
    keys = derive_password_keys(password, kdf.salt, Argon2Params(kdf.m_kib, kdf.t, kdf.p))
    async with db.write() as session:
        await set_login(
            session,
            firm_id=principal.firm_id,
            principal_kind=principal.kind,
            principal_id=principal.id,
            email=email,
            kdf=kdf,
            login_secret=keys.login_secret,
            key_backup=key_backup,
        )
    return kdf


def signin_body(slug: str, email: str, password: str, kdf: dict[str, Any]) -> dict[str, Any]:
    return {"firm": slug, "email": email, "login_secret": secret_for(password, kdf)}
