"""The staff review inbox over HTTP (docs/reviews.md).

``GET /api/v1/reviews`` (the caller's inbox: ``?due=all|due|overdue&after=&limit=``),
``GET /api/v1/reviews/count`` (the header's counts at load),
``GET /api/v1/reviews/reviewers`` (whom a review may be given to),
``POST /api/v1/reviews/{id}/reviewed``, ``POST /api/v1/reviews/{id}/reassign``
(``{"reviewer": <staff id>}``) and ``PATCH /api/v1/reviews/{id}``
(``{"review_on": "YYYY-MM-DD"}``). Staff only: for a client or a bot none
of it exists (``not_found``, before its query or body is read), nor does
another firm's review.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.errors import BadRequest
from rtportal.http.context import db_of, ok, principal_of, runtime_of
from rtportal.http.directory import body_of
from rtportal.http.errors import json_endpoint
from rtportal.principal import Principal
from rtportal.reviews import acts, inbox
from rtportal.reviews.live import ReviewCounts
from rtportal.reviews.rows import Cursor

__all__ = ["routes"]

_BODY = 256  # {"reviewer": <id>} or {"review_on": "YYYY-MM-DD"}, with room for spaces
_PARAMS = frozenset({"due", "after", "limit"})
_LIMIT_RE = re.compile(r"[0-9]{1,3}")
_LIMIT_DEFAULT = 50


async def _staff(request: Request) -> Principal:
    principal = await principal_of(request)
    inbox.require_reviewer(principal)
    return principal


def _query(request: Request) -> inbox.InboxQuery:
    params = request.query_params
    unknown = set(params) - _PARAMS
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(sorted(unknown))}")
    due = params.get("due") or "all"
    if due not in ("all", "due", "overdue"):
        raise BadRequest("due must be all, due or overdue", field="due")
    raw = params.get("limit")
    limit = _LIMIT_DEFAULT
    if raw:
        if _LIMIT_RE.fullmatch(raw) is None or not 1 <= int(raw) <= inbox.LIMIT_MAX:
            raise BadRequest(f"limit must be an integer from 1 to {inbox.LIMIT_MAX}", field="limit")
        limit = int(raw)
    after = Cursor.from_string(params.get("after"))
    return inbox.InboxQuery(due=due, after=after, limit=limit)  # type: ignore[arg-type]


def _fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")


def _push(request: Request, done: acts.Acted) -> None:
    counts: ReviewCounts | None = getattr(request.app.state, "review_counts", None)
    if counts is not None:
        for queued in done.touched:
            counts.touch(queued)


@json_endpoint
async def list_reviews(request: Request) -> Response:
    principal = await _staff(request)
    q = _query(request)
    async with db_of(request).read() as session:
        page = await inbox.read_inbox(session, principal, q)
    return ok({"reviews": page.rows, "next": None if page.next is None else page.next.to_string()})


@json_endpoint
async def review_count(request: Request) -> Response:
    principal = await _staff(request)
    async with db_of(request).read() as session:
        counts = await inbox.my_counts(session, principal)
    return ok(counts.body())


@json_endpoint
async def list_reviewers(request: Request) -> Response:
    principal = await _staff(request)
    async with db_of(request).read() as session:
        people = await inbox.reviewers(session, principal)
    return ok({"reviewers": people})


Act = Callable[[AsyncSession, Principal, str, dict[str, Any]], Awaitable[acts.Acted]]


async def _act(request: Request, allowed: frozenset[str], act: Act) -> Response:
    """Staff only, the write bucket, a small body of ``allowed`` fields, the act in a
    transaction; the counts it changed pushed after the commit."""
    principal = await _staff(request)
    runtime_of(request).limits.check_write(principal)
    body = await body_of(request, _BODY, allow_empty=not allowed)
    _fields(body, allowed)
    async with db_of(request).write() as session:
        done = await act(session, principal, request.path_params["id"], body)
    _push(request, done)
    return ok({"review": done.review, "changed": done.changed})


@json_endpoint
async def mark_reviewed(request: Request) -> Response:
    return await _act(request, frozenset(), lambda s, p, rid, _: acts.mark_reviewed(s, p, rid))


@json_endpoint
async def reassign(request: Request) -> Response:
    return await _act(
        request,
        frozenset({"reviewer"}),
        lambda s, p, rid, body: acts.reassign(s, p, rid, body.get("reviewer")),
    )


@json_endpoint
async def change_date(request: Request) -> Response:
    return await _act(
        request,
        frozenset({"review_on"}),
        lambda s, p, rid, body: acts.set_review_date(s, p, rid, body.get("review_on")),
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/reviews", list_reviews, methods=["GET"]),
        Route("/api/v1/reviews/count", review_count, methods=["GET"]),
        Route("/api/v1/reviews/reviewers", list_reviewers, methods=["GET"]),
        Route("/api/v1/reviews/{id}", change_date, methods=["PATCH"]),
        Route("/api/v1/reviews/{id}/reviewed", mark_reviewed, methods=["POST"]),
        Route("/api/v1/reviews/{id}/reassign", reassign, methods=["POST"]),
    ]
