"""Attachments: a file encrypted with RTA1 and uploaded as a stream; downloaded and
decrypted as a stream (docs/files.md, docs/security.md §9).

Upload: the file is encrypted chunk by chunk into a temporary file (its
whole-blob SHA-256, the descriptor's ``ct_sha256``, is known only at the
end, and the server wants it as ``Content-Digest`` up front), then that is
streamed to the server; the temporary file is removed either way. The
``Attached`` result holds the server's file id and the descriptor that goes
into the message body (name and type stay inside the encrypted message).

Download: the blob streams through ``AttachmentDecryptor`` into
``<dst>.part``, renamed to ``dst`` only once the last chunk, the size and
the whole-blob hash checked out (a server that swapped, cut or extended the
blob is ``crypto_attachment``, and nothing is left at ``dst``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rtportal.crypto.attachment import AttachmentDecryptor, PlaintextFile, encrypt_file
from rtportal.crypto.envelope import AttachmentDescriptor
from rtportal.sdk.transport import Http

__all__ = ["Attached", "download_attachment", "upload_attachment"]


@dataclass(frozen=True, slots=True)
class Attached:
    """An uploaded attachment: the server's file id and the body's descriptor."""

    file_id: str
    descriptor: AttachmentDescriptor


async def upload_attachment(
    http: Http, matter: str, src: Path, *, name: str | None = None, mime: str = ""
) -> Attached:
    """Encrypt ``src`` under a fresh file key and upload it to ``matter``."""
    fd, tmp_name = tempfile.mkstemp(prefix="rtp-", suffix=".rta1")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        sealed = await asyncio.to_thread(encrypt_file, src, tmp)
        answer = await http.upload(f"/api/v1/matters/{matter}/files", tmp, sealed.ct_sha256)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    descriptor = AttachmentDescriptor(
        sealed.att_id, sealed.fk, sealed.ct_sha256, sealed.size, name or src.name, mime
    )
    return Attached(str(answer["file"]["id"]), descriptor)


async def download_attachment(
    http: Http, matter: str, file_id: str, descriptor: AttachmentDescriptor, dst: Path
) -> int:
    """Download file ``file_id`` of ``matter``, decrypt it to ``dst``; the plaintext size."""
    d = AttachmentDecryptor(
        descriptor.fk, descriptor.att_id, ct_sha256=descriptor.ct_sha256, size=descriptor.size
    )
    with PlaintextFile(dst, d) as out:
        async for piece in http.download(f"/api/v1/matters/{matter}/files/{file_id}"):
            out.feed(piece)
    return out.written
