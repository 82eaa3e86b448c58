"""Passwords for tests: give a principal a login, derive what a browser sends."""

from __future__ import annotations

from typing import Any

import httpx

from rtportal import base64url
from rtportal.access.credentials import Kdf, set_login
from rtportal.crypto.backup import Argon2Params, derive_password_keys
from rtportal.db import Database
from rtportal.db.models import Firm, StaffUser
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "firm_slug",
    "give_password",
    "prelogin_kdf",
    "secret_for",
    "signin_body",
    "staff_email",
]


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


async def firm_slug(db: Database, firm_id: int) -> str:
    async with db.read() as session:
        firm = await session.get(Firm, firm_id)
        assert firm is not None
        return firm.slug


async def staff_email(db: Database, user_id: int) -> str:
    async with db.read() as session:
        user = await session.get(StaffUser, user_id)
        assert user is not None
        return user.email


async def prelogin_kdf(http: httpx.AsyncClient, body: dict[str, Any]) -> Any:
    """``POST /api/v1/prelogin``'s ``kdf`` (asserting a 200)."""
    response = await http.post("/api/v1/prelogin", json=body)
    assert response.status_code == 200, response.text
    return response.json()["kdf"]
