"""``GET /api/v1/feed``: the staff activity feed (``rtportal.threads.feed``).

``?matter=&type=&tag=&unread=1&before=&limit=``; answers ``{"rows": [...],
"next": <cursor or null>}``. Contacts get ``not_found``.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.errors import BadRequest, NotFound
from rtportal.events.cursor import FeedCursor
from rtportal.http.context import db_of, ok, principal_of, settings_of
from rtportal.http.errors import json_endpoint
from rtportal.threads import feed

__all__ = ["FEED_LIMIT_MAX", "routes"]

FEED_LIMIT_DEFAULT = 50
FEED_LIMIT_MAX = 100
_LIMIT_RE = re.compile(r"[0-9]{1,3}")
_PARAMS = frozenset({"matter", "type", "tag", "unread", "before", "limit"})


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return FEED_LIMIT_DEFAULT
    if _LIMIT_RE.fullmatch(raw) is None or not 1 <= int(raw) <= FEED_LIMIT_MAX:
        raise BadRequest(f"limit must be an integer from 1 to {FEED_LIMIT_MAX}", field="limit")
    return int(raw)


def _query(request: Request) -> feed.FeedQuery:
    params = request.query_params
    unknown = set(params) - _PARAMS
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(sorted(unknown))}")
    unread = params.get("unread") or None
    if unread not in (None, "1", "0"):
        raise BadRequest("unread must be 1 or 0", field="unread")
    secret = settings_of(request).secret_key
    cursor = FeedCursor.from_string(params.get("before"), secret)
    return feed.FeedQuery(
        matter=params.get("matter") or None,
        type=params.get("type") or None,
        tag=params.get("tag") or None,
        unread=unread == "1",
        before=None if cursor is None else cursor.before,
        limit=_limit(params.get("limit")),
    )


@json_endpoint
async def get_feed(request: Request) -> Response:
    principal = await principal_of(request)
    if not principal.is_staff:
        raise NotFound("no such endpoint")  # before reading anything a client sent
    q = _query(request)
    async with db_of(request).read() as session:
        page = await feed.read_feed(session, principal, q)
    secret = settings_of(request).secret_key
    cursor = None if page.last_id is None else FeedCursor(page.last_id).to_string(secret)
    return ok({"rows": page.rows, "next": cursor})


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/feed", get_feed, methods=["GET"])]
