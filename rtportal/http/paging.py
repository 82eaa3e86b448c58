"""``?limit=&before=`` of the newest-first lists (outbox, audit log): one parser."""

from __future__ import annotations

import re

from starlette.requests import Request

from rtportal.errors import BadRequest

__all__ = ["PAGE_DEFAULT", "PAGE_MAX", "page_params"]

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
