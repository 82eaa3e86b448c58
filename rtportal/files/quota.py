"""A matter's room for files: reserved under the matter's row lock, before bytes are kept.

An upload's reservation is its own ``files`` row in state ``pending`` whose
``size`` is the bytes reserved. Every reservation (and every growth of
one) runs in a write transaction that first locks the matter's row
(PostgreSQL ``FOR UPDATE``; on SQLite the write transaction holds the
database's lock) and then sums the matter's rows, stored and pending: two
uploads of one matter are decided one after the other, so together they
never pass the quota. Deleting the row gives the room back; a worker that
died mid-upload leaves a pending row that ``sweep_pending`` removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db import Database
from rtportal.db.models import Matter, StoredFile, utcnow
from rtportal.errors import PortalQuotaExceeded
from rtportal.files.rows import new_file_id
from rtportal.principal import Principal

__all__ = [
    "Reservation",
    "grow",
    "lock_matter",
    "release",
    "reserve",
    "store",
    "sweep_pending",
    "used",
]


@dataclass(slots=True)
class Reservation:
    """An upload's pending row: ``reserved`` bytes of ``quota`` held for it."""

    file_id: str
    matter_id: int
    quota: int
    reserved: int


async def lock_matter(session: AsyncSession, matter_id: int) -> None:
    query = select(Matter.id).where(Matter.id == matter_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    await session.execute(query)


async def used(session: AsyncSession, matter_id: int) -> int:
    """Bytes the matter's files hold or have reserved."""
    total = await session.scalar(
        select(func.coalesce(func.sum(StoredFile.size), 0)).where(StoredFile.matter_id == matter_id)
    )
    return int(total or 0)


async def _grant(session: AsyncSession, matter_id: int, quota: int, need: int, want: int) -> int:
    """Under the lock: ``want`` bytes, or what is left if less, but at least ``need``."""
    await lock_matter(session, matter_id)
    room = quota - await used(session, matter_id)
    grant = min(want, room)
    if grant < need:
        raise PortalQuotaExceeded("the portal has no room left for this file", quota=quota)
    return grant


async def reserve(
    db: Database, principal: Principal, matter_id: int, quota: int, *, need: int, want: int
) -> Reservation:
    """A new pending row holding between ``need`` and ``want`` bytes, or
    ``PortalQuotaExceeded``."""
    async with db.write() as session:
        grant = await _grant(session, matter_id, quota, need, want)
        file_id = new_file_id()
        session.add(
            StoredFile(
                id=file_id,
                matter_id=matter_id,
                uploader_kind=principal.kind,
                uploader_id=principal.id,
                state="pending",
                size=grant,
            )
        )
    return Reservation(file_id, matter_id, quota, grant)


async def grow(db: Database, r: Reservation, *, need: int, want: int) -> None:
    """Hold ``need`` to ``want`` more bytes for ``r``, or ``PortalQuotaExceeded``."""
    async with db.write() as session:
        grant = await _grant(session, r.matter_id, r.quota, need, want)
        await session.execute(
            update(StoredFile)
            .where(StoredFile.id == r.file_id, StoredFile.state == "pending")
            .values(size=r.reserved + grant)
        )
    r.reserved += grant


async def store(db: Database, r: Reservation, size: int) -> StoredFile:
    """The upload is in place: the row is ``stored`` with its exact size (the rest given back)."""
    async with db.write() as session:
        row = await session.get(StoredFile, r.file_id)
        if row is None:  # swept while the upload ran (an hour): refuse rather than exceed
            raise PortalQuotaExceeded("the upload took too long", quota=r.quota)
        row.state = "stored"
        row.size = size
        await session.flush()
        session.expunge(row)
    return row


async def release(db: Database, r: Reservation) -> None:
    """Give the room back: the upload's row is deleted, whatever its state."""
    async with db.write() as session:
        await session.execute(delete(StoredFile).where(StoredFile.id == r.file_id))


async def sweep_pending(db: Database, older_than: timedelta) -> int:
    """Delete pending rows older than ``older_than`` (a worker died mid-upload); how many."""
    async with db.write() as session:
        result = await session.execute(
            delete(StoredFile).where(
                StoredFile.state == "pending", StoredFile.created_at < utcnow() - older_than
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
