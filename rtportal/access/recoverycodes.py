"""One-time second-factor recovery codes: made ten at a time, stored as keyed hashes.

A code is ``xxxx-xxxx``: eight characters of a 32-letter alphabet without
look-alikes (40 bits; tries are rate limited with the TOTP codes). Stored
as ``HMAC-SHA256(key, "<credential id>:<code>")`` with a key derived from
the server secret, so a database dump alone does not reveal them; shown
once, when made. ``use`` spends one at most once, even under concurrent
sign-ins (the update only succeeds on an unused row).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import RecoveryCode, utcnow

__all__ = ["COUNT", "delete_codes", "looks_like", "replace_codes", "use"]

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_SHAPE = re.compile(r"[a-z0-9]{4}-?[a-z0-9]{4}")


def _key(secret_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rtportal/recovery-code/v1"
    ).derive(secret_key)


def _normal(code: str) -> str | None:
    """Lower-cased, spaces and the dash removed; None when it is not a recovery code's shape."""
    text = "".join(code.split()).lower()
    if _SHAPE.fullmatch(text) is None:
        return None
    return text.replace("-", "")


def looks_like(code: str) -> bool:
    return _normal(code) is not None


def _hash(secret_key: bytes, credential_id: int, normal: str) -> bytes:
    return hmac.new(_key(secret_key), f"{credential_id}:{normal}".encode(), hashlib.sha256).digest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def replace_codes(session: AsyncSession, secret_key: bytes, credential_id: int) -> list[str]:
    """Drop the credential's codes and make ``COUNT`` new ones (returned once, in clear)."""
    await delete_codes(session, credential_id)
    codes = [_new_code() for _ in range(COUNT)]
    session.add_all(
        RecoveryCode(
            credential_id=credential_id,
            code_hash=_hash(secret_key, credential_id, code.replace("-", "")),
        )
        for code in codes
    )
    await session.flush()
    return codes


async def use(session: AsyncSession, secret_key: bytes, credential_id: int, code: str) -> bool:
    """Spend ``code`` if it is one of the credential's unused codes."""
    normal = _normal(code)
    if normal is None:
        return False
    spent = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.credential_id == credential_id,
            RecoveryCode.code_hash == _hash(secret_key, credential_id, normal),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


async def delete_codes(session: AsyncSession, credential_id: int) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.credential_id == credential_id))
