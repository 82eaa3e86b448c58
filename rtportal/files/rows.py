"""File ids, the ``files`` rows a caller may name, and a firm's limits.

A file id is 16 random bytes as 22 characters of base64url, chosen by the
server: it says nothing of how many files exist and cannot be guessed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, StoredFile
from rtportal.errors import BadRequest, NotFound
from rtportal.events.event import iso_time
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "MAX_FILES",
    "FileLimits",
    "claim",
    "distinct_ids",
    "file_body",
    "firm_limits",
    "new_file_id",
    "stored_file",
    "valid_file_id",
]

MAX_FILES = 20  # files one item may name
_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def new_file_id() -> str:
    return secrets.token_urlsafe(16)


def valid_file_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def distinct_ids(
    value: Any, valid: Callable[[Any], bool], maximum: int, field: str, reason: str
) -> list[str]:
    """A list of 1 to ``maximum`` distinct ids, each ``valid``; else ``bad_request``
    with ``reason`` (``payload.files``, a document's ``files`` and ``items``)."""
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= maximum
        or not all(valid(v) for v in value)
        or len(set(value)) != len(value)
    ):
        raise BadRequest(f"{field}: 1 to {maximum} distinct ids", field=field, reason=reason)
    return list(value)


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Ciphertext bytes: one file at most ``file_max``; a matter's files at most ``quota``."""

    file_max: int
    quota: int


async def firm_limits(session: AsyncSession, firm_id: int, settings: Settings) -> FileLimits:
    """The firm's own limits, else the server's (``RTPORTAL_FILE_MAX_BYTES``,
    ``RTPORTAL_PORTAL_QUOTA_BYTES``)."""
    row = (
        await session.execute(
            select(Firm.file_max_bytes, Firm.portal_quota_bytes).where(Firm.id == firm_id)
        )
    ).first()
    file_max = row.file_max_bytes if row is not None else None
    quota = row.portal_quota_bytes if row is not None else None
    return FileLimits(
        int(file_max) if file_max is not None else settings.file_max_bytes,
        int(quota) if quota is not None else settings.portal_quota_bytes,
    )


async def stored_file(session: AsyncSession, matter_id: int, file_id: str) -> StoredFile | None:
    """The stored (not pending) file ``file_id`` of the matter, or ``None``."""
    if not valid_file_id(file_id):
        return None
    return (
        await session.execute(
            select(StoredFile).where(
                StoredFile.id == file_id,
                StoredFile.matter_id == matter_id,
                StoredFile.state == "stored",
            )
        )
    ).scalar_one_or_none()


def file_body(row: StoredFile) -> dict[str, Any]:
    return {"id": row.id, "size": int(row.size), "created_at": iso_time(row.created_at)}


async def claim(
    session: AsyncSession, principal: Principal, matter_id: int, files: list[str], item: str
) -> None:
    """Set ``item`` on ``files``: stored files of the matter uploaded by
    ``principal``, free or ``item``'s already (a retry claims its own again);
    else ``not_found`` ``no_such_file`` (one answer for all three: a file of
    someone else does not exist for the caller) and the caller rolls back.
    The caller holds the matter's lock (``rtportal.files.quota.lock_matter``)."""
    claimed = await session.execute(
        update(StoredFile)
        .where(
            StoredFile.id.in_(files),
            StoredFile.matter_id == matter_id,
            StoredFile.uploader_kind == principal.kind,
            StoredFile.uploader_id == principal.id,
            StoredFile.state == "stored",
            or_(StoredFile.item.is_(None), StoredFile.item == item),
        )
        .values(item=item)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != len(files):
        raise NotFound("no such file", reason="no_such_file")
