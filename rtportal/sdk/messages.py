"""Messages: seal for sending, and open what the server serves (verified or an exception).

Thread items (docs/threads.md): a send's client id is its envelope's
``msg_id`` (base64url), so the item id the server sets is
``<sender>.<msg_id>`` and a reader checks it against the envelope; an
``edit`` is an envelope whose ``parent`` is the edited item's ``msg_id``,
accepted only from the item's sender. A deleted item's events come back
``redacted`` (no blob): nothing to open.

A content event (``message``, ``note``, ``welcome``) is opened against the
thread its payload names, so a message moved to another thread fails the
signature; the sender's certificate, membership, epoch rules (a removed
member's later writes under an old epoch) and replay are the ``Directory``'s,
applied in ``open_message``. A ``msg_id`` already read at another event is a
replay; the same event read again (history re-read) is not. An event is
named by its seq (staff, bots) or, for a contact, by its cursor token (the
same text for the same event: protocol v2, docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtportal import base64url
from rtportal.crypto.certs import Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, CTYPE_TEXT, Body, Envelope, Header, Visibility
from rtportal.crypto.errors import Replay, WrongContext
from rtportal.crypto.rng import Rng, system_rng
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import NotEncrypted
from rtportal.sdk.state import MatterPin
from rtportal.sdk.transport import Outgoing

__all__ = ["CONTENT_KINDS", "Item", "event_at", "item_of", "open_event", "outgoing", "seal"]

CONTENT_KINDS = frozenset({"message", "note", "welcome", "edit"})
BLOB_MAX = 256 * 1024


@dataclass(frozen=True, slots=True)
class Item:
    """One verified, decrypted message."""

    at: int | str  # the event's seq (staff, bots) or cursor token (contacts)
    kind: str
    thread: str
    sender: str
    role: Role
    header: Header
    body: Body
    item: str | None = None  # the item's id; an edit: the id of the item it edits
    # The ids of the files its body's attachments describe, in their order (the
    # payload's, unsigned: a download is checked against its descriptor).
    files: tuple[str, ...] = ()


def item_of(header: Header) -> str:
    """The id the server gives the item this envelope makes (``<sender>.<msg_id>``)."""
    return f"{header.sender}.{base64url.encode(header.msg_id)}"


def seal(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    thread: str,
    body: Body,
    now_ms: int,
    vis: Visibility = Visibility.PORTAL,
    parent: bytes | None = None,
    rng: Rng = system_rng,
) -> Envelope:
    """Under the newest verified epoch only (the Directory refuses a stale one)."""
    return d.seal_message(
        actor.signer(matter),
        sender_id=actor.uid,
        matter=matter,
        thread=thread,
        plaintext=body.encode(),
        ts_ms=now_ms,
        ctype=CTYPE_BODY,
        vis=vis,
        parent=parent,
        rng=rng,
    )


def outgoing(
    matter: str,
    thread: str,
    env: Envelope,
    *,
    to: list[int] | None = None,
    edits: str | None = None,
    files: list[str] | None = None,
) -> Outgoing:
    """The send of ``env``: staff-only envelopes are ``note``s (audience staff);
    ``to``: a staff member's new client thread's recipients; ``edits``: the
    item this envelope replaces (an ``edit``); ``files``: the ids of the files
    its body's descriptors describe, in their order. Its id is the envelope's
    ``msg_id``."""
    blob = base64url.encode(env.encode())
    cid = base64url.encode(env.header.msg_id)
    staff = env.header.vis is Visibility.STAFF
    audience = "staff" if staff else "portal"
    if edits is not None:
        return Outgoing(matter, "edit", audience, {"item": edits}, blob, cid)
    payload: dict[str, Any] = {"thread": thread}
    if to is not None and not staff:
        payload["to"] = list(to)
    if files:
        payload["files"] = list(files)
    return Outgoing(matter, "note" if staff else "message", audience, payload, blob, cid)


def open_event(d: Directory, pin: MatterPin, event: dict[str, Any], now_ms: int) -> Item | None:
    """``None`` for events that carry no content (phase, access, ...); else verified or raises."""
    kind = event["kind"]
    if kind not in CONTENT_KINDS or event.get("redacted") is True:
        return None  # no content, or a deleted item's (its blob erased)
    matter, at = event["matter"], event_at(event)
    payload = event.get("payload") or {}
    thread = payload.get("thread")
    blob = base64url.decode(event.get("blob"), BLOB_MAX)
    if blob is None or not isinstance(thread, str):
        raise NotEncrypted(f"{matter} event {at}: a {kind} without an rtp1 envelope and thread")
    env = Envelope.decode(blob)
    msg_id = env.header.msg_id
    seen_at = pin.seen.get(msg_id)
    if seen_at is not None and seen_at != at:
        raise Replay(f"{matter} event {at}: msg_id read before at event {seen_at}")
    if seen_at == at:
        d.matter(matter).seen.discard(msg_id)  # the same event read again, not a replay
    header, cert, plaintext = d.open_message(env, matter=matter, thread=thread, now_ms=now_ms)
    item = _item_checked(kind, payload, header, matter, at)
    pin.remember(msg_id, at)
    if header.ctype == CTYPE_TEXT:
        body = Body("", plaintext.decode("utf-8"))
    else:
        body = Body.decode(plaintext)
    listed = payload.get("files")
    files = tuple(f for f in listed if isinstance(f, str)) if isinstance(listed, list) else ()
    return Item(at, kind, thread, header.sender, cert.role, header, body, item, files)


def _item_checked(
    kind: str, payload: dict[str, Any], header: Header, matter: str, at: int | str
) -> str | None:
    """The item id the server set, checked against the envelope (``WrongContext``)."""
    item = payload.get("item")
    if kind == "edit":
        # Only the item's sender edits it, and the envelope names the item.
        who, _, cid = str(item).partition(".")
        if who != header.sender or header.parent is None or base64url.encode(header.parent) != cid:
            raise WrongContext(f"{matter} event {at}: an edit not by the item's sender")
        return str(item)
    if item is None:
        return None  # stored before threads
    if item != item_of(header):
        raise WrongContext(f"{matter} event {at}: the item id does not match its envelope")
    return str(item)


def event_at(event: dict[str, Any]) -> int | str:
    """Where ``event`` is: ``seq`` for staff and bots, ``cursor`` for a contact."""
    if "cursor" in event:
        if not isinstance(event["cursor"], str):
            raise NotEncrypted("an event cursor that is not a token")
        return str(event["cursor"])
    return int(event["seq"])
