"""What staff do to a review: mark it reviewed, reassign it, change its review date;
and what becomes of a staff member's open reviews when they are disabled.

Any staff member of the firm may act on the firm's reviews (staff see
every matter of their firm; a colleague covers an absent reviewer); a
client or a bot gets ``not_found``, as for a review of another firm. Each
act locks the row (PostgreSQL; SQLite's write transaction holds the
database) and is idempotent: doing it again changes nothing
(``changed: false``). A reviewed item is final: reassigning it or moving
its date is ``precondition_failed`` (``already_reviewed``).

Nobody sees another staff member's inbox, so a disabled member's open
reviews are handed over in the transaction that disables them
(``hand_over``): each to the reviewer the firm's rule names now, which skips
them (``choose.REVIEWER``). Their reviewed ones keep who reviewed them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Contact, Matter, Review, StaffUser, utcnow
from rtportal.errors import BadRequest, NotFound, PreconditionFailed
from rtportal.principal import Principal
from rtportal.reviews.choose import REVIEWER, able
from rtportal.reviews.inbox import firm_today, require_reviewer
from rtportal.reviews.rows import MAX_ID, Queued, review_body

__all__ = [
    "Acted",
    "hand_over",
    "mark_reviewed",
    "parse_date",
    "reassign",
    "set_review_date",
    "settle_documents",
]

_ID_RE = re.compile(r"[1-9][0-9]{0,9}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_RANGE = timedelta(days=3660)  # a review date within ten years of today


@dataclass(frozen=True, slots=True)
class Acted:
    """The review after the act, whether it changed, and whose counts to push after commit."""

    review: dict[str, Any]
    changed: bool
    touched: list[Queued] = field(default_factory=list)


def _no_review() -> NotFound:
    return NotFound("no such review", reason="no_such_review")


def _review_id(principal: Principal, raw_id: str) -> int:
    require_reviewer(principal)
    if not isinstance(raw_id, str) or _ID_RE.fullmatch(raw_id) is None or int(raw_id) > MAX_ID:
        raise _no_review()
    return int(raw_id)


async def _locked(session: AsyncSession, principal: Principal, raw_id: str) -> Review:
    row = (
        await session.execute(
            select(Review)
            .where(Review.id == _review_id(principal, raw_id), Review.firm_id == principal.firm_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise _no_review()
    return row


async def _answer(
    session: AsyncSession, row: Review, changed: bool, touched: list[Queued]
) -> Acted:
    await session.flush()
    found = (
        await session.execute(
            select(Matter.reference, Matter.title, Contact.display_name)
            .select_from(Matter)
            .outerjoin(Contact, Contact.id == row.sender_id)
            .where(Matter.id == row.matter_id)
        )
    ).one()
    today = await firm_today(session, row.firm_id)
    return Acted(review_body(row, found[0], found[1], found[2], today), changed, touched)


async def mark_reviewed(session: AsyncSession, principal: Principal, raw_id: str) -> Acted:
    """Mark the review reviewed by ``principal``; again: unchanged (who and when kept)."""
    row = await _locked(session, principal, raw_id)
    if row.reviewed_at is not None:
        return await _answer(session, row, False, [])
    row.reviewed_at = utcnow()
    row.reviewed_by = principal.id
    return await _answer(session, row, True, [Queued(row.reviewer_id, row.matter_id)])


def _open(row: Review) -> None:
    if row.reviewed_at is not None:
        raise PreconditionFailed("already_reviewed", "the item is reviewed already")


async def reassign(
    session: AsyncSession, principal: Principal, raw_id: str, reviewer: object
) -> Acted:
    """Give the review to ``reviewer``: an active staff member (not a bot) of the firm."""
    # Another firm's review (or none) is ``not_found`` whatever the body names.
    there = await session.execute(
        select(Review.id).where(
            Review.id == _review_id(principal, raw_id), Review.firm_id == principal.firm_id
        )
    )
    if there.first() is None:
        raise _no_review()
    if type(reviewer) is not int or not 1 <= reviewer <= MAX_ID:
        raise BadRequest(
            "reviewer: a staff member's id", field="reviewer", reason="no_such_reviewer"
        )
    # Shared-locked (PostgreSQL) until the commit: a transaction disabling them, which
    # hands their open reviews over, waits for this one, or this one for it (and then
    # finds them disabled): never a review given after their hand-over read theirs.
    # Taken before the review's row, in the order the disabling takes them (their row,
    # then their reviews): the other way round, reassigning a review again to the one
    # being disabled deadlocked with it.
    found = (
        await session.execute(
            select(StaffUser.id)
            .where(
                StaffUser.id == reviewer, StaffUser.firm_id == principal.firm_id, able(StaffUser)
            )
            .with_for_update(read=True)
        )
    ).first()
    if found is None:
        raise BadRequest(
            "reviewer: no active staff member of this firm has that id",
            field="reviewer",
            reason="no_such_reviewer",
        )
    row = await _locked(session, principal, raw_id)
    _open(row)
    if row.reviewer_id == reviewer:
        return await _answer(session, row, False, [])
    before = row.reviewer_id
    row.reviewer_id = reviewer
    touched = [Queued(before, row.matter_id), Queued(reviewer, row.matter_id)]
    return await _answer(session, row, True, touched)


def parse_date(raw: object, today: date) -> date:
    """``YYYY-MM-DD``, a real date within ten years of ``today``, else ``bad_request``."""
    if isinstance(raw, str) and _DATE_RE.fullmatch(raw) is not None:
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            value = None
        if value is not None and abs(value - today) <= _DATE_RANGE:
            return value
    raise BadRequest(
        "review_on: a date (YYYY-MM-DD) within ten years of today",
        field="review_on",
        reason="review_date",
    )


async def set_review_date(
    session: AsyncSession, principal: Principal, raw_id: str, raw_date: object
) -> Acted:
    """Move the review's date (``YYYY-MM-DD``)."""
    row = await _locked(session, principal, raw_id)
    value = parse_date(raw_date, await firm_today(session, row.firm_id))
    _open(row)
    if row.review_on == value:
        return await _answer(session, row, False, [])
    row.review_on = value
    return await _answer(session, row, True, [Queued(row.reviewer_id, row.matter_id)])


