"""A matter's checklist: what each caller sees of it, and adding documents to it.

Staff and bots see every item; a client member sees the items
``client_sees_item`` allows (rtportal.db.models_documents: requested of
them, or of anyone when their membership sees the applicants; provided
documents once shared) and, of each, neither the type's id, the staff who
acted, nor whom else it is addressed to. Staff add documents by type, or
the matter type's defaults (those not on the checklist yet); each starts
``not_requested`` (``not_shared`` for a provided one) and nobody but staff
learns of it until it is requested or shared.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import base64url
from rtportal.db.models import Matter
from rtportal.db.models_documents import (
    DocumentDefault,
    DocumentFile,
    DocumentItem,
    DocumentRecipient,
    DocumentType,
    client_sees_item,
)
from rtportal.documents.envelopes import uploads_of
from rtportal.documents.rows import MAX_BATCH, MAX_ITEMS, fields, new_ref
from rtportal.errors import BadRequest, PreconditionFailed
from rtportal.events.cursor import CursorCodec
from rtportal.events.event import iso_time
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.timeline.views import loaded_of

__all__ = ["add_items", "checklist", "item_bodies", "parse_add", "visible_items"]


def _time(value: Any) -> str | None:
    return None if value is None else iso_time(value)


async def visible_items(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    see_applicants: bool,
    refs: list[str] | None = None,
) -> list[DocumentItem]:
    """The matter's items ``principal`` sees (of ``refs``, if given), in checklist order."""
    query = select(DocumentItem).where(DocumentItem.matter_id == matter.id)
    if refs is not None:
        query = query.where(DocumentItem.ref.in_(refs))
    if not principal.is_staff:
        query = query.where(client_sees_item(principal.id, see_applicants))
    return list(await session.scalars(query.order_by(DocumentItem.id)))


async def item_bodies(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    rows: list[DocumentItem],
    cursors: CursorCodec | None = None,
) -> list[dict[str, Any]]:
    """The items as ``principal`` may see them (``rows`` already filtered); with
    ``cursors``, each with its current files' envelopes (``envelopes.uploads_of``)."""
    if not rows:
        return []
    uploads = (
        await uploads_of(
            session,
            matter,
            rows,
            lambda seq: cursors.event_view({"seq": seq}, principal, matter.id),
        )
        if cursors is not None
        else None
    )
    item_ids = [r.id for r in rows]
    types = {
        t.id: t
        for t in await session.scalars(
            select(DocumentType).where(DocumentType.id.in_({r.document_type_id for r in rows}))
        )
    }
    files: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for f in await session.scalars(
        select(DocumentFile)
        .where(DocumentFile.item_id.in_(item_ids))
        .order_by(DocumentFile.round, DocumentFile.added_at, DocumentFile.file_id)
    ):
        files[f.item_id].append({"id": f.file_id, "round": f.round})
    loaded = await loaded_of(session, matter)
    steps = {s.id: i for i, s in enumerate(loaded.steps)} if loaded is not None else {}
    to: dict[int, list[int]] = defaultdict(list)
    if principal.is_staff:
        for item_id, contact_id in await session.execute(
            select(DocumentRecipient.item_id, DocumentRecipient.contact_id)
            .where(DocumentRecipient.item_id.in_(item_ids))
            .order_by(DocumentRecipient.contact_id)
        ):
            to[int(item_id)].append(int(contact_id))
    out = []
    for r in rows:
        kind = types[r.document_type_id]
        body: dict[str, Any] = {
            "id": r.ref,
            "label": kind.label,
            "description": kind.description,
            "provided": r.provided,
            "status": r.status,
            "thread": r.thread,
            "requested_at": _time(r.requested_at),
            "uploaded_at": _time(r.uploaded_at),
            "decided_at": _time(r.decided_at),
            "round": r.round,
            "reason": (
                base64url.encode(r.reason_blob)
                if r.status == "rejected" and r.reason_blob
                else None
            ),
            "files": files.get(r.id, []),
            **({} if uploads is None else {"uploads": uploads.get(r.id, [])}),
            "blocks_step": steps.get(r.blocks_step_id) if r.blocks_step_id else None,
        }
        if principal.is_staff:
            body.update(
                type=r.document_type_id,
                to=to.get(r.id, []),
                created_at=iso_time(r.created_at),
                created_by=r.created_by,
                requested_by=r.requested_by,
                decided_by=r.decided_by,
            )
        out.append(body)
    return out


