"""The one rule for untrusted JSON: strict syntax, bounded depth, bounded size.

Every parser of client JSON uses this module: websocket client frames
(``rtportal.ws.frames``) and HTTP request bodies (``rtportal.http.bodies``);
so do broker control messages (``rtportal.realtime.message``) and event
payloads read back from the database (``stored_payload``). Broker event
messages, which only workers write, are parsed on the fan-out path by the
faster ``rtportal.wirejson.loads`` and then held to ``too_deep`` with
``MAX_DOCUMENT_DEPTH`` by the hub; one that fails is read from the database
instead.

Depth counts nested objects and arrays: ``{}`` is 1 deep, ``{"a": [1]}`` is 2.

- A payload is at most ``MAX_PAYLOAD_DEPTH`` (32) deep. Real payloads
  (envelopes, forms, attachments' metadata) use fewer than 8 levels; the
  encoders that read payloads back (orjson: 255 levels, the standard
  library: Python's recursion limit) handle 32 with room to spare, so an
  accepted payload can always be sent again.
- An HTTP body or a broker message (payload inside an event inside the
  message) is at most ``MAX_DOCUMENT_DEPTH`` = 32 + 2 deep. A websocket
  frame is not walked as a whole (it is on the send path): its fields other
  than the payload have fixed shapes and unknown fields are ignored.
- Parsing itself is bounded: nesting deeper than the parser's stack is
  refused as too deep (``loads``).
- Sizes are in bytes of compact UTF-8 JSON (``payload_size``); each caller
  passes its limit (``Settings.event_payload_max``, the frame and body caps).

Syntax is strict: ``NaN``, ``Infinity`` and numbers that overflow to
infinity are refused (they are not JSON and cannot be encoded back), and so
is a string holding U+0000 (no database here stores it). A
payload is also refused when it holds a string with a lone UTF-16 surrogate
(not UTF-8) or an integer outside -2^63 … 2^64−1 (orjson, which writes every
server frame and broker message, cannot carry it).

Payloads stored before these limits existed (or written into the database
by other means) may break them. ``stored_payload`` never raises: a stored
payload that cannot be decoded, is not an object, is too deep or cannot be
encoded again is replaced by ``unreadable_payload()`` (``{"unreadable":
true}``) and logged, so one bad row cannot fail every read of its matter.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import orjson

from rtportal import wirejson
from rtportal.errors import BadRequest, PayloadTooLarge

__all__ = [
    "MAX_DOCUMENT_DEPTH",
    "MAX_PAYLOAD_DEPTH",
    "check_depth",
    "loads",
    "payload_size",
    "stored_payload",
    "too_deep",
    "unreadable_payload",
]

log = logging.getLogger("rtportal.jsonlimits")

MAX_PAYLOAD_DEPTH = 32
MAX_DOCUMENT_DEPTH = MAX_PAYLOAD_DEPTH + 2


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # "1e999" is valid JSON syntax but parses to inf, which cannot be encoded back.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


# One decoder for all untrusted input (json.loads with hooks builds one per call).
_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def loads(text: str | bytes, what: str = "body") -> Any:
    """Parse strict JSON; ``BadRequest`` for anything else (never another exception).

    The caller then checks the depth it allows (``check_depth``): the
    standard library parses up to Python's recursion limit and refuses deeper
    nesting here, so parsing itself is bounded.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = _STRICT.decode(text)
    except ValueError:  # also UnicodeDecodeError
        raise BadRequest(f"{what} is not valid JSON") from None
    except RecursionError:
        # "[[[[..." deeper than the decoder's stack, so far deeper than allowed.
        raise BadRequest(f"{what}: nested deeper than {MAX_DOCUMENT_DEPTH} levels") from None
    # Strict JSON spells U+0000 only as this escape: rare, then the value is walked.
    if "\\u0000" in text and _holds_nul(value):
        raise BadRequest(f"{what}: a string holds U+0000 (NUL)")
    return value


def _holds_nul(value: Any) -> bool:
    """Does a key or string anywhere in ``value`` hold U+0000? Level by level.

    Why refused: PostgreSQL's text and jsonb cannot hold it (a server error
    wherever such a string reached a statement) and SQLite's JSON functions end
    a string there (a thread name ``N1\\x00`` read as ``N1``)."""
    level: list[Any] = [value]
    while level:
        nested: list[Any] = []
        for item in level:
            if isinstance(item, str):
                if "\x00" in item:
                    return True
            elif isinstance(item, dict):
                nested.extend(item.keys())
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
        level = nested
    return False


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` levels.

    Level by level, without recursion: cheap on the send path (a typical
    payload is two or three levels of a few keys).
    """
    if not isinstance(value, dict | list):
        return False
    level: list[Any] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner: list[Any] = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    inner.append(child)
        level = inner
    return False


def check_depth(value: Any, limit: int, what: str) -> None:
    """``BadRequest`` when ``value`` is nested deeper than ``limit`` levels."""
    if too_deep(value, limit):
        raise BadRequest(f"{what}: nested deeper than {limit} levels")


def payload_size(payload: dict[str, Any], limit: int, what: str = "payload") -> int:
    """Check a payload against the rule; returns its size in bytes of compact JSON.

    ``BadRequest`` when it is too deep, holds a lone surrogate or an integer
    outside -2^63 … 2^64−1, ``PayloadTooLarge`` when it is over ``limit`` bytes.
    """
    check_depth(payload, MAX_PAYLOAD_DEPTH, what)
    try:
        # orjson, as every server frame and broker message is written: what it
        # refuses here (a lone surrogate, an integer beyond 64 bits) could not
        # be sent on, or would come back from the broker as a float.
        size = len(orjson.dumps(payload))
    except orjson.JSONEncodeError:
        raise BadRequest(
            f"{what}: integers must fit in 64 bits and strings be valid Unicode"
        ) from None
    if size > limit:
        raise PayloadTooLarge(f"{what}: over {limit} bytes")
    return size


def unreadable_payload() -> dict[str, Any]:
    """The placeholder delivered for a stored payload that breaks the rule (a fresh dict)."""
    return {"unreadable": True}


def _encodable(value: dict[str, Any], text: str | bytes) -> bool:
    # Stored payloads are written with characters, not escapes; an escape may
    # be a lone surrogate, which decodes but cannot be encoded again.
    escapes = b"\\u" in text if isinstance(text, bytes) else "\\u" in text
    if not escapes:
        return True
    try:
        wirejson.dumpb(value)
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def stored_payload(text: str | bytes) -> dict[str, Any]:
    """Decode a payload read from the database; never raises (see the module doc)."""
    try:
        value = loads(text, "stored payload")
    except BadRequest:
        value = None
    if (
        not isinstance(value, dict)
        or too_deep(value, MAX_PAYLOAD_DEPTH)
        or not _encodable(value, text)
    ):
        log.warning("an event payload in the database breaks the JSON rule; sent as unreadable")
        return unreadable_payload()
    return value
