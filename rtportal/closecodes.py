"""Websocket close codes: the one table (docs/protocol.md "Close codes" lists the same).

Each code has a constant and a default reason text (the close frame's
reason, for humans; clients act on the code). A caller may send a more
specific reason with the same code ("too many bad frames" for 4002).
Imported by the realtime hub (closes listeners) and the websocket
transports, so it lives in a leaf module below both.
"""

from __future__ import annotations

__all__ = [
    "CLOSE_ACCESS_REMOVED",
    "CLOSE_FORBIDDEN_ORIGIN",
    "CLOSE_FRAME_TOO_BIG",
    "CLOSE_INTERNAL",
    "CLOSE_INVALID_UTF8",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL",
    "CLOSE_RESTART",
    "CLOSE_REVOKED",
    "CLOSE_SLOW",
    "CLOSE_TOO_MANY_CONNECTIONS",
    "CLOSE_TRY_LATER",
    "CLOSE_UNAUTHENTICATED",
    "CLOSE_UNSUPPORTED_VERSION",
    "REASONS",
    "reason",
]

CLOSE_NORMAL = 1000
CLOSE_INVALID_UTF8 = 1007  # sent by the websocket layer (RFC 6455 §8.1)
CLOSE_FRAME_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
CLOSE_TRY_LATER = 1013
CLOSE_UNAUTHENTICATED = 4001
CLOSE_PROTOCOL = 4002
CLOSE_FORBIDDEN_ORIGIN = 4003
CLOSE_UNSUPPORTED_VERSION = 4006  # after the protocol_version error frame
CLOSE_SLOW = 4008
CLOSE_REVOKED = 4010
CLOSE_ACCESS_REMOVED = 4011
CLOSE_TOO_MANY_CONNECTIONS = 4029

REASONS: dict[int, str] = {
    CLOSE_NORMAL: "normal close",
    CLOSE_INVALID_UTF8: "invalid UTF-8",
    CLOSE_FRAME_TOO_BIG: "frame too big",
    CLOSE_INTERNAL: "internal error",
    CLOSE_RESTART: "server restarting",
    CLOSE_TRY_LATER: "try again later",
    CLOSE_UNAUTHENTICATED: "unauthenticated",
    CLOSE_PROTOCOL: "protocol violation",
    CLOSE_FORBIDDEN_ORIGIN: "forbidden origin",
    CLOSE_UNSUPPORTED_VERSION: "unsupported protocol version",
    CLOSE_SLOW: "slow consumer",
    CLOSE_REVOKED: "session revoked",
    CLOSE_ACCESS_REMOVED: "access removed",
    CLOSE_TOO_MANY_CONNECTIONS: "too many connections",
}


def reason(code: int) -> str:
    """The default reason text of ``code`` (``""`` for a code not in the table)."""
    return REASONS.get(code, "")
