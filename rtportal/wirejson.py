"""Compact JSON for what the server sends: websocket frames and broker messages.

Why orjson: encoding the event frame, the broker message and the ack is a
large share of a worker's CPU per message, and orjson does it about ten
times faster than the standard library (``bench/`` figures in
docs/benchmarks.md). Output is the same JSON (compact separators, UTF-8
kept as is). Two differences are handled here: orjson refuses integers
beyond 64 bits, which fall back to the standard library (new payloads
cannot hold them, ``rtportal.jsonlimits``; older stored ones may); and
orjson would write NaN as ``null`` where the standard library refuses it,
which cannot happen: untrusted JSON is parsed by ``rtportal.jsonlimits``,
which rejects non-finite numbers, and stored payloads that hold one are
read as unreadable.

Not used for ``canonical_json`` (the stored spelling of a payload, compared
byte for byte on retries), nor for parsing client input (``rtportal.jsonlimits``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumpb", "dumps", "loads"]

_STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumpb(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits is valid JSON; the standard library writes it.
        return _STDLIB.encode(obj).encode()


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text."""
    try:
        return orjson.dumps(obj).decode()
    except orjson.JSONEncodeError:
        return _STDLIB.encode(obj)


def loads(data: bytes | str) -> Any:
    """Parse JSON the server wrote itself (broker messages), fast."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # orjson also refuses what the standard library accepts and we may
        # have written (an integer beyond 64 bits): try it before giving up.
        return json.loads(data)
