"""Opaque bearer/session tokens, stored only as SHA-256 hashes.

A token is 32 random bytes in unpadded base64url (43 characters). It is
read from the ``rtp_session`` cookie or an ``Authorization: Bearer``
header, never from a query parameter (URLs end up in logs and referrers).
The database stores ``sha256(token)``: a leaked database holds no usable
token, and 256 bits of randomness need no slow hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, cookie_parser

from rtportal.db.models import AuthToken, Contact, StaffUser, utcnow
from rtportal.errors import NotFound, Unauthenticated
from rtportal.principal import Principal, PrincipalKind

__all__ = [
    "SESSION_COOKIE",
    "authenticate",
    "hash_token",
    "issue_token",
    "live_sessions",
    "load_principal",
    "revoke_principal_tokens",
    "revoke_token",
    "session_id_of",
    "token_from_connection",
    "token_from_headers",
]

SESSION_COOKIE = "rtp_session"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_KINDS: tuple[PrincipalKind, ...] = ("staff", "contact", "bot")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def session_id_of(token: str) -> str:
    """A public name for a login session: the hex of its token's hash (not the token).

    The full hash, so that the hub's revocation re-check
    (``live_sessions``) finds the row through the unique ``token_hash``
    index. A hash is not a credential: it cannot be turned back into a token.
    """
    return hash_token(token).hex()


def token_from_connection(conn: HTTPConnection) -> str | None:
    """The caller's token: ``Authorization: Bearer`` first, else the session cookie."""
    return token_from_headers(conn.headers.get("authorization"), conn.headers.get("cookie"))


def token_from_headers(authorization: str | None, cookie: str | None) -> str | None:
    """The one parser of credentials in request headers (HTTP and every websocket transport).

    ``Authorization: Bearer <token>`` first; a malformed Authorization header
    is not silently replaced by the cookie. Else the ``rtp_session`` cookie.
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    if cookie:
        return cookie_parser(cookie).get(SESSION_COOKIE) or None
    return None


async def load_principal(session: AsyncSession, kind: str, principal_id: int) -> Principal:
    """The ``Principal`` for a stored (kind, id); ``NotFound`` if it does not exist."""
    if kind == "contact":
        contact = await session.get(Contact, principal_id)
        if contact is None:
            raise NotFound("no such principal")
        return Principal("contact", contact.id, contact.firm_id, contact.display_name)
    if kind in ("staff", "bot"):
        user = await session.get(StaffUser, principal_id)
        if user is None or (user.role == "bot") != (kind == "bot"):
            raise NotFound("no such principal")
        return Principal(
            "bot" if kind == "bot" else "staff", user.id, user.firm_id, user.display_name
        )
    raise NotFound("no such principal")


async def authenticate(session: AsyncSession, token: str | None) -> Principal:
    """The principal a live token belongs to, else ``Unauthenticated``."""
    if not token or _TOKEN_RE.fullmatch(token) is None:
        raise Unauthenticated("missing or malformed token")
    row = (
        await session.execute(select(AuthToken).where(AuthToken.token_hash == hash_token(token)))
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("invalid token")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("token expired")
    try:
        principal = await load_principal(session, row.principal_kind, row.principal_id)
    except NotFound:
        raise Unauthenticated("invalid token") from None
    if principal.firm_id != row.firm_id:
        raise Unauthenticated("invalid token")
    return replace(principal, session_id=session_id_of(token))


async def issue_token(
    session: AsyncSession,
    principal_kind: str,
    principal_id: int,
    *,
    label: str,
    ttl: timedelta | None,
) -> str:
    """Create a token for an existing principal (in the caller's transaction).

    ``ttl=None`` makes a token that lives until revoked (bots, demo users).
    """
    if principal_kind not in _KINDS:
        raise NotFound("no such principal")
    principal = await load_principal(session, principal_kind, principal_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires: datetime | None = now + ttl if ttl is not None else None
    session.add(
        AuthToken(
            token_hash=hash_token(token),
            principal_kind=principal.kind,
            principal_id=principal.id,
            firm_id=principal.firm_id,
            label=label[:100],
            created_at=now,
            expires_at=expires,
        )
    )
    await session.flush()
    return token


async def revoke_token(session: AsyncSession, token: str) -> bool:
    """Revoke one token; ``True`` if a live token was revoked."""
    if _TOKEN_RE.fullmatch(token) is None:
        return False
    result = await session.execute(
        update(AuthToken)
        .where(AuthToken.token_hash == hash_token(token), AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_principal_tokens(session: AsyncSession, kind: str, principal_id: int) -> int:
    """Revoke every live token of a principal (removal, regenerated login)."""
    result = await session.execute(
        update(AuthToken)
        .where(
            AuthToken.principal_kind == kind,
            AuthToken.principal_id == principal_id,
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def live_sessions(session: AsyncSession, session_ids: Collection[str]) -> set[str]:
    """Which of ``session_ids`` (``session_id_of`` values) are still live.

    Live means what ``authenticate`` accepts: the token exists, is not
    revoked and has not expired. One query through the unique
    ``token_hash`` index; the hub calls it for the sessions of its
    connections (after a broker reset and with its safety poll), because a
    ``close_principal`` control message on the broker is at-most-once.
    Malformed ids are simply not live.
    """
    wanted: dict[bytes, str] = {}
    for sid in session_ids:
        try:
            raw = bytes.fromhex(sid)
        except ValueError:
            continue
        if len(raw) == 32:
            wanted[raw] = sid
    if not wanted:
        return set()
    rows = await session.execute(
        select(AuthToken.token_hash, AuthToken.revoked_at, AuthToken.expires_at).where(
            AuthToken.token_hash.in_(list(wanted))
        )
    )
    now = utcnow()
    return {
        wanted[token_hash]
        for token_hash, revoked_at, expires_at in rows
        if revoked_at is None and (expires_at is None or expires_at > now)
    }
