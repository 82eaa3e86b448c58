"""Validation of an append request against the kind registry and the limits."""

from __future__ import annotations

import re
from typing import TypeGuard

from rtportal.errors import BadRequest, PayloadTooLarge
from rtportal.events.event import canonical_json
from rtportal.events.kinds import KINDS
from rtportal.events.send import Send
from rtportal.principal import Principal

__all__ = ["valid_client_id", "valid_thread", "validate"]

_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.:~-]{1,64}")
_THREAD_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROLE = {"staff": "staff", "contact": "a contact", "bot": "a bot"}


def valid_client_id(client_id: str) -> bool:
    """Client ids: 1-64 characters of ``A-Za-z0-9_.:~-`` (uuids, ulids fit)."""
    return isinstance(client_id, str) and _CLIENT_ID_RE.fullmatch(client_id) is not None


def valid_thread(thread: object) -> TypeGuard[str]:
    """Thread ids (docs/threads.md "Ids"): 1-64 of ``A-Za-z0-9_-``. The one rule for a
    new thread's send, the thread paths and the websocket's thread frames."""
    return isinstance(thread, str) and _THREAD_RE.fullmatch(thread) is not None


def validate(
    actor: Principal, send: Send, payload_max: int, blob_max: int, *, system: bool = False
) -> str:
    """Check ``send`` for ``actor``; returns the canonical payload text.

    Order: the shape of the request, the limits (bytes), then the kind's
    rules (a system kind only from the server's services, who may write it,
    its audiences, its payload schema). Every refusal is ``BadRequest`` or
    ``PayloadTooLarge`` with a message naming what is wrong. ``system``: the
    server's own service writes (``Unit.append(..., system=True)``), which
    may write system kinds in the kind's audiences, whoever the actor is.
    """
    kind = KINDS.get(send.kind) if isinstance(send.kind, str) else None
    if kind is None:
        raise BadRequest(f"kind: unknown (registered kinds: {', '.join(sorted(KINDS))})")
    if send.client_id is not None and not valid_client_id(send.client_id):
        raise BadRequest("client_id must be 1-64 characters of A-Z a-z 0-9 _ . : ~ -")
    payload, blob = send.payload, send.blob
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    if blob is not None and not isinstance(blob, bytes | bytearray):
        raise BadRequest("blob must be bytes")
    try:
        text = canonical_json(payload)
        size = len(text.encode("utf-8"))  # a lone surrogate raises UnicodeEncodeError here
    except (TypeError, ValueError, RecursionError):
        raise BadRequest("payload is not valid JSON (NaN, Infinity, lone surrogate?)") from None
    if size > payload_max:
        raise PayloadTooLarge(f"payload is over {payload_max} bytes")
    if blob is not None and len(blob) > blob_max:
        raise PayloadTooLarge(f"blob is over {blob_max} bytes")
    if kind.system and not system:
        raise BadRequest(f"kind {kind.name!r} is written only by the server")
    if not system and actor.kind not in kind.writers:
        raise BadRequest(f"kind {kind.name!r} cannot be written by {_ROLE[actor.kind]}")
    if send.audience not in kind.audiences:
        allowed = " or ".join(repr(a) for a in kind.audiences)
        raise BadRequest(f"audience of kind {kind.name!r} must be {allowed}")
    if not system and not actor.is_staff and send.audience != "portal":
        raise BadRequest("contacts may only append events with audience 'portal'")
    if blob and not kind.blob:
        raise BadRequest(f"kind {kind.name!r} carries no blob")
    kind.payload.check(payload, "payload")
    return text
