"""``GET`` / ``PATCH /api/v1/firm``: the caller's firm and its settings (org admins change them)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import firms, roles
from rtportal.closecodes import CLOSE_REVOKED
from rtportal.db.models import Firm
from rtportal.errors import NotFound
from rtportal.http.bodies import json_object
from rtportal.http.context import client_address, db_of, ok, principal_of
from rtportal.http.errors import json_endpoint

__all__ = ["routes"]

# Twenty disclosure labels of 200 characters fit: 4 bytes each at most as UTF-8,
# 12 as JSON escapes (an emoji's two ``\u`` escapes), which a client may send.
_BODY = 64 * 1024


@json_endpoint
async def get_firm(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "firm.manage")
    async with db_of(request).read() as session:
        firm = await session.get(Firm, principal.firm_id)
        if firm is None:
            raise NotFound("no such firm")
        return ok({"firm": firms.firm_body(firm)})


@json_endpoint
async def patch_firm(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "firm.manage")
    body = await json_object(request, _BODY)
    async with db_of(request).write() as session:
        updated = await firms.update_settings(session, principal, body, client_address(request))
        answer = firms.firm_body(updated.firm)
    for user_id in updated.ended:  # after commit, on every worker
        await request.app.state.hub.close_principal("staff", user_id, CLOSE_REVOKED)
    return ok({"firm": answer})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/firm", get_firm, methods=["GET"]),
        Route("/api/v1/firm", patch_firm, methods=["PATCH"]),
    ]
