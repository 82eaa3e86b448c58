"""Tags over HTTP (docs/threads.md "Tags"): the firm's tags and tagging an item.

``POST /api/v1/firm/tags``, ``GET /api/v1/firm/tags``,
``POST /api/v1/firm/tags/{tag}/archive``, ``POST
/api/v1/matters/{ref}/items/{item}/tags``. Staff only (bots also read the
list); a contact gets ``not_found`` for all of it, before its body is read.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import base64url
from rtportal.db.models import Tag
from rtportal.errors import BadRequest
from rtportal.events.audience import view_for
from rtportal.events.event import iso_time
from rtportal.http.context import db_of, ok, principal_of, runtime_of, settings_of
from rtportal.http.directory import body_of
from rtportal.http.errors import json_endpoint
from rtportal.threads import tags

__all__ = ["routes"]

# A tag id, a name envelope of at most 1 KiB as base64url, the field names.
_BODY = 2048


def _tag_body(row: Tag) -> dict[str, Any]:
    return {
        "tag": row.tag,
        "name_blob": base64url.encode(row.name_blob),
        "created_by": row.created_by,
        "created_at": iso_time(row.created_at),
        "archived_at": None if row.archived_at is None else iso_time(row.archived_at),
    }


def _fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")


@json_endpoint
async def create_tag(request: Request) -> Response:
    principal = await principal_of(request)
    tags.require_staff(principal)
    body = await body_of(request, _BODY)
    _fields(body, frozenset({"tag", "name_blob"}))
    name_blob = base64url.decode(body.get("name_blob"), tags.NAME_BLOB_MAX, "name_blob")
    if name_blob is None:
        raise BadRequest("name_blob: required", field="name_blob")
    async with db_of(request).write() as session:
        row, created = await tags.create_tag(session, principal, body.get("tag"), name_blob)
        answer = _tag_body(row)
    return ok({"tag": answer, "created": created}, status=201 if created else 200)


@json_endpoint
async def list_tags(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        rows = await tags.list_tags(session, principal)
        return ok({"tags": [_tag_body(r) for r in rows]})


@json_endpoint
async def archive_tag(request: Request) -> Response:
    principal = await principal_of(request)
    tags.require_staff(principal)
    async with db_of(request).write() as session:
        row = await tags.archive_tag(session, principal, request.path_params["tag"])
        answer = _tag_body(row)
    return ok({"tag": answer})


@json_endpoint
async def tag_item(request: Request) -> Response:
    """Add (or, ``removed``, take off) a tag on an item; a change that changes
    nothing answers 200 with ``changed: false`` and writes no event."""
    principal = await principal_of(request)
    tags.require_staff(principal)
    runtime_of(request).limits.check_write(principal)
    body = await body_of(request, _BODY)
    _fields(body, frozenset({"tag", "removed"}))
    removed = body.get("removed", False)
    if not isinstance(removed, bool):
        raise BadRequest("removed must be true or false", field="removed")
    change = await tags.set_item_tag(
        db_of(request),
        request.app.state.hub.publish,
        settings_of(request),
        principal,
        request.path_params["ref"],
        request.path_params["item"],
        body.get("tag"),
        removed,
    )
    event = None if change.event is None else view_for(change.event, principal)
    return ok(
        {
            "item": change.item,
            "tag": change.tag,
            "tagged": change.tagged,
            "changed": change.event is not None,
            "event": event,
        },
        status=201 if change.event is not None else 200,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/firm/tags", create_tag, methods=["POST"]),
        Route("/api/v1/firm/tags", list_tags, methods=["GET"]),
        Route("/api/v1/firm/tags/{tag}/archive", archive_tag, methods=["POST"]),
        Route("/api/v1/matters/{ref}/items/{item}/tags", tag_item, methods=["POST"]),
    ]
