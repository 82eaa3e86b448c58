"""History cursors of the HTTP API, parsed in exactly one place.

A cursor names a position in one matter's log: "events after seq N". Its
text form is the decimal seq, so bots can also build one from an event's
``seq``; anything else is ``InvalidCursor``.
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

    def __str__(self) -> str:
        return str(self.after)
