"""The key directory's tables: the lookups and inserts the services and reads share.

Records are stored as sent; the columns beside them (principal, kid,
epoch, version, recipient) are what they are found by. Versioned records
and manifests are inserted under a savepoint, so a primary-key collision
(two writers of the same version or epoch) is a clean ``False`` on every
backend instead of a spoilt transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.crypto.certs import Certificate
from rtportal.crypto.keys import EscrowRecord, FirmRootPublic
from rtportal.db.models import (
    Base,
    KeyCert,
    KeyClientRevocation,
    KeyEscrow,
    KeyHead,
    KeyManifest,
    KeyRevocationList,
    KeyRoot,
    KeyWrap,
    utcnow,
)
from rtportal.keys import records

__all__ = [
    "certified",
    "certs_of",
    "client_certs_of_matter",
    "client_revocations",
    "escrow_kid",
    "escrow_records",
    "firm_certs",
    "frk",
    "head_of",
    "insert_once",
    "manifests_since",
    "mark_revoked",
    "newest_epoch",
    "newest_escrow_version",
    "newest_manifest",
    "newest_revocation_list",
    "save_cert",
    "wraps_for",
]


# The largest value of the tables' Integer / BigInteger columns: rtp1's u32 and
# u64 fields may be larger, and are refused before they reach a statement.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


async def frk(session: AsyncSession, firm_id: int) -> FirmRootPublic | None:
    row = await session.get(KeyRoot, firm_id)
    return None if row is None else records.root(row.record)


async def insert_once(session: AsyncSession, row: Base) -> bool:
    """Insert ``row``; ``False`` if its primary or unique key is taken (nothing written)."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def save_cert(session: AsyncSession, firm_id: int, cert: Certificate) -> bool:
    """Store ``cert`` unless the same (user, kid, serial) is stored; ``True`` if new."""
    body = cert.body
    return await insert_once(
        session,
        KeyCert(
            firm_id=firm_id,
            principal=body.user,
            kid=body.kid,
            role=int(body.role),
            serial=body.serial,
            issuer=body.issuer,
            scopes=" ".join(body.scopes),
            record=cert.encode(),
        ),
    )


async def certified(
    session: AsyncSession, firm_id: int, user: str, kid: bytes, matter: str | None = None
) -> KeyCert | None:
    """The newest stored, unrevoked certificate of ``user``'s key ``kid`` (in scope of
    ``matter`` when given), or ``None``."""
    rows = await session.execute(
        select(KeyCert)
        .where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.kid == kid,
            KeyCert.revoked_at.is_(None),
        )
        .order_by(KeyCert.serial.desc())
    )
    for row in rows.scalars():
        scopes = row.scopes.split()
        if matter is None or not scopes or matter in scopes:
            return row
    return None


async def certs_of(session: AsyncSession, firm_id: int, user: str) -> list[KeyCert]:
    rows = await session.execute(
        select(KeyCert)
        .where(KeyCert.firm_id == firm_id, KeyCert.principal == user)
        .order_by(KeyCert.id)
    )
    return list(rows.scalars())


async def firm_certs(session: AsyncSession, firm_id: int, roles: Sequence[int]) -> list[KeyCert]:
    rows = await session.execute(
        select(KeyCert)
        .where(KeyCert.firm_id == firm_id, KeyCert.role.in_(list(roles)))
        .order_by(KeyCert.id)
    )
    return list(rows.scalars())


async def client_certs_of_matter(
    session: AsyncSession, firm_id: int, matter: str, role: int
) -> list[KeyCert]:
    """Client certificates scoped to ``matter`` (scopes are stored space-separated); of a
    key certified again with wider scopes (docs/keys.md "A second matter") only the newest
    (highest serial): clients refuse an older certificate of a key than one they saw."""
    rows = await session.execute(
        select(KeyCert)
        .where(
            KeyCert.firm_id == firm_id,
            KeyCert.role == role,
            KeyCert.scopes.contains(matter),
        )
        .order_by(KeyCert.id)
    )
    scoped = [row for row in rows.scalars() if matter in row.scopes.split()]
    newest: dict[tuple[str, bytes], int] = {}
    for row in scoped:
        key = (row.principal, row.kid)
        newest[key] = max(newest.get(key, 0), row.serial)
    return [row for row in scoped if row.serial == newest[(row.principal, row.kid)]]