# The reviewer the rule names now, for each open review of ``:who`` (kept, in the
# impossible case that the firm has no active org admin left: the firm keeps one).
_HAND_OVER = text(
    "UPDATE reviews SET reviewer_id = COALESCE("  # noqa: S608 - this module's constants
    f"(SELECT {REVIEWER} FROM matters AS m WHERE m.id = reviews.matter_id), reviewer_id)"
    " WHERE reviewer_id = :who AND reviewed_at IS NULL RETURNING reviewer_id, matter_id"
)


async def hand_over(session: AsyncSession, staff_id: int) -> list[Queued]:
    """In the transaction that disabled ``staff_id`` (flushed: the rule skips them),
    their open reviews to the reviewer the firm's rule names now. Returns whose
    counts to push after the commit (``ReviewCounts.touch``)."""
    rows = (await session.execute(_HAND_OVER, {"who": staff_id})).all()
    touched = {int(matter_id): int(who) for who, matter_id in rows}
    return [Queued(who, matter_id) for matter_id, who in touched.items()]


async def settle_documents(
    session: AsyncSession, matter_id: int, request: str, staff_id: int
) -> list[Queued]:
    """A staff decision on request ``request`` (accepted or rejected) is its review:
    the uploads against it still open are marked reviewed by the decider, in the
    decision's transaction. Returns whose counts to push after the commit."""
    rows = (
        await session.execute(
            update(Review)
            .where(
                Review.matter_id == matter_id,
                Review.kind == "document",
                Review.request == request,
                Review.reviewed_at.is_(None),
            )
            .values(reviewed_at=utcnow(), reviewed_by=staff_id)
            .returning(Review.reviewer_id, Review.matter_id)
        )
    ).all()
    return [Queued(int(who), int(matter)) for who, matter in {tuple(r) for r in rows}]
