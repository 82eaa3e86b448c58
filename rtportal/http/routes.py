"""The HTTP API (JSON), version 1. Reference: docs/api.md.

Every endpoint runs inside ``rtportal.http.errors.json_endpoint`` (the one
place failures become the JSON error shape); request bodies are read and
parsed by ``rtportal.http.bodies``. Writes commit first and publish to the
hub after the commit.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal import base64url, jsonlimits
from rtportal.access import invitelist, membership
from rtportal.access.sessions import (
    authenticate,
    exchange,
    exchangeable,
    revoke_principal_tokens,
    revoke_token,
    token_from_connection,
)
from rtportal.closecodes import CLOSE_REVOKED
from rtportal.errors import (
    BadRequest,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from rtportal.events import log as stream
from rtportal.events.audience import view_for
from rtportal.events.cursor import Cursor
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.send import Send
from rtportal.http import (
    audit,
    auth,
    directory,
    documents,
    feed,
    files,
    firm,
    outbox,
    reads,
    reviews,
    staff,
    tags,
    timeline,
    totp,
)
from rtportal.http import invites as invite_routes
from rtportal.http import keys as key_routes
from rtportal.http import threads as thread_routes
from rtportal.http.bodies import json_object
from rtportal.http.context import (
    check_csrf,
    check_origin,
    clear_session_cookie,
    csrf_token,
    db_of,
    metered,
    ok,
    principal_body,
    principal_of,
    runtime_of,
    set_session_cookie,
    settings_of,
)
from rtportal.http.errors import error_response, json_endpoint
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["DEFAULT_PAGE", "routes"]

DEFAULT_PAGE = 100
_SMALL_BODY = 4096
_EVENT_FIELDS = frozenset({"client_id", "kind", "audience", "payload", "blob"})
_LIMIT_RE = re.compile(r"[0-9]{1,9}")  # ASCII digits only


@json_endpoint
async def healthz(request: Request) -> Response:
    """Liveness + database reachability (no authentication, no data)."""
    if await db_of(request).ping():
        return ok({"status": "ok"})
    return error_response(Unavailable("database unreachable"))


@json_endpoint
async def list_matters(request: Request) -> Response:
    principal = await principal_of(request)
    async with db_of(request).read() as session:
        matters = await membership.list_matters(session, principal)
        # Staff also see whether each matter's portal is on (docs/access.md).
        on = (
            await invitelist.portal_on(session, [m.id for m in matters])
            if principal.kind == "staff"
            else None
        )
    rows = []
    for m in matters:
        row: dict[str, object] = {"ref": m.reference, "title": m.title}
        if principal.is_staff:
            row["head"] = m.last_seq  # a client never sees a seq (history before=end)
        if on is not None:
            row["portal"] = "on" if m.id in on else "off"
        rows.append(row)
    return ok({"matters": rows})


def _limit(request: Request) -> int:
    page_max = settings_of(request).history_page_max
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return min(DEFAULT_PAGE, page_max)
    # Checked as text first: str.isdigit() is also true for "²" (int() refuses
    # it) and int() refuses more than 4,300 digits: both would raise.
    if _LIMIT_RE.fullmatch(raw) is None or not 1 <= int(raw) <= page_max:
        raise BadRequest(f"limit must be an integer from 1 to {page_max}")
    return int(raw)


@json_endpoint
async def history(request: Request) -> Response:
    """One page of a matter's events, as this caller may see them.

    Forward from ``after`` (default: the start), or backward from
    ``before`` (the newest events with a smaller seq; ``before=end`` is the
    latest page). Pages are always in seq order, at most ``limit`` events
    and about ``history_page_bytes`` stored bytes; ``next``/``prev`` say
    where the next page starts. Cursors are seqs for staff and bots, tokens
    for contacts (``rtportal.events.cursor``), read once the matter is known.
    """
    query = request.query_params
    if "after" in query and "before" in query:
        raise BadRequest("use either after or before, not both")
    backward = "before" in query
    text = query.get("before" if backward else "after")
    limit = _limit(request)
    principal = await principal_of(request)
    ref = request.path_params["ref"]
    # The page's byte bound is reserved from the worker's budget while it is
    # read and encoded (rtportal.bytebudget).
    async with runtime_of(request).reads.hold(settings_of(request).history_page_bytes):
        return await _history_page(request, principal, ref, text, limit, backward)


async def _history_page(
    request: Request, principal: Principal, ref: str, text: str | None, limit: int, backward: bool
) -> Response:
    page_bytes = settings_of(request).history_page_bytes
    cursors = runtime_of(request).frames.cursors
    async with db_of(request).read() as session:
        matter, sees = await membership.can_view(session, principal, ref)
        if backward and text == "end":
            # The head read now: everything up to it (the seq column is 32-bit
            # on PostgreSQL, so no sentinel beyond it).
            cursor = Cursor(await stream.head(session, matter.id) + 1)
        else:
            where = "before" if backward else "after"
            cursor = cursors.parse_query(text, principal, matter.id, where)
        # Bounded in bytes too: a page may hold fewer than ``limit`` events. A
        # client's page holds only what they see, filtered in the database, so
        # its size and ``more`` never count staff-only events (docs/protocol.md).
        client = None if principal.is_staff else (principal.id, sees)
        if backward:
            events = await stream.read_before(
                session, matter.id, cursor.after, limit, page_bytes, client
            )
        else:
            events = await stream.read_since(
                session, matter.id, cursor.after, limit, page_bytes, client
            )
        head = await stream.head(session, matter.id)
        if backward:
            first = events[0].seq if events else min(cursor.after, head + 1)
            last = events[-1].seq if events else first - 1
            more = first > 1
        else:
            last = events[-1].seq if events else cursor.after
            first = events[0].seq if events else cursor.after + 1
            more = last < head
        if client is not None and more:
            # another page only if it would hold something this client sees
            edge = first if backward else last
            more = await stream.visible_beyond(session, matter.id, edge, not backward, client)
    views = [
        cursors.event_view(v, principal, matter.id)
        for v in (view_for(e, principal, sees) for e in events)
        if v is not None
    ]
    return ok(
        {
            "matter": matter.reference,
            "events": views,
            "next": cursors.position_for(principal, matter.id, max(last, 0)),
            "prev": cursors.position_for(principal, matter.id, max(first, 1)),
            "head": cursors.position_for(principal, matter.id, head),
            "more": more,
        }
    )


def _event_body_limit(settings: Settings) -> int:
    # JSON payload + base64 of the largest blob + room for the other fields.
    return settings.event_payload_max + math.ceil(settings.event_blob_max / 3) * 4 + 4096


@json_endpoint
async def post_event(request: Request) -> Response:
    """Append an event (idempotent by ``client_id``) through the worker's
    ``GroupCommit``: committed, then published, then answered."""
    settings = settings_of(request)
    principal = await principal_of(request)
    # The user's write rate, shared with websocket sends (rtportal.limits).
    runtime = runtime_of(request)
    runtime.limits.check_write(principal)
    body = await json_object(request, _event_body_limit(settings))
    unknown = set(body) - _EVENT_FIELDS
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise BadRequest("kind is required (a string)")
    audience = body.get("audience", "portal")
    if not isinstance(audience, str):
        raise BadRequest("audience must be a string")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise BadRequest("client_id must be a string")
    payload = body.get("payload")
    if payload is None:
        payload = {}  # absent or null: the empty object, as on the websocket
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    jsonlimits.payload_size(payload, settings.event_payload_max)
    blob = base64url.decode(body.get("blob"), settings.event_blob_max)
    # The worker's group commit (shared with websocket sends): access check,
    # append and commit in a batch's transaction, publish after the commit.
    committer: GroupCommit = request.app.state.committer
    send = Send(request.path_params["ref"], kind, audience, payload, blob, client_id)
    event, created, _ = await committer.append(principal, send, None)
    cursors = runtime_of(request).frames.cursors
    view = view_for(event, principal)
    answer: dict[str, Any] = {"duplicate": not created}
    if principal.is_staff:
        answer["seq"] = event.seq
    else:
        answer["cursor"] = cursors.cursor_for(principal, event.matter_id, event.seq)
    answer["event"] = None if view is None else cursors.event_view(view, principal, event.matter_id)
    return ok(answer, status=201 if created else 200)


@json_endpoint
async def create_session(request: Request) -> Response:
    """Exchange a login link, a session or an API token (header or ``{"token"}`` body)
    for a new session cookie; see ``rtportal.access.sessions.exchange``."""
    check_origin(request)  # no login CSRF with a link of another's account
    body = await json_object(request, _SMALL_BODY, allow_empty=True)
    token = body.get("token") if body else None
    if token is not None and not isinstance(token, str):
        raise BadRequest("token must be a string")
    if token is None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    settings = settings_of(request)
    with metered(request, token):
        # Looked up with a read first: an unknown or dead token never takes
        # the write lock (SQLite has one per process).
        async with db_of(request).read() as session:
            await exchangeable(session, settings.secret_key, token)
        async with db_of(request).write() as session:
            made = await exchange(session, settings, token)
    response = ok(
        {
            "principal": principal_body(made.principal),
            "csrf_token": csrf_token(request, made.principal),
        },
        status=201,
    )
    set_session_cookie(request, response, made)
    return response


@json_endpoint
async def delete_session(request: Request) -> Response:
    """Log out: revoke the presented token and every session exchanged from it."""
    check_origin(request)
    settings = settings_of(request)
    token = token_from_connection(request, settings)
    if not token:
        raise Unauthenticated("missing token")
    with metered(request, token):
        async with db_of(request).read() as session:
            principal = await authenticate(session, settings.secret_key, token)
    check_csrf(request, principal)
    async with db_of(request).write() as session:
        revoked = await revoke_token(session, settings.secret_key, token)
    # After commit: those sessions' live websockets on every worker close
    # with 4010 (a reconnect would be refused anyway; this makes it immediate).
    await request.app.state.hub.close_principal(
        principal.kind, principal.id, CLOSE_REVOKED, session_ids=revoked
    )
    response = ok({"ok": True})
    clear_session_cookie(request, response)
    return response


@json_endpoint
async def delete_sessions(request: Request) -> Response:
    """Sign out everywhere: revoke every token of the caller and close all their websockets."""
    principal = await principal_of(request)
    async with db_of(request).write() as session:
        revoked = await revoke_principal_tokens(session, principal.kind, principal.id)
    await request.app.state.hub.close_principal(principal.kind, principal.id, CLOSE_REVOKED)
    response = ok({"ok": True, "revoked": revoked})
    clear_session_cookie(request, response)
    return response


@json_endpoint
async def api_not_found(request: Request) -> Response:
    raise NotFound("no such endpoint")


def routes() -> list[BaseRoute]:
    """The API routes, mounted by ``rtportal.app.create_app``."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/matters", list_matters, methods=["GET"]),
        Route("/api/v1/matters/{ref}/events", history, methods=["GET"]),
        Route("/api/v1/matters/{ref}/events", post_event, methods=["POST"]),
        Route("/api/v1/session", create_session, methods=["POST"]),
        Route("/api/v1/session", delete_session, methods=["DELETE"]),
        Route("/api/v1/sessions", delete_sessions, methods=["DELETE"]),
        *directory.routes(),
        *invite_routes.routes(),
        *key_routes.routes(),
        *outbox.routes(),
        *totp.routes(),
        *audit.routes(),
        *firm.routes(),
        *auth.routes(),
        *staff.routes(),
        *reads.routes(),
        *timeline.routes(),
        *tags.routes(),
        *feed.routes(),
        *reviews.routes(),
        *thread_routes.routes(),
        *files.routes(),
        *documents.routes(),
        Route("/api/{rest:path}", api_not_found),
    ]
