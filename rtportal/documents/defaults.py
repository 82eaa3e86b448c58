"""A matter type's default checklist: the document types a matter of that type
starts with, in order, each with the client step it blocks (or none).

The wire shape (``GET``/``PUT /api/v1/firm/matter-types/{id}/documents``):
``{"documents": [{"type": <document type id>, "blocks_step": <index of one
of the matter type's steps, or null>}]}``, the whole list at once (``PUT``
replaces it). A step is named by its 0-based index, as a phase names its
step (rtportal.timeline.types), so it is always a step of the same type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models_documents import DocumentDefault, DocumentType
from rtportal.db.models_threads import MatterType
from rtportal.documents.rows import MAX_BATCH, fields
from rtportal.errors import BadRequest
from rtportal.timeline.types import load

__all__ = ["DefaultInput", "defaults_body", "parse_defaults", "replace_defaults"]

DefaultInput = tuple[int, int | None]  # (document type id, step index)


def parse_defaults(body: dict[str, Any]) -> list[DefaultInput]:
    fields(body, frozenset({"documents"}))
    raw = body.get("documents")
    if not isinstance(raw, list) or len(raw) > MAX_BATCH:
        raise BadRequest(
            f"documents: a list of at most {MAX_BATCH}", reason="invalid_list", field="documents"
        )
    out: list[DefaultInput] = []
    for i, entry in enumerate(raw):
        where = f"documents[{i}]"
        if not isinstance(entry, dict):
            raise BadRequest(f"{where}: an object", reason="invalid_list", field=where)
        fields(entry, frozenset({"type", "blocks_step"}))
        type_id = entry.get("type")
        if not isinstance(type_id, int) or isinstance(type_id, bool) or not 1 <= type_id < 2**31:
            raise BadRequest(f"{where}.type: an id", reason="unknown_type", field=f"{where}.type")
        step = entry.get("blocks_step")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            raise BadRequest(
                f"{where}.blocks_step: a step index or null",
                reason="unknown_step",
                field=f"{where}.blocks_step",
            )
        out.append((type_id, step))
    if len({t for t, _ in out}) != len(out):
        raise BadRequest("documents: a type appears twice", reason="duplicate_type")
    return out


async def defaults_body(session: AsyncSession, matter_type: MatterType) -> dict[str, Any]:
    loaded = await load(session, matter_type)
    index = {s.id: i for i, s in enumerate(loaded.steps)}
    rows = await session.scalars(
        select(DocumentDefault)
        .where(DocumentDefault.matter_type_id == matter_type.id)
        .order_by(DocumentDefault.position)
    )
    return {
        "matter_type": matter_type.id,
        "documents": [
            {
                "type": r.document_type_id,
                "blocks_step": index.get(r.blocks_step_id) if r.blocks_step_id else None,
            }
            for r in rows
        ],
    }


async def replace_defaults(
    session: AsyncSession, matter_type: MatterType, wanted: list[DefaultInput]
) -> None:
    """Write ``wanted`` over the type's default checklist. Every type must be
    one of the firm's, not archived (``unknown_type``); every step one of the
    matter type's (``unknown_step``)."""
    loaded = await load(session, matter_type)
    ids = [t for t, _ in wanted]
    known = set(
        (
            await session.scalars(
                select(DocumentType.id).where(
                    DocumentType.id.in_(ids),
                    DocumentType.firm_id == matter_type.firm_id,
                    DocumentType.archived_at.is_(None),
                )
            )
        ).all()
    )
    if known != set(ids):
        raise BadRequest("documents: not a document type of the firm", reason="unknown_type")
    for _, step in wanted:
        if step is not None and step >= len(loaded.steps):
            raise BadRequest("documents: not a step of this matter type", reason="unknown_step")
    await session.execute(
        delete(DocumentDefault).where(DocumentDefault.matter_type_id == matter_type.id)
    )
    for position, (type_id, step) in enumerate(wanted):
        session.add(
            DocumentDefault(
                matter_type_id=matter_type.id,
                document_type_id=type_id,
                position=position,
                blocks_step_id=loaded.steps[step].id if step is not None else None,
            )
        )
    await session.flush()
