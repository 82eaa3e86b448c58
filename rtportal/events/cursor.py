"""Cursors, parsed in exactly one place: HTTP history and websocket ``subscribe``.

A cursor names a position in one matter's log: "events after seq N". It is
always the integer seq (0 … 2^53−1, exact in JavaScript numbers): a JSON
integer in frames and response bodies (``after``, ``head``, ``next``,
``prev``), its decimal spelling in a URL query. Anything else is
``InvalidCursor``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtportal.errors import InvalidCursor

__all__ = ["MAX_SEQ", "Cursor"]

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
