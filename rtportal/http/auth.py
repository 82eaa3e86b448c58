"""Password sign-in over HTTP: prelogin, signin, me, change password.

Reference: docs/api.md "Sign-in"; the model: docs/access.md.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import base64url
from rtportal.access import accounts, audit, passwords, totp
from rtportal.access.credentials import LOGIN_SECRET_BYTES, Kdf, credential_of, set_login
from rtportal.access.sessions import issue_session, load_principal
from rtportal.closecodes import CLOSE_REVOKED
from rtportal.db.models import Credential, Firm
from rtportal.errors import BadRequest, InvalidCredentials, NotFound, SecondFactorRequired
from rtportal.http.bodies import json_object
from rtportal.http.context import (
    check_origin,
    client_address,
    csrf_token,
    db_of,
    limit_address,
    ok,
    principal_body,
    principal_of,
    runtime_of,
    set_session_cookie,
    settings_of,
)
from rtportal.http.errors import json_endpoint
from rtportal.notify import outbox
from rtportal.principal import Principal

__all__ = ["PASSWORD_LIMIT", "PASSWORD_WINDOW", "routes", "secret_field", "signed_in", "text_field"]

_SMALL_BODY = 4096
_KEY_BLOB_MAX = 65_536  # an encrypted key backup or a public key bundle
# Password changes per account in PASSWORD_WINDOW seconds.
PASSWORD_LIMIT = 5
PASSWORD_WINDOW = 15 * 60


def text_field(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    """A string field of at most ``limit`` characters (stripped); ``bad_request`` else."""
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be a non-empty string of at most {limit} characters")
    return value.strip()


def secret_field(body: dict[str, Any], name: str) -> bytes:
    raw = base64url.decode(body.get(name), LOGIN_SECRET_BYTES, name)
    if raw is None or len(raw) != LOGIN_SECRET_BYTES:
        raise BadRequest(f"{name} must be 32 bytes in unpadded base64url")
    return raw


def _firm_slug(body: dict[str, Any]) -> str | None:
    slug = body.get("firm")
    if slug is None or slug == "":
        return None
    if not isinstance(slug, str) or len(slug) > 64:
        raise BadRequest("firm must be the firm's slug (a string)")
    return slug


def _b64_or_none(data: bytes | None) -> str | None:
    return base64url.encode(data) if data is not None else None


async def signed_in(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    credential: Credential,
    recovery: list[str] | None,
) -> Response:
    """A new session for ``principal`` (in the caller's write transaction), its
    audit entry, and the 201 answer with the session cookie."""
    settings = settings_of(request)
    made = await issue_session(session, settings, principal)
    await audit.record(
        session,
        firm_id=principal.firm_id,
        action="signin.ok",
        actor=principal,
        address=client_address(request),
    )
    body: dict[str, Any] = {
        "principal": principal_body(made.principal),
        "csrf_token": csrf_token(request, made.principal),
        "key_backup": _b64_or_none(credential.key_backup),
        "public_keys": _b64_or_none(credential.public_keys),
    }
    if recovery is not None:
        body["recovery_codes"] = recovery
    response = ok(body, status=201)
    set_session_cookie(request, response, made)
    return response


@json_endpoint
async def prelogin(request: Request) -> Response:
    """The Argon2id salt and parameters of (firm, email); the same shape for nobody."""
    body = await json_object(request, _SMALL_BODY)
    slug = _firm_slug(body)
    email = text_field(body, "email", 320).lower()
    async with db_of(request).read() as session:
        found = await accounts.lookup(session, slug, email)
    kdf = accounts.prelogin_kdf(settings_of(request), slug, email, found)
    return ok({"kdf": kdf.to_json()})


async def _failed(request: Request, firm: Firm | None, email: str, why: str) -> None:
    if firm is None:
        return
    async with db_of(request).write() as session:
        await audit.record(
            session,
            firm_id=firm.id,
            action="signin.failed",
            address=client_address(request),
            detail={"email": email, "reason": why},
        )


@json_endpoint
async def signin(request: Request) -> Response:
    """Email + login secret (+ TOTP) -> a session cookie (docs/api.md "Sign-in")."""
    # Login CSRF: a foreign page must not sign a visitor in to an account of its choosing.
    check_origin(request)
    settings = settings_of(request)
    runtime = runtime_of(request)
    body = await json_object(request, _SMALL_BODY)
    slug = _firm_slug(body)
    email = text_field(body, "email", 320).lower()
    secret = secret_field(body, "login_secret")
    code = body.get("totp")
    if code is not None and not isinstance(code, str):
        raise BadRequest("totp must be a string")
    window = settings.signin_window
    address = limit_address(request)
    await runtime.limiter.hit(
        "signin", f"addr|{address}", limit=settings.signin_address_limit, window=window
    )
    async with db_of(request).read() as session:
        found = await accounts.lookup(session, slug, email)
    # One count per account however the firm is named (or left out).
    account = f"acct|{accounts.firm_key(slug, found)}|{email}"
    await runtime.limiter.hit("signin", account, limit=settings.signin_account_limit, window=window)
    try:
        rehash = await accounts.verify_secret(found, secret)
    except InvalidCredentials:
        await _failed(request, found.firm, email, "password")
        raise
    assert found.firm is not None and found.credential is not None
    firm, credential_id = found.firm, found.credential.id
    why = "gone"  # the person was removed or disabled since the lookup
    emailed: int | None = None  # an enrolment key sent instead of a session
    try:
        async with db_of(request).write() as session:
            await accounts.lock_firm(session, firm.id)
            credential = await session.get(Credential, credential_id)
            if credential is None:
                raise InvalidCredentials(accounts.INVALID)
            if rehash is not None:
                credential.verifier = rehash
            try:
                principal = await load_principal(
                    session, credential.principal_kind, credential.principal_id
                )
            except NotFound:
                raise InvalidCredentials(accounts.INVALID) from None
            why = "second_factor"
            try:
                recovery = await totp.check_second_factor(
                    session,
                    settings,
                    runtime.limiter,
                    credential,
                    required=totp.required_for(firm, principal.kind, principal.role),
                    code=code,
                )
            except SecondFactorRequired as needed:
                if not (needed.details.get("enrol") and body.get("totp_setup") is True):
                    raise
                emailed = await _start_enrolment(request, session, credential, firm)
            else:
                response = await signed_in(request, session, principal, credential, recovery)
    except InvalidCredentials:
        await _failed(request, firm, email, why)
        raise
    if emailed is not None:
        await runtime.notifier.deliver([emailed])
        return ok({"totp_setup": {"emailed": True}})
    await runtime.limiter.reset("signin", account)
    return response


async def _start_enrolment(
    request: Request, session: AsyncSession, credential: Credential, firm: Firm
) -> int:
    """Begin the TOTP enrolment an account must make, at sign-in: the new key goes
    to the account's email, never into the answer, so knowing the password is not
    enough to enrol (the mailbox proves the person, as the setup link did). No
    session yet: the next sign-in with a code from the key confirms it. The
    outbox id, delivered after the commit."""
    started = await totp.start_enrolment(session, settings_of(request), credential)
    message = await outbox.queue(
        session,
        runtime_of(request).notifier,
        firm_id=firm.id,
        channel="email",
        recipient=credential.email,
        subject=f"Your authenticator key for {firm.name}",
        body=(
            f"To finish signing in to {firm.name}, add this key to your authenticator "
            f"app (or open the link on your phone), then sign in with the app's code.\n\n"
            f"Key: {started.secret}\n\n{started.uri}\n\n"
            "If you did not just sign in, someone knows your password: tell your firm."
        ),
    )
    return message.id


@json_endpoint
async def me(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        firm = await session.get(Firm, principal.firm_id)
    body: dict[str, Any] = {
        "principal": principal_body(principal),
        "csrf_token": csrf_token(request, principal),
    }
    if firm is not None:
        body["firm"] = {"name": firm.name, "slug": firm.slug}
    return ok(body)


@json_endpoint
async def change_password(request: Request) -> Response:
    """The caller's new password; their other sessions end (docs/api.md)."""
    principal = await principal_of(request)
    settings = settings_of(request)
    runtime = runtime_of(request)
    body = await json_object(request, _SMALL_BODY + 2 * _KEY_BLOB_MAX)
    await runtime.limiter.hit(
        "password",
        f"{principal.kind}|{principal.id}",
        limit=PASSWORD_LIMIT,
        window=PASSWORD_WINDOW,
    )
    current = secret_field(body, "current_login_secret")
    new_secret = secret_field(body, "login_secret")
    kdf = Kdf.parse(body.get("kdf")).check(settings)
    key_backup = base64url.decode(body.get("key_backup"), _KEY_BLOB_MAX, "key_backup")
    async with db_of(request).read() as session:
        credential = await credential_of(session, principal.kind, principal.id)
        verifier = credential.verifier if credential is not None else None
    if not (await passwords.hashing().verify(verifier, current)).ok or credential is None:
        raise InvalidCredentials(accounts.INVALID)
    async with db_of(request).write() as session:
        await accounts.lock_firm(session, principal.firm_id)
        row = await credential_of(session, principal.kind, principal.id)
        if row is None:
            raise InvalidCredentials(accounts.INVALID)
        await set_login(
            session,
            firm_id=row.firm_id,
            principal_kind=row.principal_kind,
            principal_id=row.principal_id,
            email=row.email,
            kdf=kdf,
            login_secret=new_secret,
            key_backup=key_backup if key_backup is not None else row.key_backup,
            public_keys=row.public_keys,
        )
        revoked = await accounts.revoke_other_tokens(
            session, principal.kind, principal.id, principal.session_id
        )
        await audit.record(
            session,
            firm_id=principal.firm_id,
            action="password.changed",
            actor=principal,
            address=client_address(request),
            detail={"sessions_revoked": len(revoked)},
        )
    if revoked:
        await runtime.hub.close_principal(
            principal.kind, principal.id, CLOSE_REVOKED, session_ids=revoked
        )
    return ok({"ok": True, "sessions_revoked": len(revoked)})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/prelogin", prelogin, methods=["POST"]),
        Route("/api/v1/signin", signin, methods=["POST"]),
        Route("/api/v1/me", me, methods=["GET"]),
        Route("/api/v1/me/password", change_password, methods=["POST"]),
    ]
