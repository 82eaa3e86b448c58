"""What every HTTP handler needs from its request: the runtime's services, the
authenticated caller, the JSON answer and the session cookie.

One place for them, so every capability's route module (``rtportal.http.*``)
authenticates, meters failures and sets cookies the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rtportal.access import csrf
from rtportal.access.sessions import (
    Exchanged,
    cookie_name,
    is_secure,
    sign_in,
    token_from_connection,
)
from rtportal.db import Database
from rtportal.db.models import utcnow
from rtportal.errors import CsrfFailed, ForbiddenOrigin, Unauthenticated
from rtportal.events.audience import viewer_class
from rtportal.limits import address_key
from rtportal.origins import origin_allowed
from rtportal.principal import Principal
from rtportal.runtime import Runtime
from rtportal.settings import Settings

__all__ = [
    "UNSAFE_METHODS",
    "check_csrf",
    "check_origin",
    "clear_session_cookie",
    "client_address",
    "csrf_token",
    "db_of",
    "limit_address",
    "metered",
    "ok",
    "principal_body",
    "principal_of",
    "runtime_of",
    "set_session_cookie",
    "settings_of",
]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A JSON answer that no cache keeps."""
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_address(request: Request) -> str | None:
    """The caller's address as uvicorn sees it (the proxy's unless it is trusted)."""
    return request.client.host if request.client else None


def limit_address(request: Request) -> str:
    """The caller's address as rate limits count it: an IPv6 host by its /64
    (one host holds the whole range), as ``AuthFailures`` does."""
    return address_key(client_address(request)) or "unknown"


def check_origin(request: Request) -> None:
    """Cookie-authenticated writes must come from an allowed Origin (CSRF defence
    in depth behind SameSite=Strict); bearer requests carry no ambient credentials."""
    if request.method not in UNSAFE_METHODS or "authorization" in request.headers:
        return
    if not origin_allowed(request.headers.get("origin"), settings_of(request).allowed_origins):
        raise ForbiddenOrigin("origin not allowed")


@contextmanager
def metered(request: Request, token: str | None) -> Iterator[None]:
    """Meter an authentication with a presented token against the caller's
    address (``rtportal.limits.AuthFailures``): refused ``rate_limited``
    before the lookup while the address has no failure left, and one
    failure spent when the block raises ``Unauthenticated``."""
    if not token:
        yield
        return
    runtime = runtime_of(request)
    address = client_address(request)
    runtime.auth_failures.check(address)
    try:
        yield
    except Unauthenticated:
        runtime.auth_failures.failed(address)
        raise


def check_csrf(request: Request, principal: Principal) -> None:
    """A cookie-authenticated write must carry the session's ``X-CSRF-Token``
    (``rtportal.access.csrf``); bearer requests carry no ambient credentials."""
    if request.method not in UNSAFE_METHODS or "authorization" in request.headers:
        return
    presented = request.headers.get(csrf.HEADER)
    if not csrf.matches(settings_of(request).secret_key, principal.session_id, presented):
        raise CsrfFailed("missing or wrong X-CSRF-Token header")


async def principal_of(request: Request) -> Principal:
    """The authenticated caller (session cookie or bearer token), or ``Unauthenticated``;
    a cookie-authenticated write without its CSRF token is ``csrf_failed``."""
    check_origin(request)
    settings = settings_of(request)
    token = token_from_connection(request, settings)
    with metered(request, token):
        principal = await sign_in(db_of(request), settings.secret_key, token)
    check_csrf(request, principal)
    return principal


def csrf_token(request: Request, principal: Principal) -> str | None:
    """The CSRF token of the caller's session (None without one)."""
    if principal.session_id is None:
        return None
    return csrf.token_for(settings_of(request).secret_key, principal.session_id)


def principal_body(principal: Principal) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": principal.kind,
        "id": principal.id,
        "firm_id": principal.firm_id,
        "name": principal.display_name,
        "viewer": viewer_class(principal),
    }
    if principal.role is not None:
        body["role"] = principal.role
    return body


def _secure(request: Request) -> bool:
    return is_secure(settings_of(request), request.url.scheme)


def set_session_cookie(request: Request, response: Response, made: Exchanged) -> None:
    """The browser session cookie: ``__Host-`` over HTTPS (Secure, Path=/, no
    Domain, as the prefix requires), HttpOnly, SameSite=Strict."""
    secure = _secure(request)
    response.set_cookie(
        cookie_name(secure),
        made.token,
        max_age=max(0, int((made.expires_at - utcnow()).total_seconds())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    secure = _secure(request)
    response.delete_cookie(
        cookie_name(secure), path="/", httponly=True, samesite="strict", secure=secure
    )
