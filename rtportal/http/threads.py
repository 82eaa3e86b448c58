"""HTTP: a matter's threads and a thread's items (docs/api.md "Threads").

``GET /api/v1/matters/{ref}/threads?before=&limit=``: the threads the caller
sees, newest activity first (keyset by ``last``, the seq of the thread's
newest event the caller sees). ``GET /api/v1/matters/{ref}/threads/{thread}
/items?before=|after=&limit=``: a page of the thread's events (items, edits,
deletes; for staff also notes), both ways by cursor (``rtportal.events
.cursor``), bounded in bytes like the matter's history. A thread the caller
may not see, like another matter's, is ``not_found``. Each list row carries
the caller's ``unread`` items in it (rtportal.threads' read marks).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import membership
from rtportal.errors import BadRequest, NotFound
from rtportal.events.audience import view_for
from rtportal.events.cursor import MAX_SEQ, CursorCodec
from rtportal.events.event import StoredEvent
from rtportal.events.validate import valid_thread
from rtportal.http.context import db_of, ok, principal_of, runtime_of, settings_of
from rtportal.http.errors import json_endpoint
from rtportal.principal import Principal
from rtportal.threads import reading
from rtportal.threads.cursors import event_out, parse_query, position_out
from rtportal.threads.items import find_opener
from rtportal.threads.readers import reader_for
from rtportal.threads.unread import unread_counts

__all__ = ["routes"]

_LIMIT_RE = re.compile(r"[0-9]{1,4}")
LIST_DEFAULT, LIST_MAX = 20, 100
PAGE_DEFAULT = 50


def _limit(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return min(default, maximum)
    if _LIMIT_RE.fullmatch(raw) is None or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


@json_endpoint
async def list_threads(request: Request) -> Response:
    """The threads the caller sees: ``{"threads": [...], "next": cursor or null}``."""
    principal = await principal_of(request)
    raw = request.query_params.get("before")
    limit = _limit(request, LIST_DEFAULT, LIST_MAX)
    cursors = runtime_of(request).frames.cursors
    async with db_of(request).read() as session:
        matter, sees = await membership.can_view(session, principal, request.path_params["ref"])
        # Parsed once the matter is known (a contact's cursor is a token of it).
        given = parse_query(cursors, raw, principal, matter.id, "before")
        before = MAX_SEQ if given is None else given.after
        rows = await reading.list_threads(session, matter.id, principal, sees, before, limit)
        # Read in the same snapshot as the rows, by the rule of GET .../unread.
        reader = await reader_for(session, principal, matter.id)
        unread = await unread_counts(session, matter.id, reader)
    body = []
    for row in rows:
        summary = row.to_json()
        summary["unread"] = unread.get(row.thread, 0)
        summary["last"] = position_out(cursors, principal, matter.id, row.last_seq)
        body.append(summary)
    last = rows[-1].last_seq if len(rows) == limit else None
    return ok(
        {
            "matter": matter.reference,
            "threads": body,
            "next": None if last is None else position_out(cursors, principal, matter.id, last),
        }
    )


@json_endpoint
async def thread_items(request: Request) -> Response:
    """A page of one thread's events as the caller may see them, in seq order:
    ``before`` (default: the newest page) or ``after`` a cursor; ``prev``/``next``
    are the cursors of the pages before and after it; ``more``: another page
    exists in the direction read."""
    query = request.query_params
    if "after" in query and "before" in query:
        raise BadRequest("use either after or before, not both")
    forward = "after" in query
    raw = query.get("after" if forward else "before")
    cursors = runtime_of(request).frames.cursors
    settings = settings_of(request)
    limit = _limit(request, PAGE_DEFAULT, settings.history_page_max)
    thread = request.path_params["thread"]
    principal = await principal_of(request)
    async with runtime_of(request).reads.hold(settings.history_page_bytes):
        async with db_of(request).read() as session:
            ref = request.path_params["ref"]
            matter, sees = await membership.can_view(session, principal, ref)
            given = parse_query(
                cursors, raw, principal, matter.id, "after" if forward else "before"
            )
            at = (0 if forward else MAX_SEQ) if given is None else given.after
            if not valid_thread(thread):
                raise NotFound("no such thread", reason="no_such_thread")
            opener = await find_opener(session, matter.id, thread)
            if opener is None or not reading.seen(opener, principal, sees):
                raise NotFound("no such thread", reason="no_such_thread")
            events = await reading.read_thread(
                session,
                matter.id,
                matter.reference,
                thread,
                at,
                forward,
                limit,
                settings.history_page_bytes,
                principal=principal,
                see_applicants=sees,
            )
            edge = (events[-1].seq if forward else events[0].seq) if events else at
            more = bool(events) and await reading.more_beyond(
                session, matter.id, thread, edge, forward, principal=principal, see_applicants=sees
            )
            welcome = None
            if opener.kind == "welcome" and not (forward and events) and not more:
                welcome = await reading.welcome_event(session, matter.id, matter.reference, thread)
        views = [
            event_out(cursors, v, principal, matter.id)
            for v in reading.views(events, principal, sees)
        ]
        return ok(
            {
                "matter": matter.reference,
                "thread": thread,
                "kind": "internal" if opener.kind == "note" else "client",
                "opener": opener.item,
                # A welcome thread's opener is its welcome event (not an item):
                # with the page that reaches the thread's start.
                "welcome": _welcome(cursors, welcome, principal, sees, matter.id),
                "events": views,
                "prev": position_out(cursors, principal, matter.id, events[0].seq)
                if events
                else None,
                "next": position_out(cursors, principal, matter.id, events[-1].seq)
                if events
                else None,
                "more": more,
            }
        )


def _welcome(
    cursors: CursorCodec,
    welcome: StoredEvent | None,
    principal: Principal,
    sees: bool,
    matter_id: int,
) -> dict[str, Any] | None:
    view = None if welcome is None else view_for(welcome, principal, sees)
    return None if view is None else event_out(cursors, view, principal, matter_id)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/matters/{ref}/threads", list_threads, methods=["GET"]),
        Route("/api/v1/matters/{ref}/threads/{thread}/items", thread_items, methods=["GET"]),
    ]
