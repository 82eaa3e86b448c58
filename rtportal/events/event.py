"""``StoredEvent``, the event every layer sees, and its wire codec.

Also the stored spelling of a payload (``canonical_json``); ``blob`` is on
the wire in the one form of ``rtportal.base64url``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from rtportal import base64url

__all__ = [
    "Audience",
    "StoredEvent",
    "canonical_json",
    "iso_time",
]

Audience = Literal["portal", "staff"]


def canonical_json(value: dict[str, Any]) -> str:
    """One spelling per payload, so retries compare equal byte for byte.

    ``allow_nan=False``: NaN and Infinity are not JSON; stored, they would
    make every later read of the matter fail to encode (a poisoned log).
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def iso_time(ts: datetime) -> str:
    """``created_at`` on the wire: UTC, microseconds, ``Z``."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed (or about to be committed) event, as every layer sees it."""

    matter_id: int
    matter: str
    seq: int
    kind: str
    audience: Audience
    actor: dict[str, Any]
    payload: dict[str, Any]
    blob: bytes | None
    client_id: str | None
    created_at: str
    # A deleted item's event (or one of its edits): ``blob`` erased in the
    # delete's transaction (rtportal.threads.items); on the wire only when true.
    redacted: bool = False
    # Per-viewer-class views built by rtportal.events.audience.view_for, shared
    # by every connection of that class (read-only by convention).
    views: dict[str, dict[str, Any] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The full (staff) view; ``blob`` as unpadded base64url or ``None``."""
        wire = {
            "matter": self.matter,
            "seq": self.seq,
            "kind": self.kind,
            "audience": self.audience,
            "actor": dict(self.actor),
            "payload": dict(self.payload),
            "blob": None if self.blob is None else base64url.encode(self.blob),
            "client_id": self.client_id,
            "created_at": self.created_at,
        }
        if self.redacted:
            wire["redacted"] = True
        return wire

    @classmethod
    def from_wire(cls, matter_id: int, data: dict[str, Any]) -> StoredEvent:
        """Rebuild an event from ``to_wire()`` output (e.g. a broker message)."""
        blob = data.get("blob")
        return cls(
            matter_id=matter_id,
            matter=str(data["matter"]),
            seq=int(data["seq"]),
            kind=str(data["kind"]),
            audience=cast(Audience, data["audience"]),
            actor=dict(data["actor"]),
            payload=dict(data["payload"]),
            # A worker wrote it, within the blob limit when the event was stored.
            blob=None if blob is None else base64url.decode(blob, len(blob)),
            client_id=data.get("client_id"),
            created_at=str(data["created_at"]),
            redacted=data.get("redacted") is True,
        )
