"""Login links, browser sessions and API tokens, stored only as keyed hashes.

A token is 32 random bytes in unpadded base64url (43 characters). It is
read from the session cookie or an ``Authorization: Bearer`` header, never
from a query parameter (URLs end up in logs and referrers). The database
stores ``HMAC-SHA-256(server secret, token)``: a leaked database alone
holds no usable token and cannot even confirm a guessed one, and 256 bits
of randomness need no slow hash.

Three kinds of token (``AuthToken.kind``):

* ``login``: a login link. Lives ``settings.login_link_ttl`` seconds and is
  exchanged once (``exchange``); it is not a bearer credential.
* ``session``: what an exchange makes (the browser's cookie). Ends after
  ``idle_seconds`` without activity and at ``expires_at`` in any case; a
  session exchanged from another session inherits its ``expires_at``, so
  exchanging cannot extend a session. ``parent_id`` names the token it
  was exchanged from: revoking a token revokes its descendants.
* ``api``: a bearer token for a program (bots, the demo's curl line,
  tests, benchmarks); ``expires_at`` optional, no idle timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, cookie_parser

from rtportal.db import Database
from rtportal.db.models import AuthToken, Contact, StaffUser, utcnow
from rtportal.errors import NotFound, RateLimited, Unauthenticated
from rtportal.principal import Principal, PrincipalKind
from rtportal.settings import Settings

__all__ = [
    "EXCHANGE_LIMIT",
    "EXCHANGE_WINDOW",
    "SECURE_SESSION_COOKIE",
    "SESSION_COOKIE",
    "TOUCH_INTERVAL",
    "Exchanged",
    "authenticate",
    "cookie_name",
    "exchange",
    "exchangeable",
    "hash_token",
    "is_secure",
    "issue_login_link",
    "issue_session",
    "issue_token",
    "live_sessions",
    "load_principal",
    "revoke_principal_tokens",
    "revoke_token",
    "session_id_of",
    "sign_in",
    "token_from_connection",
    "token_from_headers",
    "touch",
]

SESSION_COOKIE = "rtp_session"  # over plain http (development on localhost)
# Over HTTPS: the __Host- prefix makes the browser refuse the cookie unless
# it is Secure, has Path=/ and no Domain, so neither a sibling subdomain nor
# a plain-http page can plant or overwrite it.
SECURE_SESSION_COOKIE = "__Host-rtp_session"
# Activity moves a session's last_seen_at at most this often (one write a
# minute per active session, never one per request or frame).
TOUCH_INTERVAL = timedelta(seconds=60)
# A session or API token makes at most EXCHANGE_LIMIT sessions per
# EXCHANGE_WINDOW (each is a stored row); a login link makes exactly one.
EXCHANGE_LIMIT = 30
EXCHANGE_WINDOW = timedelta(hours=1)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_KINDS: tuple[PrincipalKind, ...] = ("staff", "contact", "bot")


def hash_token(key: bytes, token: str) -> bytes:
    """``HMAC-SHA-256(key, token)``; ``key`` is ``Settings.secret_key``."""
    return hmac.new(key, token.encode("ascii"), hashlib.sha256).digest()


def session_id_of(key: bytes, token: str) -> str:
    """A public name for a login session: the hex of its token's hash (not the token).

    The full hash, so that the hub's revocation re-check
    (``live_sessions``) finds the row through the unique ``token_hash``
    index. A hash is not a credential: it cannot be turned back into a token.
    """
    return hash_token(key, token).hex()


def is_secure(settings: Settings, scheme: str) -> bool:
    """Whether the caller reached us over TLS (or the deployment says it is behind it)."""
    return scheme in ("https", "wss") or settings.public_url.startswith("https://")


def cookie_name(secure: bool) -> str:
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def token_from_connection(conn: HTTPConnection, settings: Settings) -> str | None:
    """The caller's token: ``Authorization: Bearer`` first, else the session cookie."""
    return token_from_headers(
        conn.headers.get("authorization"),
        conn.headers.get("cookie"),
        secure=is_secure(settings, conn.url.scheme),
    )


