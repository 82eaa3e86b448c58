"""What the Python client raises besides the rtp1 ``crypto_*`` errors.

A server refusal keeps the server's stable code (``epoch_conflict``,
``stale_epoch``, ``not_found``, ...) so callers branch on it; a failed
check of anything the server handed over is an rtp1 ``CryptoInvalid``
(``rtportal.crypto.errors``), never a silently skipped item.
"""

from __future__ import annotations

from typing import Any

from rtportal.errors import CryptoInvalid

__all__ = ["ApiError", "NotEncrypted", "PinMismatch"]


class ApiError(Exception):
    """The server answered with an error body (HTTP) or an ``error`` frame (websocket).

    Not an ``RtPortalError``: the server raised that; this only carries its stable
    ``server_code`` (``epoch_conflict``, ``stale_epoch``, ``not_found``, ...) to the caller.
    """

    def __init__(self, server_code: str, message: str, status: int = 0, **details: Any) -> None:
        super().__init__(f"{server_code}: {message}")
        self.server_code = server_code
        self.message = message
        self.status = status
        self.details = details


class PinMismatch(CryptoInvalid):
    """The server's records contradict what this client pinned (FRK, a chain, a version)."""

    code = "crypto_pin"


class NotEncrypted(CryptoInvalid):
    """A content event (message, note, welcome) without an rtp1 envelope."""

    code = "crypto_not_encrypted"
