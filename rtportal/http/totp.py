"""The signed-in user's second factor: ``/api/v1/me/totp`` (start, confirm, remove).

``POST /api/v1/me/totp`` starts an enrolment (``{secret, uri}``),
``POST /api/v1/me/totp/confirm {code}`` confirms it with a first code
(``{recovery_codes}``, shown once), ``DELETE /api/v1/me/totp {code}``
removes it (not for org admins, nor staff of a firm that requires it).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import totp
from rtportal.access.credentials import credential_of
from rtportal.db.models import Credential, Firm
from rtportal.errors import BadRequest, NotFound, PreconditionFailed
from rtportal.http.bodies import json_object
from rtportal.http.context import client_address, db_of, ok, principal_of, runtime_of
from rtportal.http.errors import json_endpoint
from rtportal.principal import Principal

__all__ = ["routes"]

_BODY_MAX = 1024
_CODE_MAX = 32


async def _credential(session: AsyncSession, principal: Principal) -> Credential:
    row = await credential_of(session, principal.kind, principal.id)
    if row is None or row.firm_id != principal.firm_id:
        raise PreconditionFailed("no_login", "this account has no password sign-in")
    return row


async def _code(request: Request) -> str:
    body = await json_object(request, _BODY_MAX)
    code = body.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > _CODE_MAX:
        raise BadRequest("code must be the 6-digit code or a recovery code")
    return code


@json_endpoint
async def start(request: Request) -> Response:
    principal = await principal_of(request)
    settings = runtime_of(request).settings
    async with db_of(request).write() as session:
        credential = await _credential(session, principal)
        enrolment = await totp.start_enrolment(session, settings, credential)
    return ok({"secret": enrolment.secret, "uri": enrolment.uri})


@json_endpoint
async def confirm(request: Request) -> Response:
    principal = await principal_of(request)
    code = await _code(request)
    runtime = runtime_of(request)
    async with db_of(request).write() as session:
        credential = await _credential(session, principal)
        if credential.totp_enabled_at is not None:
            raise PreconditionFailed("totp_already_enabled", "a second factor is already enrolled")
        if credential.totp_secret is None:
            raise PreconditionFailed("totp_not_started", "start an enrolment first")
        codes = await totp.check_second_factor(
            session, runtime.settings, runtime.limiter, credential, required=True, code=code
        )
    return ok({"recovery_codes": codes or []})


@json_endpoint
async def remove(request: Request) -> Response:
    principal = await principal_of(request)
    code = await _code(request)
    runtime = runtime_of(request)
    async with db_of(request).write() as session:
        credential = await _credential(session, principal)
        firm = await session.get(Firm, principal.firm_id)
        if firm is None:
            raise NotFound("no such firm")
        await totp.remove(
            session,
            runtime.settings,
            runtime.limiter,
            credential,
            firm_requires=totp.required_for(firm, principal.kind, principal.role),
            code=code,
            address=client_address(request),
        )
    return ok({"totp": False})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/me/totp", start, methods=["POST"]),
        Route("/api/v1/me/totp", remove, methods=["DELETE"]),
        Route("/api/v1/me/totp/confirm", confirm, methods=["POST"]),
    ]
