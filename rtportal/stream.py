"""The per-matter event log: ``append``, ``read_since``, ``head``, ``can_access``.

Every change to a matter is an event with a per-matter ``seq`` (1, 2, 3...
without gaps) written in the caller's transaction. ``seq`` comes from
``UPDATE matters SET last_seq = last_seq + 1 ... RETURNING last_seq``: on
PostgreSQL the row lock serialises writers of one matter across processes
until commit; on SQLite the write transaction (``BEGIN IMMEDIATE``) already
holds the database write lock. A rollback undoes the counter with the
insert, so a failed transaction leaves no gap and no half-written record.

Callers commit, then publish (``hub.publish``); nothing here publishes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from rtportal.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from rtportal.models import Event, Matter, MatterMember, utcnow
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_EVENT_BLOB_MAX, DEFAULT_EVENT_PAYLOAD_MAX

if TYPE_CHECKING:
    from rtportal.settings import Settings

__all__ = [
    "AUDIENCES",
    "DEFAULT_BLOB_MAX",
    "DEFAULT_PAYLOAD_MAX",
    "StoredEvent",
    "active_memberships",
    "append",
    "b64decode_any",
    "b64encode_url",
    "can_access",
    "canonical_json",
    "head",
    "heads",
    "list_matters",
    "read_before",
    "read_since",
    "valid_client_id",
    "valid_matter_ref",
]

AUDIENCES = ("portal", "staff")
DEFAULT_PAYLOAD_MAX = DEFAULT_EVENT_PAYLOAD_MAX
DEFAULT_BLOB_MAX = DEFAULT_EVENT_BLOB_MAX

_KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.:~-]{1,64}")
_MATTER_REF_RE = re.compile(r"[A-Z]{4}[0-9]{4}")


# The write path's statements, built once at import: SQLAlchemy Core on the
# tables (not ORM-enabled statements through the Session, whose statement
# building and bulk-operation plumbing was ~40 % of a send's CPU). Built
# once, each statement's cache key is memoised and its compiled SQL comes
# from the engine's compiled cache; only the parameters change per call.
_MATTERS = cast(Table, Matter.__table__)
_EVENTS = cast(Table, Event.__table__)
_NEXT_SEQ = (
    update(_MATTERS)
    .where(_MATTERS.c.id == bindparam("matter_pk"))
    .values(last_seq=_MATTERS.c.last_seq + 1)
    .returning(_MATTERS.c.last_seq)
)
_GIVE_BACK_SEQ = (
    update(_MATTERS)
    .where(_MATTERS.c.id == bindparam("matter_pk"))
    .values(last_seq=_MATTERS.c.last_seq - 1)
)
_INSERT_EVENT = insert(_EVENTS)
# A retry (same actor, matter, client_id) hits the unique constraint: no row back.
_INSERT_EVENT_ONCE = {
    "postgresql": pg_insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.id),
    "sqlite": sqlite_insert(_EVENTS).on_conflict_do_nothing().returning(_EVENTS.c.id),
}


def valid_matter_ref(ref: str) -> bool:
    """Matter references are four capital letters and four digits ("AAAA0000")."""
    return isinstance(ref, str) and _MATTER_REF_RE.fullmatch(ref) is not None


def valid_client_id(client_id: str) -> bool:
    """Client ids: 1-64 characters of ``A-Za-z0-9_.:~-`` (uuids, ulids fit)."""
    return isinstance(client_id, str) and _CLIENT_ID_RE.fullmatch(client_id) is not None


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


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A committed (or about to be committed) event, as every layer sees it."""

    matter_id: int
    matter: str
    seq: int
    kind: str
    audience: Literal["portal", "staff"]
    actor: dict[str, Any]
    payload: dict[str, Any]
    blob: bytes | None
    client_id: str | None
    created_at: str
    # Per-viewer-class views built by rtportal.audience.view_for, shared by
    # every connection of that class (read-only by convention).
    _views: dict[str, dict[str, Any] | None] = field(
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
            audience=cast(Literal["portal", "staff"], data["audience"]),
            actor=dict(data["actor"]),
            payload=dict(data["payload"]),
            blob=None if blob is None else b64decode_any(blob),
            client_id=data.get("client_id"),
            created_at=str(data["created_at"]),
        )


