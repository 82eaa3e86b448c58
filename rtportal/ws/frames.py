"""Websocket frames of protocol v2: parse and validate client frames, encode server frames.

This is the only module that turns wire text into typed frames and typed
frames into wire text (see ``docs/protocol.md``). It knows nothing about
connections or state: ``parse_client_frame`` is a pure function that either
returns a frame or raises ``FrameError`` carrying a stable error code.

Cursors (``after``, ``head``, an event's ``seq``/``cursor``, an ack's) are
``int`` for staff and bots and opaque tokens (``str``) for contacts; they are
made and read only by ``rtportal.events.cursor`` (the callers pass them in).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rtportal import base64url, jsonlimits, wirejson
from rtportal.errors import BadRequest, InvalidCursor, ProtocolVersion, RtPortalError
from rtportal.events.cursor import check_shape
from rtportal.events.send import Send
from rtportal.events.validate import valid_client_id, valid_thread
from rtportal.settings import (
    DEFAULT_BACKLOG_LIMIT,
    DEFAULT_BACKLOG_PAGE_BYTES,
    DEFAULT_EVENT_BLOB_MAX,
    DEFAULT_EVENT_PAYLOAD_MAX,
    DEFAULT_WRITE_BURST,
    DEFAULT_WRITE_RATE,
    DEFAULT_WS_MAX_FRAME_BYTES,
    DEFAULT_WS_SEND_BUFFER_MAX,
    DEFAULT_WS_SEND_QUEUE,
)

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "Ack",
    "ClientFrame",
    "ClientHello",
    "ControlFrameTooBig",
    "FrameError",
    "Limits",
    "Ping",
    "Read",
    "Send",
    "SubRequest",
    "Subscribe",
    "Typing",
    "Unsubscribe",
    "ack_frame",
    "encode",
    "error_frame",
    "event_frame",
    "hello_frame",
    "parse_client_frame",
    "pong_frame",
    "read_ack_frame",
    "resync_frame",
    "subscribed_frame",
    "unsubscribed_frame",
]

PROTOCOL_VERSION = 2
# The versions a client may say in its ``hello``: v1 showed contacts seqs.
SUPPORTED_VERSIONS: tuple[int, ...] = (2,)

# No control characters, and no lone UTF-16 surrogates ("\ud800" is valid JSON
# but not UTF-8): the id is echoed, and a frame that cannot be encoded would
# kill the connection's writer instead of answering.
_ID_RE = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,64}")
_MATTER_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")  # the registry (events.kinds) decides the rest
_UPTO_MAX = 64  # characters of a read mark's cursor as sent (parsed later)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits announced in ``hello`` (from Settings)."""

    max_frame_bytes: int = DEFAULT_WS_MAX_FRAME_BYTES
    # Every frame but ``send`` (subscribe, unsubscribe, ping): they cost no
    # write token, so they are kept small enough to parse in well under a
    # millisecond (an unsubscribe of max_subscriptions matters fits).
    max_control_frame_bytes: int = 65_536
    max_payload_bytes: int = DEFAULT_EVENT_PAYLOAD_MAX
    max_blob_bytes: int = DEFAULT_EVENT_BLOB_MAX
    max_subscriptions: int = 1000
    max_subs_per_frame: int = 100
    # Requests of one connection being executed (sends, subscribes) at which
    # the server stops reading it until one finishes: pipelining is never
    # refused, it waits in TCP.
    max_in_flight: int = 16
    backlog_limit: int = DEFAULT_BACKLOG_LIMIT
    send_queue: int = DEFAULT_WS_SEND_QUEUE
    # The user's write token bucket (rtportal.limits): sends beyond it are
    # answered ``rate_limited``.
    write_rate: float = DEFAULT_WRITE_RATE
    write_burst: int = DEFAULT_WRITE_BURST
    max_bad_frames: int = 10
    # Bytes (not announced in hello): unsent frames per connection, and
    # stored bytes per backlog page read.
    send_queue_bytes: int = DEFAULT_WS_SEND_BUFFER_MAX
    backlog_page_bytes: int = DEFAULT_BACKLOG_PAGE_BYTES

    def to_wire(self) -> dict[str, int | float]:
        return {
            "max_frame_bytes": self.max_frame_bytes,
            "max_control_frame_bytes": self.max_control_frame_bytes,
            "max_payload_bytes": self.max_payload_bytes,
            "max_blob_bytes": self.max_blob_bytes,
            "max_subscriptions": self.max_subscriptions,
            "max_subs_per_frame": self.max_subs_per_frame,
            "max_in_flight": self.max_in_flight,
            "backlog_limit": self.backlog_limit,
            "send_queue": self.send_queue,
            "write_rate": self.write_rate,
            "write_burst": self.write_burst,
        }


