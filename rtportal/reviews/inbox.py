"""A staff member's review inbox: what awaits their review, oldest review date first.

Only staff (not bots) have an inbox; for anyone else it does not exist
(``not_found``, before anything they sent is read). A page is keyset-paged
by (review date, id) through ``ix_reviews_inbox``; ``due`` narrows it to
review dates up to today, ``overdue`` to those before today (the firm's
day). Reviewed rows leave the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Contact, Firm, Matter, Review, StaffUser
from rtportal.errors import NotFound
from rtportal.principal import Principal
from rtportal.reviews.choose import able, today_in
from rtportal.reviews.counts import Counts, counts_of
from rtportal.reviews.rows import Cursor, review_body

__all__ = [
    "LIMIT_MAX",
    "Due",
    "InboxPage",
    "InboxQuery",
    "firm_today",
    "my_counts",
    "read_inbox",
    "require_reviewer",
    "reviewers",
]

LIMIT_MAX = 100
Due = Literal["all", "due", "overdue"]


def require_reviewer(principal: Principal) -> None:
    """Reviews are a staff member's: a client or a bot gets ``not_found`` (nothing exists)."""
    if principal.kind != "staff":
        raise NotFound("no such endpoint")


@dataclass(frozen=True, slots=True)
class InboxQuery:
    due: Due = "all"
    after: Cursor | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class InboxPage:
    rows: list[dict[str, Any]]
    next: Cursor | None


async def firm_today(session: AsyncSession, firm_id: int) -> date:
    """Today in the firm's timezone."""
    tz = (await session.execute(select(Firm.timezone).where(Firm.id == firm_id))).scalar()
    return today_in(tz)


async def read_inbox(session: AsyncSession, principal: Principal, q: InboxQuery) -> InboxPage:
    """A page of ``principal``'s open reviews (``limit`` rows, ``next`` when more may follow)."""
    require_reviewer(principal)
    today = await firm_today(session, principal.firm_id)
    query = (
        select(Review, Matter.reference, Matter.title, Contact.display_name)
        .join(Matter, Matter.id == Review.matter_id)
        .outerjoin(Contact, Contact.id == Review.sender_id)
        .where(
            Review.reviewer_id == principal.id,
            Review.reviewed_at.is_(None),
            Review.firm_id == principal.firm_id,
        )
    )
    if q.due == "due":
        query = query.where(Review.review_on <= today)
    elif q.due == "overdue":
        query = query.where(Review.review_on < today)
    if q.after is not None:
        on, last = q.after.review_on, q.after.id
        query = query.where(
            or_(Review.review_on > on, and_(Review.review_on == on, Review.id > last))
        )
    rows = (
        await session.execute(query.order_by(Review.review_on, Review.id).limit(q.limit + 1))
    ).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    body = [review_body(r, ref, title, name, today) for r, ref, title, name in rows]
    last_row = rows[-1][0] if rows and more else None
    return InboxPage(body, None if last_row is None else Cursor(last_row.review_on, last_row.id))


async def my_counts(session: AsyncSession, principal: Principal) -> Counts:
    """``principal``'s counts (the header's number at load)."""
    require_reviewer(principal)
    return (await counts_of(session, [principal.id]))[principal.id]


async def reviewers(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Whom a review may be given to (the inbox's reassign picker): the firm's active
    staff, bots excepted (``acts.reassign``'s rule), by name."""
    require_reviewer(principal)
    rows = await session.execute(
        select(StaffUser.id, StaffUser.display_name)
        .where(StaffUser.firm_id == principal.firm_id, able(StaffUser))
        .order_by(StaffUser.display_name, StaffUser.id)
    )
    return [{"id": int(i), "name": name} for i, name in rows.all()]
