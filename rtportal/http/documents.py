"""The document checklist over HTTP (docs/documents.md).

Firm configuration: ``GET``/``POST /api/v1/firm/document-types``, ``PATCH
/api/v1/firm/document-types/{id}``, ``GET``/``PUT
/api/v1/firm/matter-types/{id}/documents`` (staff read, org admins change).
A matter's checklist: ``GET /api/v1/matters/{ref}/documents`` (members:
clients see what is requested of them or shared), ``POST`` to add
documents, ``POST .../documents/request`` (add to portal), ``POST
.../documents/{item}/accept``, ``/reject``, ``/share`` (staff),
``POST .../documents/{item}/upload`` (the clients it is requested of, and
staff). Contacts and bots asking for staff endpoints get ``not_found``,
before any body is read; so does every caller for a matter or item they
may not see.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import base64url
from rtportal.access import membership, roles
from rtportal.db.models import Matter
from rtportal.documents import decisions, defaults, items, requests, shares, types, uploads
from rtportal.documents.changes import Change
from rtportal.documents.rows import MAX_BLOB, MAX_REASON, fields, file_ids, valid_ref
from rtportal.errors import BadRequest, NotFound
from rtportal.events.cursor import CursorCodec
from rtportal.events.unit import Unit
from rtportal.files.quota import lock_matter
from rtportal.http.catalog import catalog_endpoints
from rtportal.http.context import db_of, ok, principal_of, runtime_of, settings_of
from rtportal.http.directory import body_of, staff_only
from rtportal.http.errors import json_endpoint
from rtportal.principal import Principal
from rtportal.reviews.live import ReviewCounts
from rtportal.timeline.types import get_type

__all__ = ["routes"]

# A label of 200 and a description of 2,000 characters, which are code points:
# up to 12 bytes each in the body (an emoji as two JSON escapes), 4 when parsed.
_TYPE_BODY = 32 * 1024
_DEFAULTS_BODY = 8 * 1024  # 50 entries
_SMALL_BODY = 4 * 1024  # 50 ids
# An envelope as base64url plus the file ids and field names.
_UPLOAD_BODY = (MAX_BLOB * 4) // 3 + 4 * 1024
_REASON_BODY = (MAX_REASON * 4) // 3 + 1024


def _unit(request: Request) -> Unit:
    return Unit(db_of(request), request.app.state.hub.publish, settings_of(request))


def _item_ref(request: Request) -> str:
    ref = request.path_params["item"]
    if not valid_ref(ref):
        raise NotFound("no such document", reason="no_such_document")
    return str(ref)


def _blob(body: dict[str, Any], name: str, limit: int) -> bytes:
    value = base64url.decode(body.get(name), limit, name)
    if not value:
        raise BadRequest(f"{name}: an envelope is required", reason="blob_required", field=name)
    return value


def _pushed(request: Request, change: Change) -> None:
    """Committed: the live counts of the reviewers whose reviews the change queued or
    closed."""
    counts: ReviewCounts | None = getattr(request.app.state, "review_counts", None)
    if counts is not None:
        for queued in change.queued:
            counts.touch(queued)


def _cursors(request: Request) -> CursorCodec:
    """How the caller knows events (an item's envelopes carry their positions)."""
    return runtime_of(request).frames.cursors


async def _answer(
    unit: Unit, principal: Principal, matter: Matter, change: Change, cursors: CursorCodec
) -> Response:
    bodies = await items.item_bodies(unit.session, principal, matter, change.items, cursors)
    answer: dict[str, Any] = {"documents": bodies, "changed": change.changed}
    if principal.is_staff:
        answer["events"] = [e.seq for e in change.events]
    return ok(answer)


# --- the firm's document types and defaults ---------------------------------------------


# The firm's catalogue's three endpoints (rtportal.http.catalog).
list_types, create_type, patch_type = catalog_endpoints(
    types, "document_type", "document_types", _TYPE_BODY
)


@json_endpoint
async def get_defaults(request: Request) -> Response:
    principal = await principal_of(request)
    staff_only(principal)
    async with db_of(request).read() as session:
        matter_type = await get_type(session, principal.firm_id, request.path_params["id"])
        return ok(await defaults.defaults_body(session, matter_type))


@json_endpoint
async def put_defaults(request: Request) -> Response:
    principal = await principal_of(request)
    roles.require(principal, "firm.manage")
    wanted = defaults.parse_defaults(await body_of(request, _DEFAULTS_BODY))
    async with db_of(request).write() as session:
        matter_type = await get_type(session, principal.firm_id, request.path_params["id"])
        await defaults.replace_defaults(session, matter_type, wanted)
        body = await defaults.defaults_body(session, matter_type)
    return ok(body)


# --- a matter's checklist ---------------------------------------------------------------


@json_endpoint
async def get_checklist(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter, sees = await membership.can_view(session, principal, request.path_params["ref"])
        body = await items.checklist(session, principal, matter, sees, _cursors(request))
    return ok({"documents": body})


async def _staff_matter(request: Request) -> Principal:
    """A staff member of a matter they may reach, checked before the body is read."""
    principal = await principal_of(request)
    staff_only(principal, "matter")
    async with db_of(request).read() as session:
        await membership.can_access(session, principal, request.path_params["ref"])
    # A change writes events: it spends the user's write rate, as a send does.
    runtime_of(request).limits.check_write(principal)
    return principal


@json_endpoint
async def add_documents(request: Request) -> Response:
    principal = await _staff_matter(request)
    wanted, step = items.parse_add(await body_of(request, _SMALL_BODY))
    async with _unit(request) as unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        await lock_matter(unit.session, matter.id)
        added = await items.add_items(unit.session, principal, matter, wanted, step)
        bodies = await items.item_bodies(unit.session, principal, matter, added, _cursors(request))
    return ok({"documents": bodies}, status=201)


@json_endpoint
async def request_documents(request: Request) -> Response:
    principal = await _staff_matter(request)
    wanted, to = requests.parse_request(await body_of(request, _SMALL_BODY))
    async with _unit(request) as unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        change = await requests.request_items(unit, principal, matter, wanted, to)
        return await _answer(unit, principal, matter, change, _cursors(request))


@json_endpoint
async def accept_document(request: Request) -> Response:
    principal = await _staff_matter(request)
    ref = _item_ref(request)
    fields(await body_of(request, _SMALL_BODY, allow_empty=True), frozenset())
    async with _unit(request) as unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        change = await decisions.decide(unit, principal, matter, ref, accept=True)
        answer = await _answer(unit, principal, matter, change, _cursors(request))
    _pushed(request, change)
    return answer


@json_endpoint
async def reject_document(request: Request) -> Response:
    principal = await _staff_matter(request)
    ref = _item_ref(request)
    body = await body_of(request, _REASON_BODY)
    fields(body, frozenset({"reason"}))
    reason = _blob(body, "reason", MAX_REASON)
    async with _unit(request) as unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        change = await decisions.decide(unit, principal, matter, ref, accept=False, reason=reason)
        answer = await _answer(unit, principal, matter, change, _cursors(request))
    _pushed(request, change)
    return answer


def _files_body(body: dict[str, Any]) -> tuple[list[str], bytes]:
    fields(body, frozenset({"files", "blob"}))
    return file_ids(body.get("files")), _blob(body, "blob", MAX_BLOB)


@json_endpoint
async def share_document(request: Request) -> Response:
    principal = await _staff_matter(request)
    ref = _item_ref(request)
    files, blob = _files_body(await body_of(request, _UPLOAD_BODY))
    async with _unit(request) as unit:
        matter = await membership.can_access(unit.session, principal, request.path_params["ref"])
        change = await shares.share(unit, principal, matter, ref, files, blob)
        return await _answer(unit, principal, matter, change, _cursors(request))


@json_endpoint
async def upload_document(request: Request) -> Response:
    """A client's (or a staff member's) upload against a request: files already
    uploaded through ``POST .../files``, named with their descriptors' envelope."""
    principal = await principal_of(request)
    if principal.kind == "bot":
        raise NotFound("no such matter")
    ref = request.path_params["ref"]
    async with db_of(request).read() as session:
        await membership.can_view(session, principal, ref)
    runtime_of(request).limits.check_write(principal)
    item = _item_ref(request)
    files, blob = _files_body(await body_of(request, _UPLOAD_BODY))
    async with _unit(request) as unit:
        matter, sees = await membership.can_view(unit.session, principal, ref)
        change = await uploads.submit(unit, principal, matter, sees, item, files, blob)
        answer = await _answer(unit, principal, matter, change, _cursors(request))
    _pushed(request, change)
    return answer


def routes() -> list[BaseRoute]:
    base = "/api/v1/matters/{ref}/documents"
    return [
        Route("/api/v1/firm/document-types", list_types, methods=["GET"]),
        Route("/api/v1/firm/document-types", create_type, methods=["POST"]),
        Route("/api/v1/firm/document-types/{id:int}", patch_type, methods=["PATCH"]),
        Route("/api/v1/firm/matter-types/{id:int}/documents", get_defaults, methods=["GET"]),
        Route("/api/v1/firm/matter-types/{id:int}/documents", put_defaults, methods=["PUT"]),
        Route(base, get_checklist, methods=["GET"]),
        Route(base, add_documents, methods=["POST"]),
        Route(f"{base}/request", request_documents, methods=["POST"]),
        Route(base + "/{item}/upload", upload_document, methods=["POST"]),
        Route(base + "/{item}/accept", accept_document, methods=["POST"]),
        Route(base + "/{item}/reject", reject_document, methods=["POST"]),
        Route(base + "/{item}/share", share_document, methods=["POST"]),
    ]
