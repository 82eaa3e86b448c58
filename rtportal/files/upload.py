"""One streamed upload: counted as it arrives, checked, stored whole or not at all.

The order (docs/files.md "Upload"): a declared length over the file limit
is refused before the body is read; room is reserved (``quota``); the body
streams into the storage's temporary object while this module counts it:
the first byte over the file limit is ``file_too_large`` whatever the
declared length said, bytes beyond the reservation grow it or are
``portal_quota_exceeded``, the first bytes must be an RTA1 header, and at
the end the bytes' SHA-256 must be the client's ``Content-Digest``. Only
then does the storage move the blob into place, and the row becomes
``stored``. Every failure on the way deletes the temporary object (the
storage's ``put``), the blob if it was in place, and the row (which gives
the room back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator

from rtportal import logs
from rtportal.crypto.attachment import HEADER_LEN, TAG, VERSION
from rtportal.db import Database
from rtportal.db.models import StoredFile
from rtportal.errors import BadRequest, FileTooLarge, RtPortalError
from rtportal.files import quota
from rtportal.files.rows import FileLimits
from rtportal.files.storage import Storage
from rtportal.principal import Principal

__all__ = ["MIN_BLOB", "Upload", "parse_digest", "receive"]

log = logging.getLogger("rtportal.files")

_MAGIC = b"RTA1" + bytes([VERSION])
MIN_BLOB = HEADER_LEN + TAG  # the empty file: its header and one tag
_DIGEST = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/]{43}=):\s*(?:,|$)")


def parse_digest(header: str | None) -> bytes:
    """The SHA-256 of ``Content-Digest: sha-256=:<base64>:`` (RFC 9530)."""
    if header is None:
        raise BadRequest("Content-Digest (sha-256) is required", reason="digest_required")
    found = _DIGEST.search(header)
    if found is None:
        raise BadRequest("Content-Digest must hold sha-256=:<base64>:", reason="digest_required")
    try:
        return base64.b64decode(found.group(1), validate=True)
    except binascii.Error:
        raise BadRequest("Content-Digest is not base64", reason="digest_required") from None


class Upload:
    """What one upload has counted; ``chunks`` is the stream the storage consumes."""

    __slots__ = ("body", "db", "digest", "hash", "idle", "limits", "reservation", "size")

    def __init__(
        self,
        db: Database,
        body: AsyncIterator[bytes],
        limits: FileLimits,
        reservation: quota.Reservation,
        digest: bytes,
        idle: float,
    ) -> None:
        self.db = db
        self.body = body
        self.limits = limits
        self.reservation = reservation
        self.digest = digest
        self.idle = idle
        self.hash = hashlib.sha256()
        self.size = 0

    async def _next(self) -> bytes | None:
        try:
            async with asyncio.timeout(self.idle):
                return await anext(self.body)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise BadRequest("the upload stalled", reason="upload_stalled") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        head = b""
        while (chunk := await self._next()) is not None:
            if not chunk:
                continue
            size = self.size + len(chunk)
            if size > self.limits.file_max:
                raise FileTooLarge(
                    f"a file may hold at most {self.limits.file_max} bytes",
                    limit=self.limits.file_max,
                )
            r = self.reservation
            if size > r.reserved:
                await quota.grow(
                    self.db, r, need=size - r.reserved, want=self.limits.file_max - r.reserved
                )
            if len(head) < len(_MAGIC):
                head = (head + chunk)[: len(_MAGIC)]
                if not _MAGIC.startswith(head):
                    raise _not_rta1()
            self.size = size
            self.hash.update(chunk)
            yield chunk
        if self.size < MIN_BLOB:
            raise _not_rta1()
        if not hmac.compare_digest(self.hash.digest(), self.digest):
            raise BadRequest(
                "the body's SHA-256 is not its Content-Digest", reason="digest_mismatch"
            )


def _not_rta1() -> BadRequest:
    return BadRequest("the body is not an RTA1 attachment stream", reason="not_rta1")


async def receive(
    db: Database,
    storage: Storage,
    principal: Principal,
    matter_id: int,
    limits: FileLimits,
    body: AsyncIterator[bytes],
    *,
    declared: int | None,
    digest: bytes,
    idle: float,
) -> StoredFile:
    """Store one upload of ``matter_id`` by ``principal``; its ``stored`` row.

    A refusal is logged (``upload_refused``) once everything it made is gone."""
    upload: Upload | None = None
    placed = False
    try:
        if declared is not None and declared > limits.file_max:
            raise FileTooLarge(
                f"a file may hold at most {limits.file_max} bytes", limit=limits.file_max
            )
        if declared is not None:
            need = want = max(declared, 1)
        else:
            # Chunked: what it may need (up to the file limit) of what is left, up
            # front, so concurrent uploads near the quota are decided once each
            # rather than starving one another a piece at a time.
            need, want = 1, limits.file_max
        reservation = await quota.reserve(
            db, principal, matter_id, limits.quota, need=need, want=want
        )
        upload = Upload(db, body, limits, reservation, digest, idle)
        size = await storage.put(reservation.file_id, upload.chunks())
        placed = True
        return await quota.store(db, reservation, size)
    except BaseException as exc:
        # Refused, broken or cancelled: the blob (if placed) and the row go; the
        # storage's put has removed its temporary object already.
        if upload is not None:
            if placed:
                await storage.delete(upload.reservation.file_id)
            await quota.release(db, upload.reservation)
        logs.event(
            log,
            "upload_refused",
            logging.INFO,
            code=exc.code if isinstance(exc, RtPortalError) else type(exc).__name__,
            reason=exc.details.get("reason") if isinstance(exc, RtPortalError) else None,
            matter=matter_id,
            principal=f"{principal.kind}:{principal.id}",
            received=None if upload is None else upload.size,
        )
        raise
