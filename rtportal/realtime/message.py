"""The broker message format: topics, an event as published on its matter's topic,
the ephemeral messages of a matter's topic (receipts, typing, unread counts:
never stored) and the control messages of ``CTL_TOPIC``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtportal import jsonlimits, wirejson
from rtportal.errors import BadRequest
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal

__all__ = [
    "CTL_TOPIC",
    "EPHEMERAL_PREFIX",
    "CloseAccess",
    "ClosePrincipal",
    "Ephemeral",
    "decode_control",
    "decode_ephemeral",
    "encode_control",
    "encode_ephemeral",
    "encode_event_message",
    "matter_topic",
    "peek_event_message",
]

CTL_TOPIC = "ctl"  # the control plane: closes of a principal's or a session's connections


def matter_topic(matter_id: int) -> str:
    """The broker topic of a matter's events."""
    return f"m:{matter_id}"


def encode_event_message(event: StoredEvent) -> bytes:
    """``b"<matter_id>:<seq>:" + JSON(to_wire())`` as published on ``m:<id>``.

    Why a plain header before the JSON: every worker receives its own
    publishes back (Redis pub/sub has no "not to me"), and most messages a
    worker reads are such echoes or duplicates; the header lets it drop
    them without decoding the event (``peek_event_message``).
    """
    body = wirejson.dumpb(event.to_wire())
    return b"%d:%d:%b" % (event.matter_id, event.seq, body)


def peek_event_message(data: bytes) -> tuple[int, int, bytes]:
    """``(matter_id, seq, body)`` from the header; ``ValueError`` if malformed."""
    head_m, sep_m, rest = data.partition(b":")
    head_s, sep_s, body = rest.partition(b":")
    if not (sep_m and sep_s and head_m.isdigit() and head_s.isdigit()):
        raise ValueError("not an event message")
    matter_id, seq = int(head_m), int(head_s)
    if seq < 1:
        raise ValueError("bad seq")
    return matter_id, seq, body


@dataclass(frozen=True, slots=True)
class ClosePrincipal:
    """Close a principal's connections; only those of ``session_ids`` when given."""

    id: str  # of the message: a worker skips the echo of its own
    kind: str
    principal_id: int
    code: int
    session_ids: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class CloseAccess:
    """Close a principal's connections that hold ``matter_id`` (joined or sending)."""

    id: str
    matter_id: int
    kind: str
    principal_id: int
    code: int


def encode_control(ctl: ClosePrincipal | CloseAccess) -> bytes:
    """A control message as published on ``CTL_TOPIC`` (JSON)."""
    if isinstance(ctl, CloseAccess):
        body: dict[str, object] = {
            "op": "close_access",
            "id": ctl.id,
            "matter": ctl.matter_id,
            "kind": ctl.kind,
            "pid": ctl.principal_id,
            "code": ctl.code,
        }
    else:
        sids = None if ctl.session_ids is None else sorted(ctl.session_ids)
        body = {
            "op": "close_principal",
            "id": ctl.id,
            "kind": ctl.kind,
            "pid": ctl.principal_id,
            "code": ctl.code,
            "sids": sids,
        }
    return json.dumps(body).encode()


def decode_control(data: bytes) -> ClosePrincipal | CloseAccess:
    """The control message in ``data``; ``ValueError`` if it is not a valid one."""
    try:
        msg = jsonlimits.loads(data, "control message")
        if jsonlimits.too_deep(msg, jsonlimits.MAX_DOCUMENT_DEPTH):
            raise ValueError("control message nested too deep")
        op, msg_id, kind, pid, code = msg["op"], msg["id"], msg["kind"], msg["pid"], msg["code"]
    except (BadRequest, ValueError, KeyError, TypeError) as exc:
        raise ValueError("malformed control message") from exc
    if not (isinstance(msg_id, str) and isinstance(kind, str)):
        raise ValueError("malformed control message")
    if not (type(pid) is int and type(code) is int):
        raise ValueError("malformed control message")
    if op == "close_access":
        matter = msg.get("matter")
        if type(matter) is not int:
            raise ValueError("malformed control message")
        return CloseAccess(msg_id, matter, kind, pid, code)
    if op != "close_principal":
        raise ValueError(f"unknown control operation {op!r}")
    sids = msg.get("sids")
    if sids is not None and not (
        isinstance(sids, list) and all(isinstance(sid, str) for sid in sids)
    ):
        raise ValueError("malformed control message")
    return ClosePrincipal(msg_id, kind, pid, code, None if sids is None else frozenset(sids))


# --- ephemeral messages ---------------------------------------------------------------