def token_from_headers(
    authorization: str | None, cookie: str | None, *, secure: bool
) -> str | None:
    """The one parser of credentials in request headers (HTTP and every websocket transport).

    ``Authorization: Bearer <token>`` first; a malformed Authorization header
    is not silently replaced by the cookie. Else the ``__Host-rtp_session``
    cookie, and only on a connection that is not ``secure`` the plain
    ``rtp_session`` cookie (over HTTPS a plain-named cookie may have been
    planted by a sibling subdomain or a plain-http response).
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    if cookie:
        jar = cookie_parser(cookie)
        found = jar.get(SECURE_SESSION_COOKIE) or (None if secure else jar.get(SESSION_COOKIE))
        return found or None
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
        if user.status == "disabled":
            raise NotFound("no such principal")
        return Principal(
            "bot" if kind == "bot" else "staff",
            user.id,
            user.firm_id,
            user.display_name,
            role=user.role,
        )
    raise NotFound("no such principal")


def _is_live(row: AuthToken, now: datetime) -> bool:
    """Not revoked, not past its absolute end, not idle for longer than its timeout."""
    if row.revoked_at is not None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not _idle_expired(row.last_seen_at, row.idle_seconds, now)


def _idle_expired(last_seen: datetime | None, idle_seconds: int | None, now: datetime) -> bool:
    if idle_seconds is None or last_seen is None:
        return False
    return last_seen + timedelta(seconds=idle_seconds) <= now


async def _token_row(
    session: AsyncSession, key: bytes, token: str | None, *, lock: bool = False
) -> AuthToken:
    if not token or _TOKEN_RE.fullmatch(token) is None:
        raise Unauthenticated("missing or malformed token")
    query = select(AuthToken).where(AuthToken.token_hash == hash_token(key, token))
    row = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if row is None:
        raise Unauthenticated("invalid token")
    return row


async def _principal_of(session: AsyncSession, row: AuthToken) -> Principal:
    try:
        principal = await load_principal(session, row.principal_kind, row.principal_id)
    except NotFound:
        raise Unauthenticated("invalid token") from None
    if principal.firm_id != row.firm_id:
        raise Unauthenticated("invalid token")
    return principal


async def _check(
    session: AsyncSession, key: bytes, token: str | None, now: datetime
) -> tuple[Principal, AuthToken]:
    row = await _token_row(session, key, token)
    # A login link is only good for one exchange, a setup link for setting a
    # password (rtportal.access.staff): neither is a bearer token.
    if row.kind in ("login", "setup") or not _is_live(row, now):
        raise Unauthenticated("invalid or expired token")
    principal = await _principal_of(session, row)
    return replace(
        principal,
        session_id=row.token_hash.hex(),
        session_idle=row.idle_seconds is not None,
    ), row


async def authenticate(session: AsyncSession, key: bytes, token: str | None) -> Principal:
    """The principal a live session or API token belongs to, else ``Unauthenticated``."""
    principal, _ = await _check(session, key, token, utcnow())
    return principal


async def sign_in(db: Database, key: bytes, token: str | None) -> Principal:
    """``authenticate`` a request or websocket, recording activity on the session.

    A session's ``last_seen_at`` moves when it is older than
    ``TOUCH_INTERVAL``: one small write a minute per active session.
    """
    now = utcnow()
    async with db.read() as session:
        principal, row = await _check(session, key, token, now)
        token_id, last_seen = row.id, row.last_seen_at
    if principal.session_idle and last_seen is not None and now - last_seen >= TOUCH_INTERVAL:
        await _touch_row(db, token_id, now)
    return principal


async def touch(db: Database, session_id: str) -> None:
    """Record activity on a live session (a websocket send or subscribe).

    Read first, and write only when ``last_seen_at`` is older than
    ``TOUCH_INTERVAL`` and the session is still live: an idle-expired or
    revoked session is never brought back.
    """
    try:
        token_hash = bytes.fromhex(session_id)
    except ValueError:
        return
    now = utcnow()
    async with db.read() as session:
        row = (
            await session.execute(select(AuthToken).where(AuthToken.token_hash == token_hash))
        ).scalar_one_or_none()
        if row is None or row.last_seen_at is None or not _is_live(row, now):
            return
        if now - row.last_seen_at < TOUCH_INTERVAL:
            return
        token_id = row.id
    await _touch_row(db, token_id, now)


async def _touch_row(db: Database, token_id: int, now: datetime) -> None:
    async with db.write() as session:
        await session.execute(
            update(AuthToken)
            .where(
                AuthToken.id == token_id,
                AuthToken.revoked_at.is_(None),
                AuthToken.last_seen_at <= now - TOUCH_INTERVAL,
            )
            .values(last_seen_at=now)
        )


async def _add_token(
    session: AsyncSession,
    key: bytes,
    principal: Principal,
    *,
    kind: str,
    label: str,
    expires: datetime | None,
    parent_id: int | None = None,
    idle_seconds: int | None = None,
    now: datetime,
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AuthToken(
            token_hash=hash_token(key, token),
            kind=kind,
            principal_kind=principal.kind,
            principal_id=principal.id,
            firm_id=principal.firm_id,
            parent_id=parent_id,
            label=label[:100],
            created_at=now,
            expires_at=expires,
            last_seen_at=now if idle_seconds is not None else None,
            idle_seconds=idle_seconds,
        )
    )
    await session.flush()
    return token


async def _existing(session: AsyncSession, principal_kind: str, principal_id: int) -> Principal:
    if principal_kind not in _KINDS:
        raise NotFound("no such principal")
    return await load_principal(session, principal_kind, principal_id)


async def issue_token(
    session: AsyncSession,
    key: bytes,
    principal_kind: str,
    principal_id: int,
    *,
    label: str,
    ttl: timedelta | None,
) -> str:
    """Create an API (bearer) token for an existing principal, in the caller's transaction.

    ``ttl=None`` makes a token that lives until revoked (bots, programs).
    """
    principal = await _existing(session, principal_kind, principal_id)
    now = utcnow()
    expires = now + ttl if ttl is not None else None
    return await _add_token(
        session, key, principal, kind="api", label=label, expires=expires, now=now
    )


async def issue_login_link(
    session: AsyncSession,
    settings: Settings,
    principal_kind: str,
    principal_id: int,
    *,
    label: str = "login link",
) -> str:
    """Create a login link's token: exchanged once, within ``settings.login_link_ttl`` s."""
    principal = await _existing(session, principal_kind, principal_id)
    now = utcnow()
    expires = now + timedelta(seconds=settings.login_link_ttl)
    return await _add_token(
        session, settings.secret_key, principal, kind="login", label=label, expires=expires, now=now
    )


