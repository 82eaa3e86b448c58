"""``StoredEvent``, the event every layer sees, and its wire codec.

Also the two spellings an event's content has outside Python: the stored
payload text (``canonical_json``) and the wire form of ``blob`` (unpadded
base64url, ``b64encode_url``; read back by ``b64decode_any``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from rtportal.errors import BadRequest

__all__ = [
    "AUDIENCES",
    "Audience",
    "StoredEvent",
    "b64decode_any",
    "b64encode_url",
    "canonical_json",
    "iso_time",
]

Audience = Literal["portal", "staff"]
AUDIENCES: tuple[Audience, ...] = ("portal", "staff")


def canonical_json(value: dict[str, Any]) -> str:
    """One spelling per payload, so retries compare equal byte for byte.

    ``allow_nan=False``: NaN and Infinity are not JSON; stored, they would
    make every later read of the matter fail to encode (a poisoned log).
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def b64encode_url(data: bytes) -> str:
    """Unpadded base64url: the wire form of ``blob``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_any(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; ``BadRequest`` otherwise."""
    if not isinstance(text, str):
        raise BadRequest("blob must be a base64 string")
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except ValueError:
        raise BadRequest("blob is not valid base64") from None


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
    # Per-viewer-class views built by rtportal.events.audience.view_for, shared
    # by every connection of that class (read-only by convention).
    views: dict[str, dict[str, Any] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The full (staff) view; ``blob`` as unpadded base64url or ``None``."""
        return {
            "matter": self.matter,
            "seq": self.seq,
            "kind": self.kind,
            "audience": self.audience,
            "actor": dict(self.actor),
            "payload": dict(self.payload),
            "blob": None if self.blob is None else b64encode_url(self.blob),
            "client_id": self.client_id,
            "created_at": self.created_at,
        }

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
            blob=None if blob is None else b64decode_any(blob),
            client_id=data.get("client_id"),
            created_at=str(data["created_at"]),
        )
