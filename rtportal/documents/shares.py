"""A document the firm provides (a disclosure), shared with the matter's clients.

Staff upload its files (``POST /api/v1/matters/{ref}/files``) and name them
here with ``blob``, the envelope of their descriptors (as a client's upload
against a request, rtportal.documents.uploads). The item becomes
``shared``: every client member of the matter sees it, those invited later
too (a disclosure is given before a portal is shared, docs/documents.md).
Sharing more files later is a new round; files the item holds already
change nothing. One ``document_shared`` event per change.
"""

from __future__ import annotations

from rtportal.db.models import Matter, utcnow
from rtportal.documents.changes import (
    Change,
    add_files,
    append_event,
    locked_item,
    take_files,
)
from rtportal.errors import PreconditionFailed
from rtportal.events.unit import Unit
from rtportal.keys import ids
from rtportal.principal import Principal

__all__ = ["share"]


async def share(
    unit: Unit, principal: Principal, matter: Matter, ref: str, files: list[str], blob: bytes
) -> Change:
    item = await locked_item(unit, matter, ref)
    if not item.provided:
        raise PreconditionFailed("not_provided", "the client provides this document")
    session = unit.session
    new = await take_files(session, principal, matter, item, files, blob)
    change = Change(items=[item])
    if not new:
        return change
    item.round += 1
    item.status = "shared"
    item.decided_at, item.decided_by = utcnow(), ids.of(principal)
    payload = {
        "items": [item.ref],
        "files": new,
        "types": [item.document_type_id],
    }
    event = await append_event(unit, matter, principal, "document_shared", payload, blob)
    await add_files(session, principal, item, new, event.seq)
    change.events.append(event)
    return change
