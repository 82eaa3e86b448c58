"""A review row as the API shows it, its labels, and the inbox's cursor.

What the server knows of a received thing is only that it was received:
its matter, opaque references (item, thread, request, file ids), who sent
it and when. Nothing here is content.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from rtportal.db.models import Review
from rtportal.errors import InvalidCursor
from rtportal.events.event import iso_time

__all__ = ["LABELS", "MAX_ID", "Cursor", "Queued", "review_body"]

# What the staff app shows beside a row (Migration Manager's words; docs/reviews.md).
LABELS = {"message": "Portal Message", "document": "Portal Doc"}

# Ids are 32-bit integers on PostgreSQL: a larger one names nothing, and is answered
# as such before a query (the driver refuses it as a parameter).
MAX_ID = 2**31 - 1

_CURSOR_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\.([1-9][0-9]{0,17})")


@dataclass(frozen=True, slots=True)
class Cursor:
    """The inbox's position: the last row's (review date, id); spelled ``YYYY-MM-DD.<id>``."""

    review_on: date
    id: int

    def to_string(self) -> str:
        return f"{self.review_on.isoformat()}.{self.id}"

    @classmethod
    def from_string(cls, raw: str | None) -> Cursor | None:
        if raw is None or raw == "":
            return None
        match = _CURSOR_RE.fullmatch(raw)
        if match is None:
            raise InvalidCursor("after: not a cursor of this list", field="after")
        try:
            on = date.fromisoformat(match[1])
        except ValueError:
            on = None
        if on is None or int(match[2]) > MAX_ID:
            raise InvalidCursor("after: not a cursor of this list", field="after")
        return cls(on, int(match[2]))


@dataclass(frozen=True, slots=True)
class Queued:
    """A review just queued (or changed): whose count to push, on which matter's topic."""

    reviewer_id: int
    matter_id: int


def _files(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [f for f in value if isinstance(f, str)] if isinstance(value, list) else []


def review_body(
    row: Review, matter: str, title: str, sender: str | None, today: date
) -> dict[str, Any]:
    """One row of the inbox (and the answer of an act on it)."""
    return {
        "id": row.id,
        "matter": matter,
        "matter_title": title,
        "kind": row.kind,
        "label": LABELS.get(row.kind, row.kind),
        "ref": row.ref,
        "thread": row.thread,
        "request": row.request,
        "files": _files(row.files),
        "sender": None if row.sender_id is None else {"id": row.sender_id, "name": sender},
        "reviewer": row.reviewer_id,
        "review_on": row.review_on.isoformat(),
        "due": row.reviewed_at is None and row.review_on <= today,
        "overdue": row.reviewed_at is None and row.review_on < today,
        "received_at": iso_time(row.created_at),
        "reviewed_at": None if row.reviewed_at is None else iso_time(row.reviewed_at),
        "reviewed_by": row.reviewed_by,
    }
