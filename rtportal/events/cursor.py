"""Cursors, parsed in exactly one place: HTTP history, websocket ``subscribe``, the feed.

A cursor names a position in one matter's log: "events after seq N". It is
always the integer seq (0 … 2^53−1, exact in JavaScript numbers): a JSON
integer in frames and response bodies (``after``, ``head``, ``next``,
``prev``), its decimal spelling in a URL query. Anything else is
``InvalidCursor``.

``FeedCursor`` is the staff activity feed's position across matters: the
global ``events.id`` of the last row shown, sent as 22 characters of
base64url (one AES block under a key derived from the server secret: an id
padded with zeros). It is opaque on purpose: the global id would tell a
reader how much every firm on the server wrote between two pages; the block
tells nothing, and a cursor that was not made by this server (its padding
does not decrypt to zeros) is ``InvalidCursor``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rtportal import base64url
from rtportal.errors import BadRequest, InvalidCursor

__all__ = ["MAX_SEQ", "Cursor", "FeedCursor"]

MAX_SEQ = 2**53 - 1  # exact in JavaScript numbers
_CURSOR_RE = re.compile(r"0|[1-9][0-9]{0,15}")


@dataclass(frozen=True, slots=True)
class Cursor:
    after: int

    @classmethod
    def from_string(cls, text: str | None) -> Cursor:
        """Parse a cursor; ``None`` or ``""`` means the start of the log."""
        if text is None or text == "":
            return cls(0)
        if not isinstance(text, str) or _CURSOR_RE.fullmatch(text) is None:
            raise InvalidCursor("cursor must be a non-negative decimal seq")
        value = int(text)
        if value > MAX_SEQ:
            raise InvalidCursor("cursor is out of range")
        return cls(value)

    @classmethod
    def from_json(cls, value: object, where: str = "cursor") -> Cursor:
        """Parse a cursor given as a JSON value: an integer 0 … 2^53−1, never a string."""
        # bool is an int subclass in Python; true/false is never a cursor.
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidCursor(f"{where}: must be an integer from 0 to {MAX_SEQ}")
        if not 0 <= value <= MAX_SEQ:
            raise InvalidCursor(f"{where}: must be an integer from 0 to {MAX_SEQ}")
        return cls(value)

    def to_json(self) -> int:
        """The cursor as a JSON value in a frame or body (what ``from_json`` reads)."""
        return self.after

    def __str__(self) -> str:
        return str(self.after)


_FEED_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_ID_MAX = 2**63 - 1


def _feed_cipher(secret: bytes) -> Cipher[modes.ECB]:
    # One block per cursor, never repeated structure inside it: ECB is the
    # block cipher as a keyed permutation, which is all a cursor needs.
    key = hashlib.sha256(b"rtportal/feed-cursor\x00" + secret).digest()
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305


@dataclass(frozen=True, slots=True)
class FeedCursor:
    """The feed's keyset position: rows with an ``events.id`` below ``before``."""

    before: int

    @classmethod
    def from_string(cls, text: str | None, secret: bytes) -> FeedCursor | None:
        """Parse ``?before=``; ``None`` or ``""`` is the first page (``None``)."""
        if text is None or text == "":
            return None
        if not isinstance(text, str) or _FEED_RE.fullmatch(text) is None:
            raise InvalidCursor("feed cursor: 22 characters of base64url")
        try:
            block = base64url.decode(text, 16, "before")
        except BadRequest:
            raise InvalidCursor("feed cursor: not one of this server's cursors") from None
        assert block is not None and len(block) == 16
        decryptor = _feed_cipher(secret).decryptor()
        plain = decryptor.update(block) + decryptor.finalize()
        value = int.from_bytes(plain[:8], "big")
        if plain[8:] != bytes(8) or not 1 <= value <= _ID_MAX:
            raise InvalidCursor("feed cursor: not one of this server's cursors")
        return cls(value)

    def to_string(self, secret: bytes) -> str:
        encryptor = _feed_cipher(secret).encryptor()
        block = encryptor.update(self.before.to_bytes(8, "big") + bytes(8)) + encryptor.finalize()
        return base64url.encode(block)
