"""HTTP: matters, contacts and applicants (docs/api.md "Matters and contacts").

Staff of the firm only, except ``GET /api/v1/matters/{ref}``, which a
client member reads as a client may. Another firm's matter or contact, and
anything a client or bot asks of contacts, is ``not_found``; a staff
member whose role may not change it gets ``forbidden``.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import jsonlimits
from rtportal.access import directory, invitelist, membership, roles
from rtportal.db.models import Contact, Matter, MatterMember
from rtportal.errors import BadRequest, NotFound
from rtportal.http.bodies import json_object
from rtportal.http.context import db_of, ok, principal_of
from rtportal.http.errors import json_endpoint
from rtportal.principal import Principal

__all__ = ["MAX_CONTACT_PAGE", "body_of", "matter_body", "routes", "staff_only"]

_BODY = 16 * 1024
MAX_CONTACT_PAGE = 100
_NUMBER_RE = re.compile(r"[0-9]{1,15}")


async def body_of(request: Request, limit: int, *, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON object body, whose strings are valid Unicode (no lone surrogate,
    which no database column could store) and integers fit in 64 bits."""
    body = await json_object(request, limit, allow_empty=allow_empty)
    jsonlimits.payload_size(body, limit, "body")
    return body


def staff_only(principal: Principal, what: str = "endpoint") -> None:
    """Clients and bots never see the firm's directory: ``not_found`` for them."""
    if principal.kind != "staff":
        raise NotFound(f"no such {what}")


def _number(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if _NUMBER_RE.fullmatch(raw) is None or not 0 <= int(raw) <= maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}", field=name)
    return int(raw)


async def matter_body(
    session: Any, principal: Principal, matter: Matter, portal: bool | None = None
) -> dict[str, Any]:
    """A matter as ``principal`` may see it: staff get everything, a client the
    reference, title and (when their invite allows) the other applicants' names."""
    body: dict[str, Any] = {"ref": matter.reference, "title": matter.title}
    if principal.is_staff:
        # A client never sees a seq (docs/protocol.md, cursor tokens): it
        # opens a matter on its latest page (history ``before=end``).
        body["head"] = matter.last_seq
    applicants = await directory.applicants_of(session, matter.id)
    if principal.kind == "staff":
        if portal is None:
            portal = matter.id in await invitelist.portal_on(session, [matter.id])
        body.update(
            matter_type=matter.matter_type,
            responsible_staff_id=matter.responsible_staff_id,
            portal="on" if portal else "off",
            applicants=[{"contact_id": c.id, "name": c.display_name} for c in applicants],
        )
        return body
    if principal.kind == "contact":
        member = (
            (
                await session.execute(
                    select(MatterMember).where(
                        MatterMember.matter_id == matter.id,
                        MatterMember.principal_kind == "contact",
                        MatterMember.principal_id == principal.id,
                        membership.live(),
                    )
                )
            )
            .scalars()
            .first()
        )
        if member is not None and member.see_applicants:
            body["applicants"] = [{"name": c.display_name} for c in applicants]
    return body


@json_endpoint
async def create_matter(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "matter.create")
    data = directory.parse_matter(await body_of(request, _BODY))
    async with db_of(request).write() as session:
        matter = await directory.create_matter(session, principal.firm_id, data)
        body = await matter_body(session, principal, matter, portal=False)
    return ok({"matter": body}, status=201)


@json_endpoint
async def get_matter(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        body = await matter_body(session, principal, matter)
    return ok({"matter": body})


@json_endpoint
async def patch_matter(request: Request) -> Response:
    principal = await principal_of(request)
    data = directory.parse_matter(await body_of(request, _BODY), partial=True)
    async with db_of(request).write() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        roles.require(principal, "matter.edit", matter)
        await directory.update_matter(session, matter, data)
        body = await matter_body(session, principal, matter)
    return ok({"matter": body})


@json_endpoint
async def list_contacts(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    query = request.query_params.get("q", "")
    if len(query) > directory.MAX_QUERY:
        raise BadRequest(f"q is over {directory.MAX_QUERY} characters", field="q")
    limit = _number(request.query_params.get("limit"), "limit", 50, MAX_CONTACT_PAGE) or 1
    after = _number(request.query_params.get("after"), "after", 0, directory.MAX_ID)
    async with db_of(request).read() as session:
        found = await directory.find_contacts(session, principal.firm_id, query, limit, after)
        contacts = [await directory.contact_body(session, c) for c in found]
    nxt = contacts[-1]["id"] if len(contacts) == limit else None
    return ok({"contacts": contacts, "next": nxt})


@json_endpoint
async def create_contact(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    roles.require(principal, "contact.edit")
    data = directory.parse_contact(await body_of(request, _BODY))
    async with db_of(request).write() as session:
        contact = await directory.create_contact(session, principal.firm_id, data)
        body = await directory.contact_body(session, contact)
    return ok({"contact": body}, status=201)


async def _contact(session: Any, principal: Principal, request: Request) -> Contact:
    staff_only(principal, "contact")
    return await directory.get_contact(session, principal.firm_id, request.path_params["id"])


@json_endpoint
async def get_contact(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        contact = await _contact(session, principal, request)
        body = await directory.contact_body(session, contact)
    return ok({"contact": body})


@json_endpoint
async def patch_contact(request: Request) -> Response:
    principal = await principal_of(request)
    data = directory.parse_contact(await body_of(request, _BODY), partial=True)
    async with db_of(request).write() as session:
        contact = await _contact(session, principal, request)
        roles.require(principal, "contact.edit")
        await directory.update_contact(session, contact, data)
        body = await directory.contact_body(session, contact)
    return ok({"contact": body})


async def _applicant(request: Request, link: bool) -> Response:
    principal = await principal_of(request)
    async with db_of(request).write() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        staff_only(principal, "matter")
        contact = await directory.get_contact(
            session, principal.firm_id, request.path_params["contact_id"]
        )
        roles.require(principal, "contact.edit", matter)
        if link:
            changed = await directory.link_applicant(session, matter, contact)
        else:
            changed = await directory.unlink_applicant(session, matter, contact)
        body = await matter_body(session, principal, matter)
    return ok({"changed": changed, "matter": body})


@json_endpoint
async def put_applicant(request: Request) -> Response:
    return await _applicant(request, link=True)


@json_endpoint
async def delete_applicant(request: Request) -> Response:
    return await _applicant(request, link=False)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/matters", create_matter, methods=["POST"]),
        Route("/api/v1/matters/{ref}", get_matter, methods=["GET"]),
        Route("/api/v1/matters/{ref}", patch_matter, methods=["PATCH"]),
        Route("/api/v1/contacts", list_contacts, methods=["GET"]),
        Route("/api/v1/contacts", create_contact, methods=["POST"]),
        Route("/api/v1/contacts/{id:int}", get_contact, methods=["GET"]),
        Route("/api/v1/contacts/{id:int}", patch_contact, methods=["PATCH"]),
        Route("/api/v1/matters/{ref}/applicants/{contact_id:int}", put_applicant, methods=["PUT"]),
        Route(
            "/api/v1/matters/{ref}/applicants/{contact_id:int}",
            delete_applicant,
            methods=["DELETE"],
        ),
    ]
