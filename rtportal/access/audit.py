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
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db import Database
from rtportal.db.models import AuditEntry, Firm, utcnow
from rtportal.errors import NotFound
from rtportal.principal import Principal

__all__ = [
    "GENESIS",
    "ChainBroken",
    "ChainCheck",
    "chain_pages",
    "entries_after",
    "entry_hash",
    "record",
    "verify_chain",
    "verify_firm",
    "verify_firms",
]

GENESIS = bytes(32)
EXPORT_PAGE = 500  # entries read per transaction by exports and verification


class ChainBroken(Exception):
    """An audit chain that does not verify: ``firm_id`` and the first bad ``firm_seq``."""

    def __init__(self, firm_id: int, firm_seq: int, why: str) -> None:
        super().__init__(f"firm {firm_id}: audit entry {firm_seq}: {why}")
        self.firm_id = firm_id
        self.firm_seq = firm_seq
        self.why = why


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
    (PostgreSQL ``FOR NO KEY UPDATE``; SQLite has one writer), so entries of one
    firm are appended one at a time.
    """
    # FOR NO KEY UPDATE, not FOR UPDATE: a transaction that inserted a row
    # referencing the firm holds KEY SHARE on it, which this does not wait
    # for, so two such transactions that then audit cannot deadlock.
    await session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update(key_share=True))
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


class ChainCheck:
    """Checks one firm's entries fed in ``firm_seq`` order, a page at a time."""

    __slots__ = ("count", "firm_id", "prev")

    def __init__(self, firm_id: int) -> None:
        self.firm_id = firm_id
        self.prev = GENESIS
        self.count = 0

    def feed(self, entry: AuditEntry) -> None:
        n = self.count + 1
        if entry.firm_seq != n:
            raise ChainBroken(self.firm_id, n, f"sequence gap (found {entry.firm_seq})")
        if entry.prev_hash != self.prev:
            raise ChainBroken(self.firm_id, n, "prev_hash does not match the previous entry")
        if entry.hash != entry_hash(self.prev, entry):
            raise ChainBroken(self.firm_id, n, "hash does not match the entry")
        self.prev = entry.hash
        self.count = n


def verify_chain(firm_id: int, entries: Iterable[AuditEntry]) -> int:
    """Check one firm's entries (in ``firm_seq`` order); the count, or ``ChainBroken``."""
    check = ChainCheck(firm_id)
    for entry in entries:
        check.feed(entry)
    return check.count


async def entries_after(
    session: AsyncSession, firm_id: int, after_seq: int, limit: int
) -> Sequence[AuditEntry]:
    """One page of ``firm_id``'s chain, oldest first, from ``after_seq + 1``."""
    result = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.firm_id == firm_id, AuditEntry.firm_seq > after_seq)
        .order_by(AuditEntry.firm_seq)
        .limit(limit)
    )
    return result.all()


async def chain_pages(
    db: Database, firm_id: int, page: int = EXPORT_PAGE
) -> AsyncIterator[Sequence[AuditEntry]]:
    """The whole chain, oldest first, one short read transaction per page
    (memory bounded by ``page``, however long the chain)."""
    after = 0
    while True:
        async with db.read() as session:
            rows = await entries_after(session, firm_id, after, page)
        if not rows:
            return
        yield rows
        after = rows[-1].firm_seq


async def verify_firm(db: Database, firm_id: int) -> int:
    """Check ``firm_id``'s whole chain: the count of entries, or ``ChainBroken``.

    An entry changed, inserted or deleted inside the chain breaks it;
    entries deleted from its end leave a shorter valid chain (compare the
    count with an earlier run or an export to see that).
    """
    check = ChainCheck(firm_id)
    async for rows in chain_pages(db, firm_id):
        for entry in rows:
            check.feed(entry)
    return check.count


async def count(session: AsyncSession, firm_id: int) -> int:
    result = await session.execute(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.firm_id == firm_id)
    )
    return int(result.scalar_one())


async def verify_firms(db: Database, slug: str | None = None) -> list[tuple[str, int]]:
    """Verify every firm's chain (or the firm ``slug``'s): [(slug, entries)] in
    firm order; ``ChainBroken`` at the first bad entry; ``NotFound`` for an unknown slug."""
    query = select(Firm.id, Firm.slug).order_by(Firm.id)
    if slug is not None:
        query = query.where(Firm.slug == slug)
    async with db.read() as session:
        firms = (await session.execute(query)).all()
    if slug is not None and not firms:
        raise NotFound(f"no firm with slug {slug!r}")
    return [(firm_slug, await verify_firm(db, firm_id)) for firm_id, firm_slug in firms]
