"""File ids, the ``files`` rows a caller may name, and a firm's limits.

A file id is 16 random bytes as 22 characters of base64url, chosen by the
server: it says nothing of how many files exist and cannot be guessed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, StoredFile
from rtportal.events.event import iso_time
from rtportal.settings import Settings

__all__ = [
    "MAX_FILES",
    "FileLimits",
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
