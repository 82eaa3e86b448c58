"""A firm's settings: whether every staff member needs a second factor, and how
long a client's portal access lasts after acceptance (org admins change them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import audit
from rtportal.db.models import Firm
from rtportal.errors import BadRequest, NotFound
from rtportal.principal import Principal

__all__ = ["MAX_EXPIRY_DAYS", "firm_body", "update_settings"]

MAX_EXPIRY_DAYS = 3650
_FIELDS = frozenset({"require_totp", "invite_expiry_days"})


def firm_body(firm: Firm) -> dict[str, Any]:
    return {
        "name": firm.name,
        "slug": firm.slug,
        "require_totp": firm.require_totp,
        "invite_expiry_days": firm.invite_expiry_days,
    }


async def update_settings(
    session: AsyncSession, principal: Principal, body: dict[str, Any], address: str | None
) -> Firm:
    """Apply ``{require_totp?, invite_expiry_days?}`` (``null``: access until removed)."""
    unknown = set(body) - _FIELDS
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    firm = await session.get(Firm, principal.firm_id)
    if firm is None:
        raise NotFound("no such firm")
    changed: dict[str, Any] = {}
    if "require_totp" in body:
        value = body["require_totp"]
        if not isinstance(value, bool):
            raise BadRequest("require_totp: must be true or false", field="require_totp")
        firm.require_totp = changed["require_totp"] = value
    if "invite_expiry_days" in body:
        days = body["invite_expiry_days"]
        if days is not None and (
            not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXPIRY_DAYS
        ):
            raise BadRequest(
                f"invite_expiry_days: null or an integer from 1 to {MAX_EXPIRY_DAYS}",
                field="invite_expiry_days",
            )
        firm.invite_expiry_days = changed["invite_expiry_days"] = days
    if changed:
        await audit.record(
            session,
            firm_id=firm.id,
            action="firm.settings_changed",
            actor=principal,
            address=address,
            detail=changed,
        )
    return firm