async def mark_revoked(session: AsyncSession, firm_id: int, user: str, kid: bytes) -> None:
    """The server refuses writes signed with this key from now on."""
    await session.execute(
        update(KeyCert)
        .where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.kid == kid,
            KeyCert.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )


async def client_revocations(session: AsyncSession, firm_id: int) -> list[KeyClientRevocation]:
    rows = await session.execute(
        select(KeyClientRevocation)
        .where(KeyClientRevocation.firm_id == firm_id)
        .order_by(KeyClientRevocation.id)
    )
    return list(rows.scalars())


async def newest_revocation_list(session: AsyncSession, firm_id: int) -> KeyRevocationList | None:
    rows = await session.execute(
        select(KeyRevocationList)
        .where(KeyRevocationList.firm_id == firm_id)
        .order_by(KeyRevocationList.version.desc())
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def escrow_records(session: AsyncSession, firm_id: int) -> list[KeyEscrow]:
    rows = await session.execute(
        select(KeyEscrow).where(KeyEscrow.firm_id == firm_id).order_by(KeyEscrow.version)
    )
    return list(rows.scalars())


async def escrow_kid(session: AsyncSession, firm_id: int, version: int) -> bytes | None:
    """The key id of the FEK of escrow ``version`` (``None``: no such record)."""
    if not 1 <= version <= INT_MAX:
        return None
    row = await session.get(KeyEscrow, (firm_id, version))
    return None if row is None else EscrowRecord.decode(row.record).body.public.kid


async def newest_escrow_version(session: AsyncSession, firm_id: int) -> int:
    value = await session.scalar(
        select(func.max(KeyEscrow.version)).where(KeyEscrow.firm_id == firm_id)
    )
    return int(value or 0)


async def newest_manifest(session: AsyncSession, matter_id: int) -> KeyManifest | None:
    rows = await session.execute(
        select(KeyManifest)
        .where(KeyManifest.matter_id == matter_id)
        .order_by(KeyManifest.epoch.desc())
        .limit(1)
    )
    return rows.scalar_one_or_none()


_MANIFESTS = KeyManifest.__table__.c
_NEWEST = (
    select(_MANIFESTS.matter_id, func.max(_MANIFESTS.epoch).label("epoch"))
    .where(_MANIFESTS.matter_id.in_(bindparam("ids", expanding=True)))
    .group_by(_MANIFESTS.matter_id)
    .subquery()
)
# Built once (bound ``ids``): the group commit runs it once per batch, and building
# an ORM select each time cost more than running it.
_NEWEST_EPOCHS = select(_MANIFESTS.matter_id, _MANIFESTS.epoch, _MANIFESTS.hash).join(
    _NEWEST, and_(_MANIFESTS.matter_id == _NEWEST.c.matter_id, _MANIFESTS.epoch == _NEWEST.c.epoch)
)


async def newest_epoch(
    session: AsyncSession, matter_ids: Sequence[int]
) -> dict[int, tuple[int, bytes]]:
    """The newest epoch and its manifest's hash of each of the matters that has one
    (one query for a batch)."""
    if not matter_ids:
        return {}
    rows = await session.execute(_NEWEST_EPOCHS, {"ids": list(matter_ids)})
    return {int(mid): (int(epoch), bytes(hash_)) for mid, epoch, hash_ in rows.all()}


async def manifests_since(session: AsyncSession, matter_id: int, since: int) -> list[KeyManifest]:
    rows = await session.execute(
        select(KeyManifest)
        .where(KeyManifest.matter_id == matter_id, KeyManifest.epoch >= since)
        .order_by(KeyManifest.epoch)
    )
    return list(rows.scalars())


async def head_of(session: AsyncSession, matter_id: int) -> KeyHead | None:
    return await session.get(KeyHead, matter_id)


async def wraps_for(
    session: AsyncSession,
    firm_id: int,
    matter_id: int | None,
    recipients: Sequence[str],
    since: int = 0,
) -> list[KeyWrap]:
    """Wraps of a matter (``None``: the firm keys) addressed to one of ``recipients``."""
    matter = KeyWrap.matter_id.is_(None) if matter_id is None else KeyWrap.matter_id == matter_id
    rows = await session.execute(
        select(KeyWrap)
        .where(
            KeyWrap.firm_id == firm_id,
            matter,
            KeyWrap.recipient.in_(list(recipients)),
            KeyWrap.epoch >= since,
        )
        .order_by(KeyWrap.id)
    )
    return list(rows.scalars())
