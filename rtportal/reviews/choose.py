"""Who reviews what a client sends, and the day it is due: the firm's preference.

The reviewer of a matter's received items is, first, the firm's review
staff member (``firms.review_staff_id``) when the firm named one; else the
matter's responsible staff member (``matters.responsible_staff_id``, the
default, as Migration Manager's "RMA"); else, when neither is set or the
one named cannot sign in (disabled, still invited, a bot), the firm's
longest-standing active org admin (the lowest id): every firm has one,
and an org admin can reassign. The review date is "today" in the firm's
timezone (``firms.timezone``, an IANA name; none: UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from rtportal.db.models import Firm, Matter, StaffUser

__all__ = ["Target", "able", "targets", "today_in", "zone"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a matter's received items go: its firm, their reviewer, the firm's day."""

    firm_id: int
    reviewer_id: int | None  # None: the firm has no active org admin (never in practice)
    timezone: str | None

    def today(self, now: datetime | None = None) -> date:
        return today_in(self.timezone, now)


@cache
def zone(name: str | None) -> tzinfo:
    """The firm's timezone; UTC for none or a name this server's tz database lacks."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def today_in(timezone: str | None, now: datetime | None = None) -> date:
    """The date it is now (or at ``now``) in ``timezone``."""
    return (now or datetime.now(UTC)).astimezone(zone(timezone)).date()


def able(staff: Any) -> Any:
    """The condition on a ``staff_users`` alias of a staff member who can review."""
    return and_(staff.status == "active", staff.role != "bot")


def _query(matter_ids: list[int]) -> Any:
    chosen = aliased(StaffUser)
    responsible = aliased(StaffUser)
    admin = aliased(StaffUser)
    first_admin = (
        select(func.min(admin.id))
        .where(admin.firm_id == Matter.firm_id, admin.role == "org_admin", able(admin))
        .scalar_subquery()
    )
    return (
        select(
            Matter.id,
            Matter.firm_id,
            Firm.timezone,
            func.coalesce(chosen.id, responsible.id, first_admin),
        )
        .join(Firm, Firm.id == Matter.firm_id)
        .outerjoin(chosen, and_(chosen.id == Firm.review_staff_id, able(chosen)))
        .outerjoin(
            responsible, and_(responsible.id == Matter.responsible_staff_id, able(responsible))
        )
        .where(Matter.id.in_(matter_ids))
    )


async def targets(session: AsyncSession, matter_ids: Iterable[int]) -> dict[int, Target]:
    """Each matter's ``Target``, in one query (missing matters are left out)."""
    ids = sorted(set(matter_ids))
    if not ids:
        return {}
    rows = (await session.execute(_query(ids))).all()
    return {
        int(matter_id): Target(int(firm_id), None if who is None else int(who), tz)
        for matter_id, firm_id, tz, who in rows
    }
