"""A firm's settings: whether every staff member needs a second factor, how
long a client's portal access lasts after acceptance, whether clients see
their matters' timeline of steps, whether clients see which staff
members read their messages, its files' limits, the disclosure documents
a matter must share before an invite, and for its review inbox
(docs/reviews.md) its timezone and who reviews what clients send (org
admins change them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import audit
from rtportal.access.directory import MAX_ID
from rtportal.access.disclosures import parse_required, required
from rtportal.access.sessions import revoke_principal_tokens
from rtportal.db.models import Credential, Firm, StaffUser
from rtportal.errors import BadRequest, NotFound
from rtportal.principal import Principal

__all__ = ["MAX_EXPIRY_DAYS", "Updated", "firm_body", "update_settings"]

MAX_EXPIRY_DAYS = 3650
# Bytes of ciphertext per file and per matter (docs/files.md); null: the server's defaults.
_FILE_LIMITS = ("file_max_bytes", "portal_quota_bytes")
MAX_FILE_LIMIT = 2**40
_FIELDS = frozenset(
    {
        "require_totp",
        "invite_expiry_days",
        "show_timeline",
        "hide_staff_receipts",
        "required_disclosures",
        *_FILE_LIMITS,
        "timezone",
        "review_staff_id",
    }
)
_TZ_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")
# The settings that are a plain true or false, each a ``firms`` column of that name:
# ``show_timeline`` (clients see their matters' step timeline, rtportal.timeline;
# off, they get neither the timeline nor ``step`` events) and
# ``hide_staff_receipts`` (clients are not shown staff readers, rtportal.threads).
_FLAGS = ("show_timeline", "hide_staff_receipts")


def firm_body(firm: Firm) -> dict[str, Any]:
    return {
        "name": firm.name,
        "slug": firm.slug,
        "require_totp": firm.require_totp,
        "invite_expiry_days": firm.invite_expiry_days,
        "show_timeline": firm.show_timeline,
        "hide_staff_receipts": firm.hide_staff_receipts,
        "file_max_bytes": firm.file_max_bytes,
        "portal_quota_bytes": firm.portal_quota_bytes,
        "required_disclosures": required(firm),
        "timezone": firm.timezone,
        "review_staff_id": firm.review_staff_id,
    }


@dataclass(frozen=True, slots=True)
class Updated:
    firm: Firm
    ended: list[int]  # staff whose sessions were revoked: close their websockets


async def _end_sessions_without_second_factor(session: AsyncSession, firm_id: int) -> list[int]:
    """Revoke every token of the firm's staff (not org admins, who always need a
    second factor, nor bots) without a confirmed enrolment; their ids."""
    rows = await session.execute(
        select(StaffUser.id, Credential.totp_enabled_at)
        .outerjoin(
            Credential,
            (Credential.principal_kind == "staff") & (Credential.principal_id == StaffUser.id),
        )
        .where(StaffUser.firm_id == firm_id, StaffUser.role.in_(("matter_admin", "staff")))
    )
    ended = []
    for user_id, enrolled_at in rows.all():
        if enrolled_at is None and await revoke_principal_tokens(session, "staff", user_id):
            ended.append(int(user_id))
    return ended


async def update_settings(
    session: AsyncSession, principal: Principal, body: dict[str, Any], address: str | None
) -> Updated:
    """Apply ``{require_totp?, invite_expiry_days?, show_timeline?, hide_staff_receipts?,
    file_max_bytes?, portal_quota_bytes?, required_disclosures?, timezone?,
    review_staff_id?}`` (``invite_expiry_days`` ``null``: access until removed; a
    files limit ``null``: the server's default; ``required_disclosures``: a list of
    labels, rtportal.access.disclosures; ``timezone`` ``null``: UTC;
    ``review_staff_id`` ``null``: each matter's responsible staff member).

    Turning ``require_totp`` on revokes the tokens of the staff who have no
    enrolled second factor (their sessions never saw one; the next sign-in
    enrols one); ``Updated.ended`` names them, to close their websockets."""
    ended: list[int] = []
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
        if value and not firm.require_totp:
            ended = await _end_sessions_without_second_factor(session, firm.id)
        firm.require_totp = changed["require_totp"] = value
        if ended:
            changed["staff_signed_out"] = len(ended)
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
    for name in _FILE_LIMITS:
        if name in body:
            limit = body[name]
            if limit is not None and (
                not isinstance(limit, int)
                or isinstance(limit, bool)
                or not 1 <= limit <= MAX_FILE_LIMIT
            ):
                raise BadRequest(
                    f"{name}: null or an integer from 1 to {MAX_FILE_LIMIT}", field=name
                )
            setattr(firm, name, limit)
            changed[name] = limit
    if "required_disclosures" in body:
        labels = parse_required(body["required_disclosures"])
        firm.required_disclosures = json.dumps(labels)
        changed["required_disclosures"] = labels
    await _review_settings(session, firm, body, changed)
    for flag in _FLAGS:
        if flag in body:
            value = body[flag]
            if not isinstance(value, bool):
                raise BadRequest(f"{flag}: must be true or false", field=flag)
            setattr(firm, flag, value)
            changed[flag] = value
    if changed:
        await audit.record(
            session,
            firm_id=firm.id,
            action="firm.settings_changed",
            actor=principal,
            address=address,
            detail=changed,
        )
    return Updated(firm, ended)


def _timezone(value: object) -> str | None:
    """``null`` or an IANA timezone name this server knows, else ``bad_request``."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 64 and _TZ_RE.fullmatch(value):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
    raise BadRequest(
        "timezone: null or an IANA timezone name (such as Pacific/Auckland)",
        field="timezone",
        reason="timezone",
    )


async def _review_settings(
    session: AsyncSession, firm: Firm, body: dict[str, Any], changed: dict[str, Any]
) -> None:
    """The review inbox's settings: the firm's day and who reviews (docs/reviews.md)."""
    if "timezone" in body:
        firm.timezone = changed["timezone"] = _timezone(body["timezone"])
    if "review_staff_id" in body:
        who = body["review_staff_id"]
        if who is not None:
            found = None
            if type(who) is int and 1 <= who <= MAX_ID:
                found = await session.scalar(
                    select(StaffUser.id).where(
                        StaffUser.id == who,
                        StaffUser.firm_id == firm.id,
                        StaffUser.status == "active",
                        StaffUser.role != "bot",
                    )
                )
            if found is None:
                raise BadRequest(
                    "review_staff_id: null or an active staff member of this firm",
                    field="review_staff_id",
                    reason="no_such_reviewer",
                )
        firm.review_staff_id = changed["review_staff_id"] = who
