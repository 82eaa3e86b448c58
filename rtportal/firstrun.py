"""First run: a firm and its first org admin with a password (``rtportal create-firm``).

The password is turned into the login secret here, in Python, exactly as
the browser does (``credentials.set_password_text``); the server then
stores only its argon2 hash of that secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from rtportal.access import audit
from rtportal.access.credentials import MIN_PASSWORD_CHARS, set_password_text
from rtportal.access.directory import is_email
from rtportal.db import Database
from rtportal.db.models import Firm, StaffUser
from rtportal.demo import create_firm, create_staff
from rtportal.errors import BadRequest, Conflict, PreconditionFailed
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["FirstRun", "create_firm_with_admin", "signin_url"]

_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class FirstRun:
    firm_id: int
    slug: str
    admin: Principal


def signin_url(settings: Settings, slug: str) -> str:
    return f"{settings.public_url}/?firm={slug}"


async def create_firm_with_admin(
    db: Database,
    settings: Settings,
    *,
    name: str,
    slug: str | None,
    admin_email: str,
    admin_name: str,
    password: str,
) -> FirstRun:
    """A new firm, its first org admin (active) and their password, in one transaction."""
    name, admin_name, admin_email = name.strip(), admin_name.strip(), admin_email.strip().lower()
    if not name or len(name) > 200 or not admin_name or len(admin_name) > 200:
        raise BadRequest("the firm's and the admin's names are 1 to 200 characters")
    if not is_email(admin_email):
        raise BadRequest("--admin-email must be an email address")
    if slug is not None and _SLUG_RE.fullmatch(slug) is None:
        raise BadRequest("--slug is lower-case letters, digits and dashes (at most 64)")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PreconditionFailed(
            "weak_password", f"a password has at least {MIN_PASSWORD_CHARS} characters"
        )
    async with db.write() as session:
        if slug is not None:
            taken = await session.execute(
                select(func.count()).select_from(Firm).where(Firm.slug == slug)
            )
            if int(taken.scalar_one()):
                raise Conflict(f"a firm with the slug {slug!r} exists")
        firm = await create_firm(session, name, slug=slug)
        admin = await create_staff(
            session, firm, email=admin_email, display_name=admin_name, role="org_admin"
        )
        user = await session.get(StaffUser, admin.id)
        assert user is not None
        user.status = "active"
        await set_password_text(
            session,
            settings,
            firm_id=firm.id,
            principal_kind="staff",
            principal_id=admin.id,
            email=admin_email,
            password=password,
        )
        await audit.record(
            session,
            firm_id=firm.id,
            action="firm.created",
            target=("staff", admin.id),
            detail={"admin": admin_email},
        )
        return FirstRun(firm.id, firm.slug, admin)
