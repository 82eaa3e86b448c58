"""The audit log: append-only, hash-chained, one chain per firm.

Every security-relevant act (sign-ins and their failures, invites sent,
resent, accepted, removed, login details regenerated, role changes,
session revocations) is recorded with ``record`` in the same transaction
as the act itself, so an act and its audit entry commit or vanish together.

Each entry carries ``firm_seq`` (1, 2, ... per firm; unique, so two
concurrent writers cannot fork the chain: the second one's insert fails
and its transaction is retried by the caller or refused) and
``hash = SHA-256(prev_hash || canonical JSON of the entry's fields)``,
the first entry's ``prev_hash`` being 32 zero bytes. ``verify_chain``
recomputes the chain; ``rtportal audit verify`` runs it over a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import AuditEntry, Firm, utcnow
from rtportal.principal import Principal

__all__ = ["GENESIS", "ChainBroken", "entry_hash", "record", "verify_chain"]

GENESIS = bytes(32)


class ChainBroken(Exception):
    """An audit chain that does not verify: ``firm_id`` and the first bad ``firm_seq``."""

    def __init__(self, firm_id: int, firm_seq: int, why: str) -> None:
        super().__init__(f"firm {firm_id}: audit entry {firm_seq}: {why}")
        self.firm_id = firm_id
        self.firm_seq = firm_seq


def _canonical(entry: AuditEntry) -> bytes:
    fields: dict[str, Any] = {
        "firm_id": entry.firm_id,
        "firm_seq": entry.firm_seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target_id": entry.target_id,
        "matter_id": entry.matter_id,
        "address": entry.address,
        "detail": entry.detail,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(prev_hash: bytes, entry: AuditEntry) -> bytes:
    return hashlib.sha256(prev_hash + _canonical(entry)).digest()


async def record(
    session: AsyncSession,
    *,
    firm_id: int,
    action: str,
    actor: Principal | None = None,
    target: tuple[str, int] | None = None,
    matter_id: int | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to ``firm_id``'s chain in the caller's transaction.

    ``actor`` None: the system or an anonymous caller (a failed sign-in
    names the email tried in ``detail``). The firm row is locked first
    (PostgreSQL ``FOR UPDATE``; SQLite has one writer), so entries of one
    firm are appended one at a time.
    """
    await session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update())
    last = (
        await session.execute(
            select(AuditEntry.firm_seq, AuditEntry.hash)
            .where(AuditEntry.firm_id == firm_id)
            .order_by(AuditEntry.firm_seq.desc())
            .limit(1)
        )
    ).first()
    prev_seq, prev_hash = (last[0], last[1]) if last is not None else (0, GENESIS)
    entry = AuditEntry(
        firm_id=firm_id,
        firm_seq=prev_seq + 1,
        at=(at or utcnow()),
        actor_kind=actor.kind if actor else None,
        actor_id=actor.id if actor else None,
        action=action,
        target_kind=target[0] if target else None,
        target_id=target[1] if target else None,
        matter_id=matter_id,
        address=address,
        detail=json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
        prev_hash=prev_hash,
    )
    # Stored timestamps lose nothing below microseconds on either backend.
    entry.hash = entry_hash(prev_hash, entry)
    session.add(entry)
    await session.flush()
    return entry


def verify_chain(firm_id: int, entries: Iterable[AuditEntry]) -> int:
    """Check one firm's entries (in ``firm_seq`` order); the count, or ``ChainBroken``."""
    prev = GENESIS
    n = 0
    for entry in entries:
        n += 1
        if entry.firm_seq != n:
            raise ChainBroken(firm_id, n, f"sequence gap (found {entry.firm_seq})")
        if entry.prev_hash != prev:
            raise ChainBroken(firm_id, n, "prev_hash does not match the previous entry")
        if entry.hash != entry_hash(prev, entry):
            raise ChainBroken(firm_id, n, "hash does not match the entry")
        prev = entry.hash
    return n


async def count(session: AsyncSession, firm_id: int) -> int:
    result = await session.execute(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.firm_id == firm_id)
    )
    return int(result.scalar_one())