@dataclass(frozen=True, slots=True)
class Exchanged:
    """A new browser session: its principal, its token and when it ends at the latest."""

    principal: Principal
    token: str
    expires_at: datetime


def _check_exchangeable(row: AuthToken, now: datetime) -> None:
    if row.kind == "setup":  # used only by POST /api/v1/setup/accept
        raise Unauthenticated("invalid or expired token")
    if not _is_live(row, now) or (row.kind == "login" and row.used_at is not None):
        raise Unauthenticated("invalid or expired token")


async def exchangeable(session: AsyncSession, key: bytes, token: str | None) -> None:
    """Raise ``Unauthenticated`` unless ``exchange`` could use ``token`` (a read, no lock):
    callers look a token up with this before they open a write transaction."""
    _check_exchangeable(await _token_row(session, key, token), utcnow())


async def _check_exchange_rate(session: AsyncSession, token_id: int, now: datetime) -> None:
    """``RateLimited`` when ``token_id`` made ``EXCHANGE_LIMIT`` sessions in the window."""
    made, oldest = (
        await session.execute(
            select(func.count(AuthToken.id), func.min(AuthToken.created_at)).where(
                AuthToken.parent_id == token_id, AuthToken.created_at > now - EXCHANGE_WINDOW
            )
        )
    ).one()
    if made >= EXCHANGE_LIMIT and oldest is not None:
        wait = (oldest + EXCHANGE_WINDOW - now).total_seconds()
        raise RateLimited("too many sessions from this token", retry_after=max(1, math.ceil(wait)))