class FrameError(Exception):
    """A client frame that cannot be accepted; ``error`` carries the stable code."""

    def __init__(self, error: RtPortalError, frame_id: str | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.frame_id = frame_id


@dataclass(frozen=True, slots=True)
class SubRequest:
    matter: str
    # A staff seq (int), a contact's token (str), or None (the start): shape
    # checked here, read for the viewer and matter by rtportal.events.cursor.
    after: int | str | None


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: str
    subs: tuple[SubRequest, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: str
    matters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    id: str


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The client's first frame: the protocol version it speaks."""

    id: str
    v: int


@dataclass(frozen=True, slots=True)
class Ack:
    id: str
    matter: str
    cursor: int | str  # the seq (staff, bots) or the event token (contacts)
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Read:
    """A read mark: the caller has read ``thread`` up to the cursor ``upto``.

    ``upto`` is the JSON value as sent (an integer or a string, of at most
    ``_UPTO_MAX`` characters): a cursor is parsed once its matter is known
    (``rtportal.threads.cursors.parse_upto``).
    """

    id: str
    matter: str
    thread: str
    upto: int | str


@dataclass(frozen=True, slots=True)
class Typing:
    """The caller is typing in ``thread`` (``internal``: a note's composer, staff only).

    ``id`` is optional: nothing answers a typing frame but a refusal.
    """

    id: str | None
    matter: str
    thread: str
    internal: bool


ClientFrame = Subscribe | Unsubscribe | Send | Ping | Read | Typing | ClientHello


def encode(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is (smaller frames than ``\\uXXXX`` escapes)."""
    return wirejson.dumps(obj)


def _bad(message: str, frame_id: str | None) -> FrameError:
    return FrameError(BadRequest(message), frame_id)


def _frame_id(raw: dict[str, Any]) -> str | None:
    value = raw.get("id")
    if isinstance(value, str) and _ID_RE.fullmatch(value):
        return value
    return None


def _require_id(raw: dict[str, Any]) -> str:
    frame_id = _frame_id(raw)
    if frame_id is None:
        raise _bad("id: required string of 1-64 characters without control characters", None)
    return frame_id


def _matter(value: object, frame_id: str | None, where: str) -> str:
    if not isinstance(value, str) or not _MATTER_RE.fullmatch(value):
        raise _bad(f"{where}: must be a matter reference (1-32 of A-Z a-z 0-9 _ -)", frame_id)
    return value


def _after(value: object, frame_id: str, where: str) -> int | str | None:
    if value is None:
        return None
    try:
        check_shape(value, where)
    except RtPortalError as err:
        raise FrameError(err, frame_id) from None
    return value  # type: ignore[return-value]  # check_shape: an int or a token str


def _decode_blob(value: object, limit: int, frame_id: str | None = None) -> bytes | None:
    """Unpadded base64url (``rtportal.base64url``) -> bytes, at most ``limit`` bytes."""
    try:
        return base64url.decode(value, limit)
    except RtPortalError as err:
        raise FrameError(err, frame_id) from None


def _parse_subscribe(raw: dict[str, Any], frame_id: str, limits: Limits) -> Subscribe:
    _only(raw, _SUBSCRIBE_FIELDS, frame_id)
    subs_raw = raw.get("subs")
    if not isinstance(subs_raw, list) or not subs_raw:
        raise _bad("subs: must be a non-empty list", frame_id)
    if len(subs_raw) > limits.max_subs_per_frame:
        raise _bad(f"subs: at most {limits.max_subs_per_frame} per frame", frame_id)
    subs: list[SubRequest] = []
    seen: set[str] = set()
    for i, entry in enumerate(subs_raw):
        if not isinstance(entry, dict):
            raise _bad(f"subs[{i}]: must be an object", frame_id)
        _only(entry, _SUB_FIELDS, frame_id, f"subs[{i}].")
        matter = _matter(entry.get("matter"), frame_id, f"subs[{i}].matter")
        after = _after(entry.get("after"), frame_id, f"subs[{i}].after")
        if matter in seen:
            raise _bad(f"subs[{i}]: matter {matter} listed twice", frame_id)
        seen.add(matter)
        subs.append(SubRequest(matter, after))
    return Subscribe(frame_id, tuple(subs))


def _parse_unsubscribe(raw: dict[str, Any], frame_id: str, limits: Limits) -> Unsubscribe:
    _only(raw, _UNSUBSCRIBE_FIELDS, frame_id)
    matters_raw = raw.get("matters")
    if not isinstance(matters_raw, list) or not matters_raw:
        raise _bad("matters: must be a non-empty list", frame_id)
    if len(matters_raw) > limits.max_subscriptions:
        raise _bad(f"matters: at most {limits.max_subscriptions}", frame_id)
    matters = tuple(_matter(m, frame_id, f"matters[{i}]") for i, m in enumerate(matters_raw))
    return Unsubscribe(frame_id, tuple(dict.fromkeys(matters)))


def _parse_send(raw: dict[str, Any], frame_id: str, limits: Limits) -> Send:
    if not valid_client_id(frame_id):  # a send id is stored as the event's client_id
        raise _bad("id: a send id is 1-64 of A-Z a-z 0-9 _ . : ~ -", frame_id)
    matter = _matter(raw.get("matter"), frame_id, "matter")
    kind = raw.get("kind")
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise _bad("kind: 1-32 of a-z 0-9 _ . - starting with a letter", frame_id)
    audience = raw.get("audience", "portal")
    if audience == "portal":
        aud: Literal["portal", "staff"] = "portal"
    elif audience == "staff":
        aud = "staff"
    else:
        raise _bad('audience: must be "portal" or "staff"', frame_id)
    payload = raw.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise _bad("payload: must be a JSON object", frame_id)
    try:
        jsonlimits.payload_size(payload, limits.max_payload_bytes)
    except RtPortalError as err:
        raise FrameError(err, frame_id) from None
    blob = _decode_blob(raw.get("blob"), limits.max_blob_bytes, frame_id)
    return Send(matter, kind, aud, payload, blob, frame_id)


class ControlFrameTooBig(Exception):
    """A frame other than ``send`` over ``max_control_frame_bytes`` (closes 1009)."""


def parse_client_frame(text: str, limits: Limits, send_only: bool = False) -> ClientFrame:
    """Parse one client text frame; raises ``FrameError``, or ``ControlFrameTooBig``
    when ``send_only`` (the frame is over ``max_control_frame_bytes``) and it is
    not a send (never anything else)."""
    try:
        raw = jsonlimits.loads(text, "frame")
    except RtPortalError as err:
        if send_only:
            raise ControlFrameTooBig from None
        raise FrameError(err, None) from None
    if send_only and (not isinstance(raw, dict) or raw.get("type") != "send"):
        raise ControlFrameTooBig
    if not isinstance(raw, dict):
        raise _bad("frame must be a JSON object", None)
    frame_type = raw.get("type")
    if frame_type == "typing":  # its id is optional: nothing answers it but a refusal
        return _parse_typing(raw)
    # isinstance first: a list or object "type" is unhashable for the dict lookup.
    parser = _PARSERS.get(frame_type) if isinstance(frame_type, str) else None
    if parser is None:
        raise _bad("type: unknown frame type", _frame_id(raw))
    return parser(raw, _require_id(raw), limits)


def _parse_ping(raw: dict[str, Any], frame_id: str, limits: Limits) -> Ping:
    _only(raw, _PING_FIELDS, frame_id)
    return Ping(frame_id)


def _thread(value: object, frame_id: str | None) -> str:
    if not valid_thread(value):
        raise _bad("thread: must be a thread id (1-64 of A-Z a-z 0-9 _ -)", frame_id)
    return value


def _parse_read(raw: dict[str, Any], frame_id: str, limits: Limits) -> Read:
    _only(raw, _READ_FIELDS, frame_id)
    matter = _matter(raw.get("matter"), frame_id, "matter")
    thread = _thread(raw.get("thread"), frame_id)
    if "upto" not in raw:
        raise _bad("upto: required (a cursor)", frame_id)
    upto = raw["upto"]
    if isinstance(upto, bool) or not isinstance(upto, int | str) or len(str(upto)) > _UPTO_MAX:
        raise FrameError(InvalidCursor("upto: not a cursor"), frame_id)
    return Read(frame_id, matter, thread, upto)


def _parse_typing(raw: dict[str, Any]) -> Typing:
    frame_id = _frame_id(raw)
    if "id" in raw and frame_id is None:
        raise _bad("id: a string of 1-64 characters without control characters", None)
    _only(raw, _TYPING_FIELDS, frame_id)
    matter = _matter(raw.get("matter"), frame_id, "matter")
    thread = _thread(raw.get("thread"), frame_id)
    internal = raw.get("internal", False)
    if not isinstance(internal, bool):
        raise _bad("internal: must be true or false", frame_id)
    return Typing(frame_id, matter, thread, internal)


def _parse_hello(raw: dict[str, Any], frame_id: str, limits: Limits) -> ClientHello:
    _only(raw, _HELLO_FIELDS, frame_id)
    version = raw.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise FrameError(version_error(), frame_id)
    return ClientHello(frame_id, version)


def version_error() -> ProtocolVersion:
    """The refusal of a version (or of a first frame that is no ``hello``)."""
    supported = list(SUPPORTED_VERSIONS)
    return ProtocolVersion(
        f"protocol version {PROTOCOL_VERSION} required: send hello with v first",
        supported=supported,
    )


_HELLO_FIELDS = frozenset({"type", "id", "v"})
_PING_FIELDS = frozenset({"type", "id"})
_READ_FIELDS = frozenset({"type", "id", "matter", "thread", "upto"})
_TYPING_FIELDS = frozenset({"type", "id", "matter", "thread", "internal"})
_SUBSCRIBE_FIELDS = frozenset({"type", "id", "subs"})
_SUB_FIELDS = frozenset({"matter", "after"})
_UNSUBSCRIBE_FIELDS = frozenset({"type", "id", "matters"})


def _only(
    raw: dict[str, Any], allowed: frozenset[str], frame_id: str | None, where: str = ""
) -> None:
    """Refuse fields a frame (other than send) does not define."""
    if not allowed.issuperset(raw):
        extra = sorted(k for k in raw if k not in allowed)[0]
        raise _bad(f"{where}{extra[:32]}: unknown field", frame_id)


_PARSERS: dict[str, Callable[[dict[str, Any], str, Limits], ClientFrame]] = {
    "subscribe": _parse_subscribe,
    "unsubscribe": _parse_unsubscribe,
    "send": _parse_send,
    "ping": _parse_ping,
    "read": _parse_read,
    "hello": _parse_hello,
}


# --- server frames -------------------------------------------------------------


def hello_frame(kind: str, principal_id: int, name: str, limits: Limits) -> str:
    return encode(
        {
            "type": "hello",
            "v": PROTOCOL_VERSION,
            "versions": list(SUPPORTED_VERSIONS),
            "principal": {"kind": kind, "id": principal_id, "name": name},
            "limits": limits.to_wire(),
        }
    )


def subscribed_frame(frame_id: str, matter: str, head: int | str) -> str:
    return encode({"type": "subscribed", "id": frame_id, "matter": matter, "head": head})


def resync_frame(
    frame_id: str | None, matter: str, after: int | str, head: int | str | None, reason: str
) -> str:
    """``head`` is None for contacts on a ``cursor_ahead`` (nothing to page to)."""
    body: dict[str, Any] = {"type": "resync", "id": frame_id, "matter": matter, "after": after}
    if head is not None:
        body["head"] = head
    body["reason"] = reason
    return encode(body)


def unsubscribed_frame(frame_id: str, matters: tuple[str, ...]) -> str:
    return encode({"type": "unsubscribed", "id": frame_id, "matters": list(matters)})


def ack_frame(ack: Ack) -> str:
    """``seq`` for staff and bots, ``cursor`` (the event token) for contacts."""
    field = "cursor" if isinstance(ack.cursor, str) else "seq"
    return encode(
        {
            "type": "ack",
            "id": ack.id,
            "matter": ack.matter,
            field: ack.cursor,
            "duplicate": ack.duplicate,
        }
    )


def read_ack_frame(frame: Read, upto: object, unread: int, matter_unread: int) -> str:
    """The answer to a ``read``: the mark now in effect and the caller's unread counts."""
    return encode(
        {
            "type": "ack",
            "id": frame.id,
            "matter": frame.matter,
            "thread": frame.thread,
            "upto": upto,  # already written for this viewer (threads.cursors)
            "unread": unread,
            "matter_unread": matter_unread,
        }
    )


def pong_frame(frame_id: str) -> str:
    return encode({"type": "pong", "id": frame_id})


def error_frame(frame_id: str | None, error: RtPortalError, matter: str | None = None) -> str:
    body: dict[str, Any] = {
        "type": "error",
        "id": frame_id,
        "code": error.code,
        "message": error.message,
    }
    if matter is not None:
        body["matter"] = matter
    if error.details:
        body["details"] = error.details  # e.g. rate_limited's retry_after
    return encode(body)


def event_frame(view: dict[str, Any], token: str | None = None) -> str:
    """Encode an ``audience.view_for`` result (never a raw event) as an ``event`` frame.

    Fields are picked by name so that nothing the view carries for internal
    use (e.g. ``matter_id``) reaches the wire. With ``token`` (a contact's
    frame: ``CursorCodec.event_token``) the frame carries ``cursor`` instead
    of ``seq``.
    """
    if token is None:
        position: tuple[str, int | str] = ("seq", view["seq"])
    else:
        position = ("cursor", token)
    frame = {
        "type": "event",
        "matter": view["matter"],
        position[0]: position[1],
        "kind": view["kind"],
        "audience": view["audience"],
        "actor": view["actor"],
        "payload": view["payload"],
        "blob": view.get("blob"),  # unpadded base64url (StoredEvent.to_wire)
        "client_id": view.get("client_id"),
        "created_at": view["created_at"],
    }
    if view.get("redacted"):
        frame["redacted"] = True  # a deleted item's event: its blob erased
    return encode(frame)
