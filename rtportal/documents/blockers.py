"""What stands between a matter and the client's next step: the open requests
that block it.

A checklist item may name a client step it blocks (``blocks_step``, from
the matter type's defaults or given when the item is added): the item must
be accepted before the matter moves into that step. The blockers of a
matter are its items blocking the step after the current one (the first
step before any), not accepted yet: for a client the requests they see
that are ``requested``, ``rejected`` or ``uploaded`` (awaiting review);
for staff also those not requested yet. The server does not stop a phase
move: staff decide; the list tells the client what they are waiting on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.db.models_documents import DocumentItem, DocumentType, client_sees_item
from rtportal.principal import Principal
from rtportal.timeline.views import loaded_of

__all__ = ["blocking"]

_OPEN = ("requested", "rejected", "uploaded")


async def blocking(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    see_applicants: bool,
    current: int | None,
) -> list[dict[str, Any]]:
    """``[{"id", "label", "status"}]`` of the open items blocking the step after
    ``current`` (the timeline's current step index; ``None``: before the first)."""
    loaded = await loaded_of(session, matter)
    following = 0 if current is None else current + 1
    if loaded is None or following >= len(loaded.steps):
        return []
    statuses = _OPEN + (("not_requested",) if principal.is_staff else ())
    query = (
        select(DocumentItem.ref, DocumentType.label, DocumentItem.status)
        .join(DocumentType, DocumentType.id == DocumentItem.document_type_id)
        .where(
            DocumentItem.matter_id == matter.id,
            DocumentItem.provided.is_(False),
            DocumentItem.blocks_step_id == loaded.steps[following].id,
            DocumentItem.status.in_(statuses),
        )
        .order_by(DocumentItem.id)
    )
    if not principal.is_staff:
        query = query.where(client_sees_item(principal.id, see_applicants))
    rows = await session.execute(query)
    return [{"id": ref, "label": label, "status": status} for ref, label, status in rows]