async def exchange(session: AsyncSession, settings: Settings, token: str | None) -> Exchanged:
    """Trade a login link, a session or an API token for a new session (caller's transaction).

    A login link is marked used by a conditional ``UPDATE`` in this
    transaction: of two concurrent exchanges of one link, the second finds
    it used (SQLite serialises writers; on PostgreSQL the second ``UPDATE``
    waits for the first to commit and then matches no row) and gets
    ``Unauthenticated``. The token's row is locked (PostgreSQL): an exchange
    racing a logout of the same token waits for it and then sees it revoked.
    A session or API token makes at most ``EXCHANGE_LIMIT`` sessions per
    ``EXCHANGE_WINDOW`` (then ``RateLimited``).
    The new session ends ``settings.session_lifetime``
    seconds after the login (capped by an API token's own end); exchanged
    from a session, it inherits that session's end. It is a child of the
    token it came from, so revoking that token revokes it.
    """
    key = settings.secret_key
    now = utcnow()
    row = await _token_row(session, key, token, lock=True)
    _check_exchangeable(row, now)
    principal = await _principal_of(session, row)
    if row.kind != "login":
        await _check_exchange_rate(session, row.id, now)
    lifetime_end = now + timedelta(seconds=settings.session_lifetime)
    if row.kind == "login":
        used = await session.execute(
            update(AuthToken)
            .where(
                AuthToken.id == row.id,
                AuthToken.used_at.is_(None),
                AuthToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise Unauthenticated("invalid or expired token")
        expires = lifetime_end
    elif row.kind == "session":
        assert row.expires_at is not None  # every session has an absolute end
        expires = row.expires_at
    else:
        expires = lifetime_end if row.expires_at is None else min(lifetime_end, row.expires_at)
    return await _new_session(
        session, settings, principal, "browser session", expires, parent_id=row.id, now=now
    )


async def issue_session(
    session: AsyncSession, settings: Settings, principal: Principal, *, label: str = "sign-in"
) -> Exchanged:
    """A new browser session for ``principal`` after a sign-in (password, invite
    acceptance, staff setup), in the caller's transaction: no parent, idle
    timeout by kind, absolute end ``settings.session_lifetime`` from now."""
    now = utcnow()
    expires = now + timedelta(seconds=settings.session_lifetime)
    return await _new_session(session, settings, principal, label, expires, parent_id=None, now=now)


async def _new_session(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    label: str,
    expires: datetime,
    *,
    parent_id: int | None,
    now: datetime,
) -> Exchanged:
    """A session token: idle timeout by the principal's kind, absolute end ``expires``."""
    idle = settings.session_idle if principal.kind == "contact" else settings.staff_session_idle
    key = settings.secret_key
    token = await _add_token(
        session,
        key,
        principal,
        kind="session",
        label=label,
        expires=expires,
        parent_id=parent_id,
        idle_seconds=idle,
        now=now,
    )
    return Exchanged(
        replace(principal, session_id=session_id_of(key, token), session_idle=True),
        token,
        expires,
    )


async def revoke_token(session: AsyncSession, key: bytes, token: str) -> list[str]:
    """Revoke one token and every token exchanged from it, at any depth.

    Returns the session ids (``session_id_of``) revoked now (empty when the
    token was unknown or already revoked), so their websockets can be closed.
    Repeated until no live descendant is left: an exchange that locked a
    descendant before this transaction reached it commits its new session
    first (this ``UPDATE`` waits for it), and the next round revokes that one.
    """
    if _TOKEN_RE.fullmatch(token) is None:
        return []
    root = (
        await session.execute(
            select(AuthToken.id).where(AuthToken.token_hash == hash_token(key, token))
        )
    ).scalar_one_or_none()
    if root is None:
        return []
    tree = select(AuthToken.id).where(AuthToken.id == root).cte("tree", recursive=True)
    tree = tree.union_all(select(AuthToken.id).where(AuthToken.parent_id == tree.c.id))
    live = select(AuthToken.id, AuthToken.token_hash).where(
        AuthToken.id.in_(select(tree.c.id)), AuthToken.revoked_at.is_(None)
    )
    revoked: list[str] = []
    while rows := (await session.execute(live)).all():
        await session.execute(
            update(AuthToken)
            .where(AuthToken.id.in_([row_id for row_id, _ in rows]))
            .values(revoked_at=utcnow())
        )
        revoked += [token_hash.hex() for _, token_hash in rows]
    return revoked


async def revoke_principal_tokens(session: AsyncSession, kind: str, principal_id: int) -> int:
    """Revoke every live token of a principal (sign out everywhere, a regenerated login)."""
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
    revoked, has not reached its absolute end and has not been idle for
    longer than its idle timeout (websocket activity moves ``last_seen_at``,
    see ``touch``). One query through the unique ``token_hash`` index; the
    hub calls it for the sessions of its connections (after a broker reset
    and with its safety poll), because a ``close_principal`` control
    message on the broker is at-most-once. Malformed ids are simply not live.
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
        select(
            AuthToken.token_hash,
            AuthToken.revoked_at,
            AuthToken.expires_at,
            AuthToken.last_seen_at,
            AuthToken.idle_seconds,
        ).where(AuthToken.token_hash.in_(list(wanted)))
    )
    now = utcnow()
    return {
        wanted[token_hash]
        for token_hash, revoked_at, expires_at, last_seen, idle in rows
        if revoked_at is None
        and (expires_at is None or expires_at > now)
        and not _idle_expired(last_seen, idle, now)
    }
