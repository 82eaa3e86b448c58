"""Who reviews what a client sends, and the day it is due: the firm's preference.

The reviewer of a matter's received items is, first, the firm's review
staff member (``firms.review_staff_id``) when the firm named one; else the
matter's responsible staff member (``matters.responsible_staff_id``, the
default, as Migration Manager's "RMA"); else, when neither is set or the
one named cannot review (disabled, still invited, a bot), the firm's
longest-standing active org admin (the lowest id): every firm has one,
and an org admin can reassign. The review date is "today" in the firm's
timezone (``firms.timezone``, an IANA name; none: UTC).

The rule is one SQL expression (``REVIEWER``, over a ``matters`` row
``m``), used by every statement that queues: the group commit's INSERT
decides the reviewer in the statement that writes the row (no read before
it), ``targets`` reads it for other writers. The firms' days come from a
per-worker cache (``FirmDays``): a batch of client messages reads nothing
while its firms are known.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, Matter

__all__ = ["REVIEWER", "FirmDays", "Target", "able", "targets", "today_in", "zone"]

# Who can review: an active staff member who is not a bot (``s``: a staff_users row).
_ABLE = "s.status = 'active' AND s.role <> 'bot'"
REVIEWER = (
    "COALESCE("  # noqa: S608 - this module's constants
    "(SELECT s.id FROM staff_users AS s WHERE s.id ="
    f" (SELECT f.review_staff_id FROM firms AS f WHERE f.id = m.firm_id) AND {_ABLE}),"
    f" (SELECT s.id FROM staff_users AS s WHERE s.id = m.responsible_staff_id AND {_ABLE}),"
    " (SELECT min(s.id) FROM staff_users AS s WHERE s.firm_id = m.firm_id"
    " AND s.role = 'org_admin' AND s.status = 'active'))"
)


def able(staff: Any) -> Any:
    """``_ABLE`` on a ``staff_users`` entity or alias (reassigning: who may be given one)."""
    return and_(staff.status == "active", staff.role != "bot")


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


@dataclass(frozen=True, slots=True)
class Target:
    """Where a matter's received items go: its firm, their reviewer, the firm's day."""

    firm_id: int
    reviewer_id: int | None  # None: the firm has no active org admin (never in practice)
    timezone: str | None

    def today(self, now: datetime | None = None) -> date:
        return today_in(self.timezone, now)


_m = Matter.__table__.alias("m")
_f = Firm.__table__.alias("f")
# Built once (bound ``ids``).
_TARGETS = (
    select(_m.c.id, _m.c.firm_id, _f.c.timezone, literal_column(REVIEWER))
    .select_from(_m.join(_f, _f.c.id == _m.c.firm_id))
    .where(_m.c.id.in_(bindparam("ids", expanding=True)))
)
_TIMEZONES = select(Firm.id, Firm.timezone).where(Firm.id.in_(bindparam("ids", expanding=True)))


async def targets(session: AsyncSession, matter_ids: Iterable[int]) -> dict[int, Target]:
    """Each matter's ``Target``, in one query (missing matters are left out)."""
    ids = sorted(set(matter_ids))
    if not ids:
        return {}
    rows = (await session.execute(_TARGETS, {"ids": ids})).all()
    return {
        int(matter_id): Target(int(firm_id), None if who is None else int(who), tz)
        for matter_id, firm_id, tz, who in rows
    }


class FirmDays:
    """Per worker: firms' timezones, kept ``ttl`` seconds (a firm that changes its
    timezone has it applied within that), at most ``size`` firms (least recent out)."""

    __slots__ = ("_kept", "size", "ttl")

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._kept: OrderedDict[int, tuple[str | None, float]] = OrderedDict()

    async def today(self, session: AsyncSession, firm_ids: Iterable[int]) -> dict[int, date]:
        """Today in each firm's timezone (one read for the firms not known, if any)."""
        now = time.monotonic()
        zones: dict[int, str | None] = {}
        missing: list[int] = []
        for firm_id in set(firm_ids):
            kept = self._kept.get(firm_id)
            if kept is not None and kept[1] > now:
                zones[firm_id] = kept[0]
                self._kept.move_to_end(firm_id)
            else:
                missing.append(firm_id)
        if missing:
            rows = (await session.execute(_TIMEZONES, {"ids": sorted(missing)})).all()
            for firm_id, tz in rows:
                zones[int(firm_id)] = tz
                self._kept[int(firm_id)] = (tz, now + self.ttl)
                self._kept.move_to_end(int(firm_id))
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return {firm_id: today_in(tz) for firm_id, tz in zones.items()}
