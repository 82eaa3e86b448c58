"""A client's upload against a request: the files it names become the item's.

The client first uploads each file (``POST /api/v1/matters/{ref}/files``),
then names them here with ``blob``: an rtp1 envelope whose body holds the
files' descriptors (name, type, file key; docs/files.md), bound to the
item's thread; the server never reads it. The files are claimed as an
item's ``payload.files`` are (stored files of this matter, uploaded by the
caller, free or this item's already: else ``no_such_file``). A request that
is ``requested`` or ``rejected`` starts a new upload round and becomes
``uploaded``; one already ``uploaded`` takes more files into the same
round. One ``document`` event (``action: uploaded``) carries the new files
and the envelope; a client's upload is queued for review with it
(``rtportal.reviews``). Files the item holds already are not news: a retry
changes nothing and writes nothing. An ``accepted`` request takes no more
(``document_accepted``).
"""

from __future__ import annotations

from rtportal.db.models import Matter, utcnow
from rtportal.db.models_documents import client_sees_item
from rtportal.documents.changes import (
    Change,
    add_files,
    append_event,
    locked_item,
    recipients,
    take_files,
)
from rtportal.errors import PreconditionFailed
from rtportal.events.unit import Unit
from rtportal.principal import Principal
from rtportal.reviews.enqueue import enqueue

__all__ = ["submit"]

_OPEN = frozenset({"requested", "rejected"})


async def submit(
    unit: Unit,
    principal: Principal,
    matter: Matter,
    see_applicants: bool,
    ref: str,
    files: list[str],
    blob: bytes,
) -> Change:
    visible = None if principal.is_staff else client_sees_item(principal.id, see_applicants)
    item = await locked_item(unit, matter, ref, visible)
    if item.provided:
        raise PreconditionFailed("not_a_request", "the firm provides this document")
    if item.status == "not_requested":
        raise PreconditionFailed("document_not_requested", "the document is not requested")
    if item.status == "accepted":
        raise PreconditionFailed("document_accepted", "the document is accepted already")
    session = unit.session
    new = await take_files(session, principal, matter, item, files, blob)
    change = Change(items=[item])
    if not new:
        return change
    if item.status in _OPEN:
        item.round += 1
        item.status = "uploaded"
    item.uploaded_at = utcnow()
    payload = {
        "action": "uploaded",
        "items": [item.ref],
        "to": await recipients(session, [item.id]),
        "files": new,
        "round": item.round,
        "types": [item.document_type_id],
    }
    event = await append_event(unit, matter, principal, "document", payload, blob)
    await add_files(session, principal, item, new, event.seq)
    change.events.append(event)
    change.received.append(item)
    if principal.kind == "contact":
        # Received from a client: queued for review in this transaction, one review per
        # upload (its event), labelled "Portal Doc" (docs/reviews.md).
        queued = await enqueue(
            session,
            matter,
            "document",
            f"{item.ref}.{event.seq}",
            principal.id,
            request=item.ref,
            files=new,
        )
        if queued is not None:
            change.queued.append(queued)
    return change