# An event message starts with its matter id (digits): this prefix can never
# be one, so one byte comparison tells the two kinds of a matter topic apart.
EPHEMERAL_PREFIX = b"e:"
# Contacts one ephemeral message may name: a matter's client members (the
# invite lists are far smaller); a message naming more is malformed.
_MAX_CONTACTS = 1000


@dataclass(frozen=True, slots=True)
class Ephemeral:
    """A server frame for some connections of a matter, never stored (docs/threads.md).

    ``frame`` is the encoded frame, built once by the publisher (who also
    decided who may see it: the thread's visibility rule, evaluated against
    the database) and the same for every receiver; ``reaches`` is the
    per-connection filter each worker applies. ``user`` (``(kind, id)`` of a
    principal), when set, sends it only to that user's connections; otherwise staff and bots
    get it when ``staff`` and contacts when ``contacts`` names them.
    ``skip_user`` and ``skip_conn`` exclude the typist's own connections
    and the connection a read mark came from. ``portal_frame``, when set, is
    what contacts get instead of ``frame`` (a frame whose cursor is spelled
    per viewer class).
    """

    id: str  # a worker skips the echo of its own
    matter_id: int
    matter: str
    frame: str
    staff: bool = True
    contacts: frozenset[int] = frozenset()
    user: tuple[str, int] | None = None
    skip_user: tuple[str, int] | None = None
    skip_conn: str | None = None
    portal_frame: str | None = None

    def frame_for(self, principal: Principal) -> str:
        """The frame as ``principal``'s viewer class reads it."""
        if principal.is_staff or self.portal_frame is None:
            return self.frame
        return self.portal_frame

    def reaches(self, principal: Principal, conn_id: str) -> bool:
        """Whether the connection ``conn_id`` of ``principal`` receives this message."""
        if conn_id == self.skip_conn:
            return False
        me = (principal.kind, principal.id)
        if self.user is not None:
            return me == self.user
        if me == self.skip_user:
            return False
        if principal.is_staff:
            return self.staff
        return principal.id in self.contacts


def encode_ephemeral(msg: Ephemeral) -> bytes:
    """``EPHEMERAL_PREFIX + JSON`` as published on the matter's topic."""
    body = {
        "id": msg.id,
        "m": msg.matter_id,
        "ref": msg.matter,
        "f": msg.frame,
        "s": msg.staff,
        "c": sorted(msg.contacts),
        "u": None if msg.user is None else list(msg.user),
        "su": None if msg.skip_user is None else list(msg.skip_user),
        "sc": msg.skip_conn,
        "pf": msg.portal_frame,
    }
    return EPHEMERAL_PREFIX + wirejson.dumpb(body)


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("malformed ephemeral message")


def _opt_user(value: object) -> tuple[str, int] | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2:
        kind, pid = value
        if isinstance(kind, str) and type(pid) is int:
            return kind, pid
    raise ValueError("malformed ephemeral message")


def decode_ephemeral(data: bytes) -> Ephemeral:
    """The ephemeral message in ``data``; ``ValueError`` if it is not a valid one."""
    if not data.startswith(EPHEMERAL_PREFIX):
        raise ValueError("not an ephemeral message")
    try:
        msg = jsonlimits.loads(data[len(EPHEMERAL_PREFIX) :], "ephemeral message")
        if not isinstance(msg, dict) or jsonlimits.too_deep(msg, jsonlimits.MAX_DOCUMENT_DEPTH):
            raise ValueError("malformed ephemeral message")
        msg_id, matter_id, ref, frame = msg["id"], msg["m"], msg["ref"], msg["f"]
        staff, contacts = msg["s"], msg["c"]
    except (BadRequest, KeyError, TypeError) as exc:
        raise ValueError("malformed ephemeral message") from exc
    if not (isinstance(msg_id, str) and isinstance(ref, str) and isinstance(frame, str)):
        raise ValueError("malformed ephemeral message")
    if type(matter_id) is not int or type(staff) is not bool:
        raise ValueError("malformed ephemeral message")
    if not isinstance(contacts, list) or len(contacts) > _MAX_CONTACTS:
        raise ValueError("malformed ephemeral message")
    if not all(type(c) is int for c in contacts):
        raise ValueError("malformed ephemeral message")
    return Ephemeral(
        msg_id,
        matter_id,
        ref,
        frame,
        staff,
        frozenset(contacts),
        _opt_user(msg.get("u")),
        _opt_user(msg.get("su")),
        _opt_str(msg.get("sc")),
        _opt_str(msg.get("pf")),
    )
