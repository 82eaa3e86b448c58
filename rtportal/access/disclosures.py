"""The disclosure precondition: documents a matter must have shared before a
contact is invited to its portal (docs/documents.md "Disclosures").

A firm names them by label (``firms.required_disclosures``, a JSON list set
with ``PATCH /api/v1/firm``): e.g. "Privacy disclosure" and "Credit guide"
(in New Zealand "Acknowledgement and declaration", "Adviser guide",
"ROMA"). A label is met when the matter's checklist holds a document the
firm provides, of a type with that label (compared case-insensitively),
shared with the clients. Until every label is met an invite round is
refused: ``precondition_failed`` ``disclosure_missing`` with ``missing``,
the labels not met, in the firm's order.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm
from rtportal.db.models_documents import DocumentItem, DocumentType
from rtportal.errors import BadRequest, PreconditionFailed

__all__ = ["MAX_LABELS", "check_disclosures", "missing", "parse_required", "required"]

MAX_LABELS = 20
_MAX_LABEL = 200


def parse_required(value: Any) -> list[str]:
    """A list of at most ``MAX_LABELS`` distinct labels (1-200 characters after
    trimming, one line each), else ``bad_request`` ``invalid_disclosures``."""
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise _refuse()
    labels = []
    for raw in value:
        if not isinstance(raw, str):
            raise _refuse()
        label = raw.strip()
        if not 1 <= len(label) <= _MAX_LABEL or any(
            unicodedata.category(c).startswith("C") for c in label
        ):
            raise _refuse()
        labels.append(label)
    if len({label.casefold() for label in labels}) != len(labels):
        raise _refuse()
    return labels


def _refuse() -> BadRequest:
    return BadRequest(
        f"required_disclosures: at most {MAX_LABELS} distinct labels of 1-{_MAX_LABEL} characters",
        reason="invalid_disclosures",
        field="required_disclosures",
    )


def required(firm: Firm) -> list[str]:
    """The firm's required labels (a stored value that does not read: none)."""
    try:
        value = json.loads(firm.required_disclosures or "[]")
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


async def missing(session: AsyncSession, firm: Firm, matter_id: int) -> list[str]:
    """The firm's required labels the matter has not shared, in the firm's order."""
    labels = required(firm)
    if not labels:
        return []
    shared = await session.scalars(
        select(DocumentType.label)
        .join(DocumentItem, DocumentItem.document_type_id == DocumentType.id)
        .where(
            DocumentItem.matter_id == matter_id,
            DocumentItem.provided.is_(True),
            DocumentItem.status == "shared",
        )
    )
    have = {label.casefold() for label in shared}
    return [label for label in labels if label.casefold() not in have]


async def check_disclosures(session: AsyncSession, firm: Firm, matter_id: int) -> None:
    """``precondition_failed`` ``disclosure_missing`` (``missing``: the labels) or nothing."""
    absent = await missing(session, firm, matter_id)
    if absent:
        raise PreconditionFailed(
            "disclosure_missing",
            "the matter must share these disclosure documents first: " + ", ".join(absent),
            missing=absent,
        )
