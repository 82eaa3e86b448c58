"""Welcome message templates of a firm, and merging their four fields.

A template has a subject and a body with merge fields ``{company}``,
``{client_name}``, ``{matter_ref}`` and ``{portal_link}``. Merging replaces
exactly those four names and nothing else: any other text in braces stays
as it is, nothing is evaluated, and sizes are bounded (``MAX_SUBJECT``,
``MAX_BODY`` before merging; the values are bounded by their columns).
Each firm has a default template, created the first time it is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import MessageTemplate
from rtportal.errors import BadRequest, Conflict, NotFound

__all__ = [
    "DEFAULT_BODY",
    "DEFAULT_SUBJECT",
    "FIELDS",
    "MAX_BODY",
    "MAX_SUBJECT",
    "TemplateInput",
    "default_template",
    "get_template",
    "list_templates",
    "merge",
    "parse_template",
    "save_template",
    "template_body",
]

FIELDS = ("company", "client_name", "matter_ref", "portal_link")
MAX_SUBJECT = 300
MAX_BODY = 10_000
MAX_NAME = 100
MAX_TEMPLATES = 50  # per firm
_FIELD_RE = re.compile(r"\{(company|client_name|matter_ref|portal_link)\}")

DEFAULT_SUBJECT = "Welcome to the {company} Secure Client Portal (Our Ref: {matter_ref})"
DEFAULT_BODY = (
    "Dear {client_name},\n\n"
    "Welcome to the {company} Secure Client Portal. It is where we will share "
    "updates on your matter ({matter_ref}), ask for the documents we need, and "
    "where you can message us securely at any time.\n\n"
    "To get started, open your personal link and choose a password:\n"
    "{portal_link}\n\n"
    "The link works once and for a limited time. If it has expired, reply to "
    "this email and we will send you a new one.\n\n"
    "Kind regards,\n{company}"
)


def merge(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each of the four merge fields named in ``values`` replaced.

    A field missing from ``values`` (the flyout's ``{portal_link}``) and any
    other brace stay literally; a value is inserted as text, never merged again.
    """
    return _FIELD_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class TemplateInput:
    name: str | None
    subject: str | None
    body: str | None
    is_default: bool | None


def _string(raw: object, field: str, maximum: int) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest(f"{field}: must be a non-empty string", field=field)
    if len(raw) > maximum:
        raise BadRequest(f"{field}: is over {maximum} characters", field=field)
    return raw


def parse_template(body: dict[str, Any], *, partial: bool = False) -> TemplateInput:
    unknown = set(body) - {"name", "subject", "body", "is_default"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    values: dict[str, str | None] = {}
    for field, maximum in (("name", MAX_NAME), ("subject", MAX_SUBJECT), ("body", MAX_BODY)):
        if field in body or not partial:
            values[field] = _string(body.get(field), field, maximum)
        else:
            values[field] = None
    is_default = body.get("is_default")
    if is_default is not None and not isinstance(is_default, bool):
        raise BadRequest("is_default: must be a boolean", field="is_default")
    return TemplateInput(values["name"], values["subject"], values["body"], is_default)


def template_body(row: MessageTemplate) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "subject": row.subject,
        "body": row.body,
        "is_default": row.is_default,
    }


async def default_template(session: AsyncSession, firm_id: int) -> MessageTemplate:
    """The firm's default welcome template, created on first use (write session)."""
    found = await session.execute(
        select(MessageTemplate)
        .where(MessageTemplate.firm_id == firm_id, MessageTemplate.is_default.is_(True))
        .order_by(MessageTemplate.id)
        .limit(1)
    )
    row = found.scalar_one_or_none()
    if row is not None:
        return row
    row = MessageTemplate(
        firm_id=firm_id,
        name="Welcome",
        subject=DEFAULT_SUBJECT,
        body=DEFAULT_BODY,
        is_default=True,
    )
    session.add(row)
    await session.flush()
    return row


async def list_templates(session: AsyncSession, firm_id: int) -> list[MessageTemplate]:
    await default_template(session, firm_id)
    rows = await session.execute(
        select(MessageTemplate)
        .where(MessageTemplate.firm_id == firm_id)
        .order_by(MessageTemplate.id)
        .limit(MAX_TEMPLATES)
    )
    return list(rows.scalars())


async def get_template(session: AsyncSession, firm_id: int, template_id: int) -> MessageTemplate:
    if not 1 <= template_id <= 2**31 - 1:  # 32-bit ids on PostgreSQL
        raise NotFound("no such template")
    row = await session.get(MessageTemplate, template_id)
    if row is None or row.firm_id != firm_id:
        raise NotFound("no such template")
    return row


async def save_template(
    session: AsyncSession, firm_id: int, data: TemplateInput, row: MessageTemplate | None = None
) -> MessageTemplate:
    """Create (``row`` None) or change a template; one default per firm."""
    if data.name is not None:
        clash = await session.execute(
            select(MessageTemplate.id).where(
                MessageTemplate.firm_id == firm_id, MessageTemplate.name == data.name
            )
        )
        other = clash.scalar_one_or_none()
        if other is not None and (row is None or other != row.id):
            raise Conflict("a template with this name exists", field="name")
    if row is None:
        await default_template(session, firm_id)
        count = len(await list_templates(session, firm_id))
        if count >= MAX_TEMPLATES:
            raise BadRequest(f"a firm has at most {MAX_TEMPLATES} templates")
        assert data.name is not None and data.subject is not None and data.body is not None
        row = MessageTemplate(firm_id=firm_id, name=data.name, subject="", body="")
        session.add(row)
    if data.name is not None:
        row.name = data.name
    if data.subject is not None:
        row.subject = data.subject
    if data.body is not None:
        row.body = data.body
    await session.flush()
    if data.is_default:
        await session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.firm_id == firm_id, MessageTemplate.id != row.id)
            .values(is_default=False)
        )
        row.is_default = True
        await session.flush()
    return row
