"""Admitting a websocket connection, and the errors it may be refused with.

Both transports (``rtportal.ws.endpoint``, ``rtportal.ws.native``) decide the
same way, before a ``ConnectionCore`` exists: the Origin (``origin_refusal``),
the authentication (``refusal``: the close code and its log line), the
user's connection cap (``admit``). ``as_error`` is where any exception of a
connection becomes an error with a stable code (bugs: ``internal``, logged).
"""

from __future__ import annotations

import logging

from rtportal import closecodes, logs
from rtportal.errors import RtPortalError, Unauthenticated
from rtportal.limits import UserLimits
from rtportal.origins import origin_allowed
from rtportal.principal import Principal
from rtportal.ws.protocol import Close

__all__ = ["admit", "as_error", "origin_refusal", "refusal"]

log = logging.getLogger("rtportal.ws")


def as_error(exc: BaseException, what: str) -> RtPortalError:
    """Map any exception to one with a stable code; bugs become ``internal`` (logged)."""
    if isinstance(exc, RtPortalError):
        return exc
    log.exception("websocket %s failed", what, exc_info=exc)
    return RtPortalError("internal error")


# A failed authentication is refused with a close code (docs/protocol.md).
_REFUSALS = {
    "unauthenticated": closecodes.CLOSE_UNAUTHENTICATED,
    "unavailable": closecodes.CLOSE_TRY_LATER,
}


def refusal(exc: BaseException, conn: str, client: str | None) -> Close:
    """The close that refuses a connection whose authentication raised ``exc``:
    4001 unauthenticated (logged as ``auth_failed``), 1013 unavailable, else
    1011 (logged by ``as_error``); the reason is the error code."""
    if isinstance(exc, Unauthenticated):
        logs.event(
            log,
            "auth_failed",
            logging.WARNING,
            transport="ws",
            conn=conn,
            reason=exc.message,
            client=client,
        )
    err = as_error(exc, "authentication")
    code = _REFUSALS.get(err.code)
    if code is None:
        return Close(closecodes.CLOSE_INTERNAL, "internal error")
    return Close(code, err.code)


def origin_refusal(
    origin: str | None, allowed: tuple[str, ...], conn: str, client: str | None
) -> Close | None:
    """``None`` when ``origin`` may connect; else the close that refuses it (4003),
    logged as ``origin_refused`` with what the operator should set."""
    if origin_allowed(origin, allowed):
        return None
    logs.event(
        log,
        "origin_refused",
        logging.WARNING,
        transport="ws",
        conn=conn,
        origin=origin,
        client=client,
        hint="add it to RTPORTAL_ALLOWED_ORIGINS if it is this portal's address",
    )
    return Close(closecodes.CLOSE_FORBIDDEN_ORIGIN, "forbidden_origin")


def admit(limits: UserLimits, principal: Principal, conn: str, client: str | None) -> bool:
    """Count a new connection of ``principal`` (``limits.connect``); ``False``,
    logged as ``too_many_connections``, when the user is at the cap (close 4029)."""
    if limits.connect(principal):
        return True
    logs.event(
        log,
        "too_many_connections",
        logging.WARNING,
        conn=conn,
        principal=f"{principal.kind}:{principal.id}",
        client=client,
    )
    return False
