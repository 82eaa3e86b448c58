"""The HTTP error boundary: every failure of an endpoint becomes the JSON error shape.

``json_endpoint`` wraps each endpoint: a path or query string holding U+0000
is refused (``refuse_nul``); an ``RtPortalError`` becomes
``{"error": {"code", "message"}}`` with its HTTP status; anything else is a
bug and becomes ``internal`` (500) without details (the traceback goes to
the log only). Backend failures arrive here already mapped to
``Unavailable`` by ``rtportal.db.Database`` (the database) and the broker,
so nothing backend-specific is caught here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rtportal import logs
from rtportal.errors import (
    BadRequest,
    ForbiddenOrigin,
    NotFound,
    RateLimited,
    RtPortalError,
    Unauthenticated,
    Unavailable,
)
from rtportal.http.requestid import request_id

__all__ = ["Endpoint", "error_response", "exception_handlers", "json_endpoint", "refuse_nul"]

log = logging.getLogger("rtportal.http.routes")

Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(error: RtPortalError, status: int | None = None) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="rtportal"'
    retry_after = error.details.get("retry_after")
    if isinstance(error, RateLimited) and isinstance(retry_after, (int, float)):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))  # whole seconds
    return JSONResponse(
        {"error": error.to_dict()}, status_code=status or error.http_status, headers=headers
    )


def refuse_nul(request: Request) -> None:
    """``bad_request`` for a path or query string holding U+0000.

    No text column (PostgreSQL's text cannot hold it) nor anything the server
    names takes it, and a query parameter goes to statements as it is (the
    directory's search was a server error on PostgreSQL): refused here, for
    every endpoint, as ``jsonlimits.loads`` refuses it in bodies and frames.
    In the raw query string it can only be the escape ``%00``; the path is
    decoded already."""
    query = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query or "\x00" in request.scope["path"]:
        raise BadRequest("the URL holds U+0000 (NUL)")


def json_endpoint(fn: Endpoint) -> Endpoint:
    """Map every failure of ``fn`` to the JSON error shape; never leak internals."""

    async def wrapper(request: Request) -> Response:
        try:
            refuse_nul(request)
            return await fn(request)
        except RtPortalError as exc:
            _log_refusal(request, exc)
            return error_response(exc)
        except Exception:
            log.exception(
                "internal error in %s %s (request %s)",
                request.method,
                request.url.path,
                request_id(request),
            )
            return error_response(RtPortalError("internal error"))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _log_refusal(request: Request, exc: RtPortalError) -> None:
    """An operator's log line for refused origins, failed authentication and
    rate limiting (ids, addresses and reasons only: never a token or body)."""
    if isinstance(exc, ForbiddenOrigin):
        name = "origin_refused"
        extra: dict[str, object] = {"origin": request.headers.get("origin")}
    elif isinstance(exc, Unauthenticated):
        name, extra = "auth_failed", {"reason": exc.message}
    elif isinstance(exc, RateLimited):
        name, extra = "rate_limited", {}
    elif isinstance(exc, Unavailable):
        name, extra = "backend_unavailable", {"reason": exc.message, "cause": _cause(exc)}
    else:
        return
    client = request.client
    logs.event(
        log,
        name,
        logging.WARNING,
        transport="http",
        request=request_id(request),
        method=request.method,
        path=request.url.path,
        client=client.host if client else None,
        **extra,
    )


def _cause(exc: BaseException) -> str | None:
    """The backend's own words for an ``Unavailable`` (the caller gets only
    "unavailable"; the operator needs which error, from which library). The
    driver's error, not SQLAlchemy's text: that quotes the statement's
    parameters, which may hold token hashes."""
    cause = exc.__cause__
    if cause is None:
        return None
    driver = getattr(cause, "orig", None) or cause
    kind = f"{type(driver).__module__}.{type(driver).__qualname__}"
    return f"{type(cause).__name__}/{kind}: {driver}"[:300]


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in the JSON error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(NotFound("no such endpoint"))
    if status == 405:
        return error_response(BadRequest("method not allowed"), status=405)
    return error_response(RtPortalError("internal error"), status=status)


exception_handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    HTTPException: _http_exception,
}
