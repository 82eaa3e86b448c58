"""Read marks, unread counts, the first unread item and receipts over HTTP (docs/api.md).

Each endpoint answers ``not_found`` for a matter or thread the caller may
not see, exactly as for one that does not exist (``rtportal.threads.reads
.visible_thread``). A read mark spends one token of the user's write
bucket, like a send.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import membership
from rtportal.errors import BadRequest
from rtportal.http.bodies import json_object
from rtportal.http.context import db_of, ok, principal_of, runtime_of
from rtportal.http.errors import json_endpoint
from rtportal.threads.cursors import cursor_out
from rtportal.threads.readers import reader_for
from rtportal.threads.reads import mark_read, visible_thread
from rtportal.threads.receipts import receipts
from rtportal.threads.unread import first_unread, unread_counts

__all__ = ["routes"]

_BODY = 1024


@json_endpoint
async def post_read(request: Request) -> Response:
    """``{"upto": <cursor>}`` -> the mark in effect and the caller's unread counts."""
    principal = await principal_of(request)
    runtime = runtime_of(request)
    runtime.limits.check_write(principal)
    body = await json_object(request, _BODY)
    unknown = set(body) - {"upto"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    if "upto" not in body:
        raise BadRequest("upto is required (a cursor)", field="upto")
    marked = await mark_read(
        runtime.db,
        runtime.hub.publish_ephemeral,
        principal,
        request.path_params["ref"],
        request.path_params["thread"],
        body["upto"],
        cursors=runtime.frames.cursors,
    )
    return ok(
        {
            "matter": marked.matter,
            "thread": marked.thread,
            "upto": cursor_out(runtime.frames.cursors, principal, marked.matter_id, marked.upto),
            "unread": marked.unread,
            "matter_unread": marked.matter_unread,
        }
    )


@json_endpoint
async def get_unread(request: Request) -> Response:
    """``{"matter": n, "threads": {thread: n}}`` (threads with unread items only)."""
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matter = await membership.can_access(session, principal, request.path_params["ref"])
        reader = await reader_for(session, principal, matter.id)
        counts = await unread_counts(session, matter.id, reader)
    return ok({"matter": counts.total, "threads": dict(counts)})


@json_endpoint
async def get_first_unread(request: Request) -> Response:
    """``{"thread", "after", "first_unread"}``: read the thread's items ``after`` the
    caller's mark; ``first_unread`` is the first unread item's cursor, or ``null``."""
    principal = await principal_of(request)
    thread = request.path_params["thread"]
    cursors = runtime_of(request).frames.cursors
    async with db_of(request).read() as session:
        matter, reader, _ = await visible_thread(
            session, principal, request.path_params["ref"], thread
        )
        mark, seq = await first_unread(session, matter.id, reader, thread)
    return ok(
        {
            "thread": thread,
            "after": cursor_out(cursors, principal, matter.id, mark),
            "first_unread": None if seq is None else cursor_out(cursors, principal, matter.id, seq),
        }
    )


@json_endpoint
async def get_receipts(request: Request) -> Response:
    """``{"thread", "receipts": [{"reader", "name", "upto"}]}`` as the caller may see them."""
    principal = await principal_of(request)
    thread = request.path_params["thread"]
    async with db_of(request).read() as session:
        matter, reader, info = await visible_thread(
            session, principal, request.path_params["ref"], thread
        )
        shown = await receipts(session, runtime_of(request).frames.cursors, matter, reader, info)
    return ok({"thread": thread, "receipts": shown})


def routes() -> list[BaseRoute]:
    prefix = "/api/v1/matters/{ref}"
    return [
        Route(f"{prefix}/unread", get_unread, methods=["GET"]),
        Route(f"{prefix}/threads/{{thread}}/read", post_read, methods=["POST"]),
        Route(f"{prefix}/threads/{{thread}}/first-unread", get_first_unread, methods=["GET"]),
        Route(f"{prefix}/threads/{{thread}}/receipts", get_receipts, methods=["GET"]),
    ]
