"""``Send``: one request to append an event, whoever asks.

The websocket parses a ``send`` frame into it (``client_id`` is the frame's
``id``), HTTP builds it from a ``POST`` body, and it travels unchanged
through the group commit to the log's write (``AppendItem`` adds the
authorised matter and the actor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtportal.events.event import canonical_json

__all__ = ["Send"]


@dataclass(frozen=True, slots=True)
class Send:
    """Append one event of ``kind`` to the matter ``matter`` (its reference)."""

    matter: str  # reference, e.g. "AAAA0000"
    kind: str
    audience: str
    payload: dict[str, Any]
    blob: bytes | None = None
    client_id: str | None = None  # idempotency id; a websocket send's frame id

    def fingerprint(self) -> tuple[str, str, str, str, bytes | None]:
        """What makes two sends with the same ``client_id`` the same content."""
        try:
            payload = canonical_json(self.payload)
        except (TypeError, ValueError, RecursionError):
            payload = repr(self.payload)
        return (self.matter, self.kind, self.audience, payload, self.blob)
