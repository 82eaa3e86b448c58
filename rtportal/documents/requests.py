"""Add to portal: staff select checklist items and request them of the clients.

Each named item that is ``not_requested`` becomes ``requested`` (with the
time and who asked), addressed to the clients named in ``to`` (client
members of the matter, at most ``MAX_TO``) or, without ``to``, to every
client member of the matter at that moment (as a thread opener without
``to``, docs/threads.md). One ``document`` event (``action: requested``)
names every item the request changed; items already requested or further
along are left as they are (a retry changes nothing and writes nothing).
A provided document is shared, never requested (``not_a_request``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.membership import live
from rtportal.db.models import Matter, MatterMember, utcnow
from rtportal.db.models_documents import DocumentItem, DocumentRecipient
from rtportal.documents.changes import Change, append_event
from rtportal.documents.rows import MAX_TO, fields, no_item, refs
from rtportal.errors import BadRequest, PreconditionFailed
from rtportal.events.unit import Unit
from rtportal.files.quota import lock_matter
from rtportal.keys import ids
from rtportal.principal import Principal

__all__ = ["client_members", "parse_request", "request_items"]


def parse_request(body: dict[str, Any]) -> tuple[list[str], list[int] | None]:
    """``{"items": [ids], "to"?: [contact ids]}``."""
    fields(body, frozenset({"items", "to"}))
    items = refs(body.get("items"))
    to = body.get("to")
    if to is None:
        return items, None
    if (
        not isinstance(to, list)
        or not 1 <= len(to) <= MAX_TO
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in to)
        or len(set(to)) != len(to)
    ):
        raise BadRequest(
            f"to: 1 to {MAX_TO} distinct contact ids", reason="document_recipients", field="to"
        )
    return items, sorted(to)


async def client_members(session: AsyncSession, matter_id: int) -> list[int]:
    """The matter's live client members, ascending."""
    found = await session.scalars(
        select(MatterMember.principal_id)
        .where(
            MatterMember.matter_id == matter_id,
            MatterMember.principal_kind == "contact",
            MatterMember.role == "client",
            live(),
        )
        .order_by(MatterMember.principal_id)
    )
    return [int(c) for c in found]


async def request_items(
    unit: Unit, principal: Principal, matter: Matter, wanted: list[str], to: list[int] | None
) -> Change:
    session = unit.session
    await lock_matter(session, matter.id)
    rows = list(
        await session.scalars(
            select(DocumentItem)
            .where(DocumentItem.matter_id == matter.id, DocumentItem.ref.in_(wanted))
            .order_by(DocumentItem.id)
            .execution_options(populate_existing=True)
        )
    )
    if len(rows) != len(wanted):
        raise no_item()
    if any(r.provided for r in rows):
        raise PreconditionFailed("not_a_request", "a provided document is shared, not requested")
    members = await client_members(session, matter.id)
    if to is None:
        if not members:
            raise PreconditionFailed("no_clients", "the matter has no client members")
        to = members
    elif not set(to) <= set(members):
        raise BadRequest(
            "to: client members of the matter", reason="document_recipients", field="to"
        )
    change = Change(items=rows)
    now, who = utcnow(), ids.of(principal)
    fresh = [r for r in rows if r.status == "not_requested"]
    for row in fresh:
        row.status, row.requested_at, row.requested_by = "requested", now, who
        for contact_id in to:
            session.add(DocumentRecipient(item_id=row.id, contact_id=contact_id))
    if not fresh:
        return change
    await session.flush()
    payload = {
        "action": "requested",
        "items": [r.ref for r in fresh],
        "to": to,
        "types": sorted({r.document_type_id for r in fresh}),
    }
    change.events.append(await append_event(unit, matter, principal, "document", payload))
    return change
