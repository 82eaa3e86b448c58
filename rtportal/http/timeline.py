"""HTTP: matter types, moving a matter's phase, and its timeline (docs/threads.md).

``GET /api/v1/firm/matter-types`` (staff), ``POST`` and ``PATCH
/api/v1/firm/matter-types/{id}`` (org admins), ``POST
/api/v1/matters/{ref}/phase`` (staff), ``GET /api/v1/matters/{ref}/timeline``
(members; a client's answer names steps only, and ``blocking``: the open
document requests they see that block the next step). Clients and bots asking for
the types or a move get ``not_found``, as for every staff endpoint.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import membership
from rtportal.documents import blockers
from rtportal.events.unit import Unit
from rtportal.http.catalog import catalog_endpoints
from rtportal.http.context import db_of, ok, principal_of, runtime_of, settings_of
from rtportal.http.directory import body_of, staff_only
from rtportal.http.errors import json_endpoint
from rtportal.timeline import change, types, views

__all__ = ["routes"]

# A type's two lists of 50 named, described items fit with room to spare.
_TYPE_BODY = 256 * 1024
_MOVE_BODY = 1024


# The firm's catalogue's three endpoints (rtportal.http.catalog).
list_types, create_type, patch_type = catalog_endpoints(
    types, "matter_type", "matter_types", _TYPE_BODY
)


@json_endpoint
async def move_phase(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal, "matter")
    # A move writes events: it spends the user's write rate, as a send does.
    runtime_of(request).limits.check_write(principal)
    phase_id = change.phase_id_of(await body_of(request, _MOVE_BODY))
    unit = Unit(db_of(request), request.app.state.hub.publish, settings_of(request))
    async with unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        events = await change.move(unit, principal, matter, phase_id)
        body = await views.timeline_body(unit.session, principal, matter)
    return ok({"timeline": body, "events": [e.seq for e in events]})


@json_endpoint
async def get_timeline(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter, sees = await membership.can_view(session, principal, request.path_params["ref"])
        body = await views.timeline_body(session, principal, matter)
        # The open requests before the next step (docs/documents.md); a client of a
        # firm that hides the timeline is shown no steps, so nothing blocks one.
        shown = principal.is_staff or body["shown"]
        body["blocking"] = (
            await blockers.blocking(session, principal, matter, sees, body["current"])
            if shown
            else []
        )
    return ok({"timeline": body})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/firm/matter-types", list_types, methods=["GET"]),
        Route("/api/v1/firm/matter-types", create_type, methods=["POST"]),
        Route("/api/v1/firm/matter-types/{id:int}", patch_type, methods=["PATCH"]),
        Route("/api/v1/matters/{ref}/phase", move_phase, methods=["POST"]),
        Route("/api/v1/matters/{ref}/timeline", get_timeline, methods=["GET"]),
    ]
