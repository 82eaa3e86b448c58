"""The broker message format: topics, an event as published on its matter's topic,
and the control messages of ``CTL_TOPIC``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtportal import jsonlimits, wirejson
from rtportal.errors import BadRequest
from rtportal.events.event import StoredEvent

__all__ = [
    "CTL_TOPIC",
    "CloseAccess",
    "ClosePrincipal",
    "decode_control",
    "encode_control",
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
