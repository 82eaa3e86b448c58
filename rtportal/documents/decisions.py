"""Staff decide on an upload: accept it, or reject it with a reason.

``uploaded`` -> ``accepted``; ``uploaded`` or ``accepted`` -> ``rejected``,
which asks the client for the document again (their next upload starts a
new round). The reason is ``blob``: an rtp1 envelope from the staff
browser, bound to the item's thread, that the server keeps and relays but
never reads (a reason is about the client's own document: it is content,
not configuration). Each decision records who and when, and writes one
``document`` event (the reason's envelope in its ``blob``). Deciding what is
decided already changes nothing (a retry); anything else is
``document_not_uploaded``. A decision is the upload's review: the open
reviews of uploads against the request close with it (``reviews.acts
.settle_documents``).
"""

from __future__ import annotations

from rtportal.db.models import Matter, utcnow
from rtportal.documents.changes import (
    Change,
    append_event,
    check_envelope,
    locked_item,
    recipients,
)
from rtportal.errors import PreconditionFailed
from rtportal.events.unit import Unit
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.reviews.acts import settle_documents

__all__ = ["decide"]


async def decide(
    unit: Unit,
    principal: Principal,
    matter: Matter,
    ref: str,
    accept: bool,
    reason: bytes | None = None,
) -> Change:
    """Accept (``accept``) or reject with ``reason`` the item ``ref`` (staff)."""
    item = await locked_item(unit, matter, ref)
    if item.provided:
        raise PreconditionFailed("not_a_request", "the firm provides this document")
    target = "accepted" if accept else "rejected"
    change = Change(items=[item])
    if item.status == target:
        return change
    allowed = {"uploaded"} if accept else {"uploaded", "accepted"}
    if item.status not in allowed:
        raise PreconditionFailed("document_not_uploaded", "nothing uploaded to decide on")
    if not accept:
        assert reason is not None  # the route requires one
        await check_envelope(unit.session, principal, matter, item.thread, reason)
        item.reason_blob = reason
    item.status = target
    item.decided_at, item.decided_by = utcnow(), ids.of(principal)
    await unit.session.flush()
    payload = {
        "action": target,
        "items": [item.ref],
        "to": await recipients(unit.session, [item.id]),
        "round": item.round,
        "types": [item.document_type_id],
    }
    event = await append_event(unit, matter, principal, "document", payload, reason)
    change.events.append(event)
    # Deciding on the upload is reviewing it: its open reviews close with the decision.
    change.queued += await settle_documents(unit.session, matter.id, item.ref, principal.id)
    return change
