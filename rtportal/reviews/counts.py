"""A reviewer's counts: what awaits their review, what is due, what is overdue.

``due``: the review date is today or earlier in the firm's timezone;
``overdue``: earlier than today. Counted through the inbox's partial index
(``ix_reviews_inbox``: open rows by reviewer and date).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, Review, StaffUser
from rtportal.reviews.choose import today_in

__all__ = ["Counts", "counts_of", "frame_body"]


@dataclass(frozen=True, slots=True)
class Counts:
    open: int = 0
    due: int = 0
    overdue: int = 0

    def body(self) -> dict[str, int]:
        return {"open": self.open, "due": self.due, "overdue": self.overdue}


def frame_body(counts: Counts) -> dict[str, Any]:
    """The staff-only ``reviews`` frame: the reviewer's counts (docs/reviews.md)."""
    return {"type": "reviews", **counts.body()}


async def _today_of(session: AsyncSession, reviewer_ids: list[int]) -> dict[int, date]:
    rows = await session.execute(
        select(StaffUser.id, Firm.timezone)
        .join(Firm, Firm.id == StaffUser.firm_id)
        .where(StaffUser.id.in_(reviewer_ids))
    )
    return {int(who): today_in(tz) for who, tz in rows.all()}


async def counts_of(session: AsyncSession, reviewer_ids: Iterable[int]) -> dict[int, Counts]:
    """Each reviewer's ``Counts`` (a reviewer with nothing open: zeros): one query per
    distinct "today" among their firms (one, nearly always), after one for the days."""
    ids = sorted(set(reviewer_ids))
    if not ids:
        return {}
    days = await _today_of(session, ids)
    out = {who: Counts() for who in ids}
    by_day: dict[date, list[int]] = {}
    for who, day in days.items():
        by_day.setdefault(day, []).append(who)
    for day, group in by_day.items():
        query = (
            select(
                Review.reviewer_id,
                func.count(),
                func.sum(case((Review.review_on <= day, 1), else_=0)),
                func.sum(case((Review.review_on < day, 1), else_=0)),
            )
            .where(Review.reviewer_id.in_(group), Review.reviewed_at.is_(None))
            .group_by(Review.reviewer_id)
        )
        for who, total, due, overdue in (await session.execute(query)).all():
            out[int(who)] = Counts(int(total), int(due or 0), int(overdue or 0))
    return out
