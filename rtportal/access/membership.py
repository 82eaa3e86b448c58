"""Who may see which matter: ``can_access``, ``list_matters``, memberships.

Staff see every matter of their firm; contacts and bots the matters where
they are an active member: not removed, and not past the firm's access
expiry (``expires_at``, set when a portal invite is accepted; an expired
membership stops working at once, without a job having to end it).
Ending a membership is ``rtportal.access.removal``; sessions and their
revocation are ``rtportal.access.sessions``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter, MatterMember, utcnow
from rtportal.errors import NotFound
from rtportal.principal import Principal

__all__ = [
    "active_memberships",
    "can_access",
    "can_view",
    "list_matters",
    "live",
    "valid_matter_ref",
    "visible_matters",
]

_MATTER_REF_RE = re.compile(r"[A-Z]{4}[0-9]{4}")


def valid_matter_ref(ref: str) -> bool:
    """Matter references are four capital letters and four digits ("AAAA0000")."""
    return isinstance(ref, str) and _MATTER_REF_RE.fullmatch(ref) is not None


def live(now: Any = None) -> Any:
    """The condition of an active ``MatterMember`` row: not removed, not expired.

    ``now``: a bound parameter, for a statement built once (the clock then
    comes with each execution); by default the time of the call."""
    columns = MatterMember.__table__.c
    return and_(
        columns.removed_at.is_(None),
        or_(columns.expires_at.is_(None), columns.expires_at > (utcnow() if now is None else now)),
    )


def _membership(principal: Principal) -> Any:
    return and_(
        MatterMember.matter_id == Matter.id,
        MatterMember.principal_kind == principal.kind,
        MatterMember.principal_id == principal.id,
        live(),
    )


async def active_memberships(
    session: AsyncSession, matter_ids: Sequence[int], principal_ids: Sequence[int]
) -> set[tuple[int, str, int]]:
    """``(matter_id, principal_kind, principal_id)`` of the active memberships among these.

    One query (the hub re-checks the contacts and bots it delivers to: a
    membership removed on another worker, or while the broker was down, must
    still stop the live stream).
    """
    if not matter_ids or not principal_ids:
        return set()
    result = await session.execute(
        select(
            MatterMember.matter_id, MatterMember.principal_kind, MatterMember.principal_id
        ).where(
            MatterMember.matter_id.in_(list(matter_ids)),
            MatterMember.principal_id.in_(list(principal_ids)),
            live(),
        )
    )
    return {(int(mid), str(kind), int(pid)) for mid, kind, pid in result.all()}


async def can_access(session: AsyncSession, principal: Principal, matter_ref: str) -> Matter:
    """The matter ``matter_ref`` if ``principal`` may see it, else ``NotFound``.

    Staff: any matter of their firm. Contacts and bots: matters where they
    are an active member. Another firm's matter, a removed membership and a
    malformed reference all look exactly like a missing matter.
    """
    if not valid_matter_ref(matter_ref):
        raise NotFound("no such matter")
    query = select(Matter).where(
        Matter.reference == matter_ref, Matter.firm_id == principal.firm_id
    )
    if principal.kind != "staff":
        query = query.where(select(MatterMember.id).where(_membership(principal)).exists())
    matter = (await session.execute(query)).scalar_one_or_none()
    if matter is None:
        raise NotFound("no such matter")
    return matter


def visible_matters(principal: Principal) -> Any:
    """The condition on ``Matter`` of the matters ``principal`` may see (``can_access``)."""
    condition = Matter.firm_id == principal.firm_id
    if principal.kind != "staff":
        return and_(condition, select(MatterMember.id).where(_membership(principal)).exists())
    return condition


async def can_view(
    session: AsyncSession, principal: Principal, matter_ref: str
) -> tuple[Matter, bool]:
    """``can_access`` and whether the caller sees every applicant's threads.

    The second value is the membership's ``see_applicants`` for a contact
    (``rtportal.events.audience.view_for``), ``True`` for staff and bots, in
    the same one query.
    """
    if principal.kind != "contact":
        return await can_access(session, principal, matter_ref), True
    if not valid_matter_ref(matter_ref):
        raise NotFound("no such matter")
    query = (
        select(Matter, MatterMember.see_applicants)
        .join(MatterMember, _membership(principal))
        .where(Matter.reference == matter_ref, Matter.firm_id == principal.firm_id)
        .limit(1)
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("no such matter")
    return row[0], bool(row[1])


async def list_matters(session: AsyncSession, principal: Principal) -> list[Matter]:
    """Every matter ``principal`` may see (same rule as ``can_access``), by reference."""
    query = select(Matter).where(visible_matters(principal))
    result = await session.execute(query.order_by(Matter.reference))
    return list(result.scalars())