async def checklist(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    see_applicants: bool,
    cursors: CursorCodec | None = None,
) -> list[dict[str, Any]]:
    rows = await visible_items(session, principal, matter, see_applicants)
    return await item_bodies(session, principal, matter, rows, cursors)


def parse_add(body: dict[str, Any]) -> tuple[list[int] | None, int | None]:
    """``{"types": [ids], "blocks_step"?: index}`` or ``{"from_defaults": true}``."""
    fields(body, frozenset({"types", "from_defaults", "blocks_step"}))
    step = body.get("blocks_step")
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise BadRequest(
            "blocks_step: a step index or null", reason="unknown_step", field="blocks_step"
        )
    if body.get("from_defaults") is True and "types" not in body:
        if step is not None:
            raise BadRequest(
                "blocks_step comes from the defaults", reason="unknown_field", field="blocks_step"
            )
        return None, None
    raw = body.get("types")
    if (
        not isinstance(raw, list)
        or not 1 <= len(raw) <= MAX_BATCH
        or not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t < 2**31 for t in raw)
    ):
        # A type may appear twice: two payslips, a passport for each applicant.
        raise BadRequest(
            f"types: 1 to {MAX_BATCH} document type ids (or from_defaults: true)",
            reason="unknown_type",
            field="types",
        )
    return list(raw), step


async def _wanted(
    session: AsyncSession, matter: Matter, types: list[int] | None, step: int | None
) -> list[tuple[DocumentType, int | None]]:
    """(type, blocked step id) to add: the named types, or the defaults not on the list."""
    loaded = await loaded_of(session, matter)
    if types is None:
        if loaded is None:
            raise PreconditionFailed("no_matter_type", "the matter has no matter type")
        present = set(
            (
                await session.scalars(
                    select(DocumentItem.document_type_id).where(DocumentItem.matter_id == matter.id)
                )
            ).all()
        )
        rows = await session.execute(
            select(DocumentType, DocumentDefault.blocks_step_id)
            .join(DocumentDefault, DocumentDefault.document_type_id == DocumentType.id)
            .where(
                DocumentDefault.matter_type_id == loaded.type.id,
                DocumentType.archived_at.is_(None),
            )
            .order_by(DocumentDefault.position)
        )
        return [(t, s) for t, s in rows if t.id not in present]
    step_id = None
    if step is not None:
        if loaded is None or step >= len(loaded.steps):
            raise BadRequest(
                "blocks_step: not a step of the matter's type",
                reason="unknown_step",
                field="blocks_step",
            )
        step_id = loaded.steps[step].id
    found = {
        t.id: t
        for t in await session.scalars(
            select(DocumentType).where(
                DocumentType.id.in_(types),
                DocumentType.firm_id == matter.firm_id,
                DocumentType.archived_at.is_(None),
            )
        )
    }
    if set(found) != set(types):
        raise BadRequest("types: not a document type of the firm", reason="unknown_type")
    return [(found[t], step_id) for t in types]


async def add_items(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    types: list[int] | None,
    step: int | None,
) -> list[DocumentItem]:
    """Add documents to the checklist (the caller holds the matter's lock); the
    new rows. Staff work only: no event (clients learn of an item when it is
    requested or shared)."""
    wanted = await _wanted(session, matter, types, step)
    count = await session.scalar(
        select(func.count()).select_from(DocumentItem).where(DocumentItem.matter_id == matter.id)
    )
    if int(count or 0) + len(wanted) > MAX_ITEMS:
        raise BadRequest(f"a checklist holds at most {MAX_ITEMS} documents", reason="too_many")
    added = []
    for kind, step_id in wanted:
        row = DocumentItem(
            ref=new_ref(),
            matter_id=matter.id,
            document_type_id=kind.id,
            provided=kind.is_disclosure,
            status="not_shared" if kind.is_disclosure else "not_requested",
            thread=new_ref(),
            blocks_step_id=step_id,
            created_by=ids.of(principal),
        )
        session.add(row)
        added.append(row)
    await session.flush()
    return added
