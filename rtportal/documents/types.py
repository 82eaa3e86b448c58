"""A firm's document types: label, description, and whether the firm provides it.

Labels and descriptions are the firm's configuration, the same for every
client, like phase and step names: plaintext the server keeps (it matches
the firm's required disclosure labels against them; docs/documents.md says
why nothing of a client belongs in them). A label is unique per firm
(case-insensitively). Types are archived, never deleted: a matter's
checklist keeps naming them. ``is_disclosure`` is fixed at creation (an
item's direction follows its type). Refusals are ``bad_request`` with a
stable ``details.reason``; another firm's type is ``not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, utcnow
from rtportal.db.models_documents import DocumentType
from rtportal.documents.rows import fields
from rtportal.errors import BadRequest, NotFound
from rtportal.events.event import iso_time
from rtportal.timeline.types import checked_description, checked_name

__all__ = [
    "MAX_TYPES",
    "TypeChange",
    "create_type",
    "get_type",
    "list_types",
    "parse_type",
    "type_body",
    "update_type",
]

MAX_TYPES = 500  # per firm, archived ones included
_MAX_ID = 2**31 - 1
_CREATE = frozenset({"label", "description", "is_disclosure"})
_PATCH = frozenset({"label", "description", "archived"})


@dataclass(frozen=True, slots=True)
class TypeChange:
    label: str | None
    description: str | None
    is_disclosure: bool
    archived: bool | None


def _flag(body: dict[str, Any], name: str) -> bool | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise BadRequest(f"{name}: true or false", reason="invalid_flag", field=name)
    return value


def parse_type(body: dict[str, Any], *, partial: bool) -> TypeChange:
    """``{label, description?, is_disclosure?}`` to create; ``{label?, description?,
    archived?}`` to change (``partial``)."""
    fields(body, _PATCH if partial else _CREATE)
    label = checked_name(body.get("label"), "label") if "label" in body or not partial else None
    description = (
        checked_description(body.get("description"), "description")
        if "description" in body or not partial
        else None
    )
    disclosure = False if partial else bool(_flag(body, "is_disclosure"))
    return TypeChange(label, description, disclosure, _flag(body, "archived") if partial else None)


def type_body(row: DocumentType) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "description": row.description,
        "is_disclosure": row.is_disclosure,
        "archived": row.archived_at is not None,
        "created_at": iso_time(row.created_at),
    }


async def get_type(session: AsyncSession, firm_id: int, type_id: object) -> DocumentType:
    """The firm's type; another firm's, a missing one and a bad id alike ``not_found``."""
    if not isinstance(type_id, int) or isinstance(type_id, bool) or not 1 <= type_id <= _MAX_ID:
        raise NotFound("no such document type")
    row = await session.get(DocumentType, type_id)
    if row is None or row.firm_id != firm_id:
        raise NotFound("no such document type")
    return row


async def list_types(session: AsyncSession, firm_id: int) -> list[DocumentType]:
    found = await session.scalars(
        select(DocumentType)
        .where(DocumentType.firm_id == firm_id)
        .order_by(func.lower(DocumentType.label), DocumentType.id)
    )
    return list(found)


async def _check_label(session: AsyncSession, firm_id: int, label: str, own: int | None) -> None:
    query = select(DocumentType.id).where(
        DocumentType.firm_id == firm_id, func.lower(DocumentType.label) == label.lower()
    )
    if own is not None:
        query = query.where(DocumentType.id != own)
    if (await session.scalars(query)).first() is not None:
        raise BadRequest(
            "the firm has a document type of that label", reason="duplicate_label", field="label"
        )


async def create_type(session: AsyncSession, firm_id: int, change: TypeChange) -> DocumentType:
    assert change.label is not None  # parse_type(partial=False) requires it
    # The firm's row serialises concurrent creations (the label check, the count).
    await session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update())
    count = await session.scalar(
        select(func.count()).select_from(DocumentType).where(DocumentType.firm_id == firm_id)
    )
    if int(count or 0) >= MAX_TYPES:
        raise BadRequest(f"at most {MAX_TYPES} document types", reason="too_many_types")
    await _check_label(session, firm_id, change.label, None)
    row = DocumentType(
        firm_id=firm_id,
        label=change.label,
        description=change.description or "",
        is_disclosure=change.is_disclosure,
    )
    session.add(row)
    await session.flush()
    return row


async def update_type(
    session: AsyncSession, firm_id: int, type_id: object, change: TypeChange
) -> DocumentType:
    row = await get_type(session, firm_id, type_id)
    if change.label is not None and change.label != row.label:
        # The firm's row serialises renames with creations and each other, so the
        # label check holds until commit (two admins renaming to one label: the
        # second gets ``label_taken``, never the unique index's error).
        await session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update())
        await _check_label(session, firm_id, change.label, row.id)
        row.label = change.label
    if change.description is not None:
        row.description = change.description
    if change.archived is not None and change.archived != (row.archived_at is not None):
        row.archived_at = utcnow() if change.archived else None
    await session.flush()
    return row