def _from_row(row: Event, reference: str) -> StoredEvent:
    return StoredEvent(
        matter_id=row.matter_id,
        matter=reference,
        seq=row.seq,
        kind=row.kind,
        audience=cast(Literal["portal", "staff"], row.audience),
        actor={"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        payload=json.loads(row.payload),
        blob=row.blob,
        client_id=row.client_id,
        created_at=_iso(row.created_at),
    )


def _validate(
    actor: Principal,
    kind: str,
    audience: str,
    payload: dict[str, Any],
    blob: bytes | None,
    client_id: str | None,
    payload_max: int,
    blob_max: int,
) -> str:
    """Check an append request; returns the canonical payload text."""
    if not isinstance(kind, str) or _KIND_RE.fullmatch(kind) is None:
        raise BadRequest("kind must be 1-32 characters of a-z, 0-9, '_', '.', '-'")
    if audience not in AUDIENCES:
        raise BadRequest("audience must be 'portal' or 'staff'")
    if client_id is not None and not valid_client_id(client_id):
        raise BadRequest("client_id must be 1-64 characters of A-Z a-z 0-9 _ . : ~ -")
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    if blob is not None and not isinstance(blob, bytes | bytearray):
        raise BadRequest("blob must be bytes")
    if not actor.is_staff:
        # Contacts write only what clients may see; staff-only data comes from staff.
        if audience != "portal":
            raise BadRequest("contacts may only append events with audience 'portal'")
        if any(isinstance(k, str) and k.startswith("staff_") for k in payload):
            raise BadRequest("contacts may not set staff_* payload fields")
    try:
        text = canonical_json(payload)
        size = len(text.encode("utf-8"))  # a lone surrogate raises UnicodeEncodeError here
    except (TypeError, ValueError, RecursionError):
        raise BadRequest("payload is not valid JSON (NaN, Infinity, lone surrogate?)") from None
    if size > payload_max:
        raise PayloadTooLarge(f"payload is over {payload_max} bytes")
    if blob is not None and len(blob) > blob_max:
        raise PayloadTooLarge(f"blob is over {blob_max} bytes")
    return text


async def _find_retry(
    session: AsyncSession, matter: Matter, actor: Principal, client_id: str
) -> Event | None:
    result = await session.execute(
        select(Event).where(
            Event.matter_id == matter.id,
            Event.actor_kind == actor.kind,
            Event.actor_id == actor.id,
            Event.client_id == client_id,
        )
    )
    return result.scalar_one_or_none()


def _same_content(
    row: Event, kind: str, audience: str, payload_text: str, blob: bytes | None
) -> bool:
    return (
        row.kind == kind
        and row.audience == audience
        and row.payload == payload_text
        # An empty blob and no blob are the same content on both sides (b""
        # may be stored as either): a retry of an empty blob is not a conflict.
        and (row.blob or None) == (bytes(blob) if blob else None)
    )


async def append(
    session: AsyncSession,
    *,
    matter: Matter,
    actor: Principal,
    kind: str,
    audience: str,
    payload: dict[str, Any],
    blob: bytes | None,
    client_id: str | None,
    settings: Settings | None = None,
) -> tuple[StoredEvent, bool]:
    """Append one event in the caller's transaction; returns ``(event, created)``.

    ``matter`` must come from ``can_access`` for ``actor``. A repeated
    ``client_id`` of the same actor on the same matter returns the stored
    event with ``created=False`` (do not publish it again); the same id with
    different content raises ``Conflict``. Limits come from ``settings``
    (defaults: the ``Settings`` defaults).
    """
    if matter.firm_id != actor.firm_id:
        raise NotFound("no such matter")
    payload_max = settings.event_payload_max if settings else DEFAULT_PAYLOAD_MAX
    blob_max = settings.event_blob_max if settings else DEFAULT_BLOB_MAX
    payload_text = _validate(actor, kind, audience, payload, blob, client_id, payload_max, blob_max)
    blob_bytes = bytes(blob) if blob is not None else None

    # Core statements on the session's connection (same transaction), two
    # round trips: UPDATE ... RETURNING, then INSERT.
    conn = await session.connection()
    # Take the matter's row lock (and the next seq) first: a concurrent
    # retry of the same client_id then waits here and, once it holds the
    # lock, sees the winner's committed row.
    result = await conn.execute(_NEXT_SEQ, {"matter_pk": matter.id})
    seq = result.scalar_one_or_none()
    if seq is None:
        raise NotFound("no such matter")

    created = utcnow()
    values = {
        "matter_id": matter.id,
        "seq": seq,
        "kind": kind,
        "audience": audience,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.display_name,
        "payload": payload_text,
        "blob": blob_bytes,
        "client_id": client_id,
        "created_at": created,
    }
    if client_id is None:
        await conn.execute(_INSERT_EVENT, values)
    else:
        # One statement for the common case: the unique (matter, actor,
        # client_id) constraint detects a retry. Any writer that inserted
        # this id held the matter lock we now hold, so it has committed.
        inserted = await conn.execute(_INSERT_EVENT_ONCE[conn.dialect.name], values)
        if inserted.scalar_one_or_none() is None:
            existing = await _find_retry(session, matter, actor, client_id)
            if existing is None:  # pragma: no cover - only a (matter, seq) clash gets here
                raise RuntimeError(f"seq {seq} of matter {matter.id} already exists")
            # Give the seq back while we still hold the lock: no gap.
            await conn.execute(_GIVE_BACK_SEQ, {"matter_pk": matter.id})
            if not _same_content(existing, kind, audience, payload_text, blob_bytes):
                raise Conflict("client_id was already used with different content")
            return _from_row(existing, matter.reference), False
    # Keep the loaded Matter in step without marking it dirty.
    set_committed_value(matter, "last_seq", seq)
    event = StoredEvent(
        matter_id=matter.id,
        matter=matter.reference,
        seq=seq,
        kind=kind,
        audience=cast(Literal["portal", "staff"], audience),
        actor=actor.actor(),
        payload=json.loads(payload_text),
        blob=blob_bytes,
        client_id=client_id,
        created_at=_iso(created),
    )
    return event, True


async def read_since(
    session: AsyncSession, matter_id: int, after_seq: int, limit: int
) -> list[StoredEvent]:
    """Events of a matter with ``seq > after_seq``, in seq order, at most ``limit``."""
    if limit <= 0:
        return []
    result = await session.execute(
        select(Event, Matter.reference)
        .join(Matter, Matter.id == Event.matter_id)
        .where(Event.matter_id == matter_id, Event.seq > after_seq)
        .order_by(Event.seq)
        .limit(limit)
    )
    return [_from_row(row, ref) for row, ref in result.all()]


async def read_before(
    session: AsyncSession, matter_id: int, before_seq: int, limit: int
) -> list[StoredEvent]:
    """The newest ``limit`` events with ``seq < before_seq``, returned in seq order.

    For a chat opening on its latest page (``before_seq = head + 1``) and
    scrolling back.
    """
    if limit <= 0 or before_seq <= 1:
        return []
    result = await session.execute(
        select(Event, Matter.reference)
        .join(Matter, Matter.id == Event.matter_id)
        .where(Event.matter_id == matter_id, Event.seq < before_seq)
        .order_by(Event.seq.desc())
        .limit(limit)
    )
    return [_from_row(row, ref) for row, ref in reversed(result.all())]


async def head(session: AsyncSession, matter_id: int) -> int:
    """The matter's last committed seq (0 for an empty log)."""
    result = await session.execute(select(Matter.last_seq).where(Matter.id == matter_id))
    value = result.scalar_one_or_none()
    if value is None:
        raise NotFound("no such matter")
    return int(value)


async def heads(session: AsyncSession, matter_ids: list[int]) -> dict[int, int]:
    """Head seq of several matters in one query (missing matters are left out)."""
    if not matter_ids:
        return {}
    result = await session.execute(
        select(Matter.id, Matter.last_seq).where(Matter.id.in_(matter_ids))
    )
    return {int(mid): int(seq) for mid, seq in result.all()}


def _membership(principal: Principal) -> Any:
    return and_(
        MatterMember.matter_id == Matter.id,
        MatterMember.principal_kind == principal.kind,
        MatterMember.principal_id == principal.id,
        MatterMember.removed_at.is_(None),
    )


async def active_memberships(
    session: AsyncSession, matter_ids: Sequence[int], principal_ids: Sequence[int]
) -> set[tuple[int, str, int]]:
    """``(matter_id, principal_kind, principal_id)`` of the active memberships among these.

    One query (the hub re-checks the contacts and bots it delivers to: a
    membership removed on another worker, or while the broker was down, must
    still stop the live stream).
    """
    if not matter_ids or not principal_ids:
        return set()
    result = await session.execute(
        select(
            MatterMember.matter_id, MatterMember.principal_kind, MatterMember.principal_id
        ).where(
            MatterMember.matter_id.in_(list(matter_ids)),
            MatterMember.principal_id.in_(list(principal_ids)),
            MatterMember.removed_at.is_(None),
        )
    )
    return {(int(mid), str(kind), int(pid)) for mid, kind, pid in result.all()}


async def can_access(session: AsyncSession, principal: Principal, matter_ref: str) -> Matter:
    """The matter ``matter_ref`` if ``principal`` may see it, else ``NotFound``.

    Staff: any matter of their firm. Contacts and bots: matters where they
    are an active member. Another firm's matter, a removed membership and a
    malformed reference all look exactly like a missing matter.
    """
    if not valid_matter_ref(matter_ref):
        raise NotFound("no such matter")
    query = select(Matter).where(
        Matter.reference == matter_ref, Matter.firm_id == principal.firm_id
    )
    if principal.kind != "staff":
        query = query.where(select(MatterMember.id).where(_membership(principal)).exists())
    matter = (await session.execute(query)).scalar_one_or_none()
    if matter is None:
        raise NotFound("no such matter")
    return matter


async def list_matters(session: AsyncSession, principal: Principal) -> list[Matter]:
    """Every matter ``principal`` may see (same rule as ``can_access``), by reference."""
    query = select(Matter).where(Matter.firm_id == principal.firm_id)
    if principal.kind != "staff":
        query = query.where(select(MatterMember.id).where(_membership(principal)).exists())
    result = await session.execute(query.order_by(Matter.reference))
    return list(result.scalars())
