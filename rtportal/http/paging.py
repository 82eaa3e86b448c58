"""``?limit=&before=`` of the newest-first lists (outbox, audit log): one parser
and one query."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from starlette.requests import Request

from rtportal.errors import BadRequest

__all__ = ["PAGE_DEFAULT", "PAGE_MAX", "newest_first", "page_params"]

T = TypeVar("T")

PAGE_DEFAULT = 50
PAGE_MAX = 200
_DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII digits only; bounded before int()


def _integer(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if _DIGITS.fullmatch(raw) is None:
        raise BadRequest(f"{name} must be a positive integer")
    return int(raw)


def page_params(request: Request) -> tuple[int, int | None]:
    """(limit, before): at most ``PAGE_MAX`` rows with an id below ``before``."""
    limit = _integer(request, "limit")
    if limit is None:
        limit = PAGE_DEFAULT
    if not 1 <= limit <= PAGE_MAX:
        raise BadRequest(f"limit must be an integer from 1 to {PAGE_MAX}")
    before = _integer(request, "before")
    if before is not None and before < 1:
        raise BadRequest("before must be a positive integer")
    return limit, before


async def newest_first(
    session: AsyncSession,
    query: Select[T],
    key: InstrumentedAttribute[int],
    request: Request,
) -> tuple[Sequence[T], Any]:
    """One page of ``query`` by ``key`` descending, below the request's ``before``:
    (rows, the ``next`` cursor or None on the last page)."""
    limit, before = page_params(request)
    if before is not None:
        query = query.where(key < before)
    rows = (await session.scalars(query.order_by(key.desc()).limit(limit))).all()
    return rows, (getattr(rows[-1], key.key) if len(rows) == limit else None)
