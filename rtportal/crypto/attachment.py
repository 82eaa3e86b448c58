"""Streamed attachments: STREAM over AES-256-GCM in 64 KiB chunks (docs/security.md §9).

Encryptor and decryptor are incremental objects holding at most one chunk
(plus the piece being fed), so a 5 MiB file is never held twice. The last
chunk has its own nonce flag, which is how truncation and extension are
caught; the header (version + att_id) is every chunk's AAD, so a chunk from
another attachment never authenticates here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtportal.crypto.errors import AttachmentInvalid, EncodingInvalid
from rtportal.crypto.kdf import attachment_chunk_key
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "CHUNK",
    "CT_CHUNK",
    "HEADER_LEN",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "PlaintextFile",
    "Sealed",
    "blob_length",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt_bytes",
    "encrypt_file",
    "header",
    "new_attachment",
]

CHUNK = 65536
TAG = 16
CT_CHUNK = CHUNK + TAG
VERSION = 1
HEADER_LEN = 21
_READ = CHUNK


def header(att_id: bytes) -> bytes:
    if len(att_id) != 16:
        raise EncodingInvalid("att_id is 16 bytes")
    return b"RTA1" + bytes([VERSION]) + att_id


def blob_length(size: int) -> int:
    """``21 + size + 16·max(1, ceil(size/65536))``: servers enforce limits on this."""
    chunks = max(1, -(-size // CHUNK))
    return HEADER_LEN + size + TAG * chunks


def _nonce(i: int, last: bool) -> bytes:
    return i.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def new_attachment(rng: Rng = system_rng) -> tuple[bytes, bytes]:
    """A fresh ``(att_id, fk)`` (``att_id`` drawn first, as JavaScript's ``newAttachmentIds``)."""
    return rng(16), rng(32)


class AttachmentEncryptor:
    """``header`` first, then ``update()`` pieces, then ``finalize()``; concatenate all outputs.

    The encryptor draws its own ``(att_id, fk)`` (read them from ``.att_id`` and
    ``.fk`` for the descriptor): the caller cannot hand it a pair used before,
    and a reused pair would repeat every chunk nonce under one key. Only golden
    vectors inject a deterministic ``rng``.
    """

    def __init__(self, rng: Rng = system_rng) -> None:
        self.att_id, self.fk = new_attachment(rng)
        if len(self.att_id) != 16 or len(self.fk) != 32:
            raise EncodingInvalid("att_id is 16 bytes and file keys are 32")
        self.header = header(self.att_id)
        self._aead = AESGCM(attachment_chunk_key(self.fk, self.att_id))
        self._buf = bytearray()
        self._i = 0
        self._size = 0
        self._done = False
        self._hash = hashlib.sha256(self.header)

    def _seal(self, pt: bytes, last: bool) -> bytes:
        out = self._aead.encrypt(_nonce(self._i, last), pt, self.header)
        self._i += 1
        self._hash.update(out)
        return out

    def update(self, data: bytes) -> bytes:
        """Ciphertext of every chunk now known not to be the last (one chunk is held back)."""
        if self._done:
            raise ValueError("encryptor finalized")
        self._buf += data
        self._size += len(data)
        out = []
        while len(self._buf) > CHUNK:
            out.append(self._seal(bytes(self._buf[:CHUNK]), last=False))
            del self._buf[:CHUNK]
        return b"".join(out)

    def finalize(self) -> bytes:
        """The last chunk (an empty file is one empty last chunk)."""
        if self._done:
            raise ValueError("encryptor finalized")
        self._done = True
        out = self._seal(bytes(self._buf), last=True)
        self._buf.clear()
        return out

    @property
    def size(self) -> int:
        return self._size

    @property
    def ct_sha256(self) -> bytes:
        """SHA-256 of the whole blob (header included); valid after ``finalize()``."""
        if not self._done:
            raise ValueError("ct_sha256 is known after finalize()")
        return self._hash.digest()


class AttachmentDecryptor:
    """Feed the blob with ``update()``; ``finalize()`` checks the end and the whole-blob hash.

    Plaintext is released per authenticated chunk; if ``finalize()`` (or any
    call) raises, the consumer must discard everything it received.
    ``ct_sha256`` (the descriptor's) is required: without it, whoever holds
    ``fk`` could splice chunks of two blobs made under one ``(fk, att_id)``.
    """

    def __init__(
        self,
        fk: bytes,
        att_id: bytes,
        *,
        ct_sha256: bytes,
        size: int | None = None,
    ) -> None:
        if len(fk) != 32:
            raise EncodingInvalid("file keys are 32 bytes")
        if not isinstance(ct_sha256, bytes) or len(ct_sha256) != 32:
            raise EncodingInvalid("ct_sha256 (32 bytes) is required to open an attachment")
        self._header = header(att_id)
        self._aead = AESGCM(attachment_chunk_key(fk, att_id))
        self._expect_hash = ct_sha256
        self._expect_size = size
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._header_ok = False
        self._i = 0
        self._size = 0
        self._state = "open"  # "open" | "done" | "failed"

    def _fail(self, why: str) -> AttachmentInvalid:
        self._state = "failed"
        self._buf.clear()
        return AttachmentInvalid(why)

    def _open(self, ct: bytes, last: bool) -> bytes:
        try:
            pt = self._aead.decrypt(_nonce(self._i, last), ct, self._header)
        except InvalidTag:
            raise self._fail(f"chunk {self._i} does not authenticate") from None
        self._i += 1
        self._size += len(pt)
        if self._expect_size is not None and self._size > self._expect_size:
            raise self._fail("attachment longer than its descriptor says")
        return pt

    def update(self, data: bytes) -> bytes:
        if self._state != "open":
            raise AttachmentInvalid(f"decryptor is {self._state}")
        self._hash.update(data)
        self._buf += data
        if not self._header_ok:
            if len(self._buf) < HEADER_LEN:
                return b""
            if not hmac.compare_digest(bytes(self._buf[:HEADER_LEN]), self._header):
                raise self._fail("attachment header is not the expected one")
            del self._buf[:HEADER_LEN]
            self._header_ok = True
        out = []
        while len(self._buf) > CT_CHUNK:
            out.append(self._open(bytes(self._buf[:CT_CHUNK]), last=False))
            del self._buf[:CT_CHUNK]
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._state != "open":
            raise AttachmentInvalid(f"decryptor is {self._state}")
        if not self._header_ok:
            raise self._fail("attachment shorter than its header")
        if len(self._buf) < TAG:
            raise self._fail("attachment truncated")
        pt = self._open(bytes(self._buf), last=True)
        self._buf.clear()
        if not pt and self._i > 1:
            # the encryptor never makes it (only an empty file has an empty last chunk), so it is
            # a non-canonical blob: one plaintext, one blob (same rule as static/crypto/stream.js)
            raise self._fail("empty last chunk after data")
        if self._expect_size is not None and self._size != self._expect_size:
            raise self._fail("attachment size differs from its descriptor")
        if not hmac.compare_digest(self._hash.digest(), self._expect_hash):
            raise self._fail("attachment blob hash differs from its descriptor")
        self._state = "done"
        return pt


def encrypt_bytes(data: bytes, rng: Rng = system_rng) -> tuple[bytes, bytes, bytes]:
    """``(att_id, fk, blob)`` of ``data`` under a fresh ``(att_id, fk)``."""
    e = AttachmentEncryptor(rng)
    return e.att_id, e.fk, e.header + e.update(data) + e.finalize()


def decrypt_bytes(fk: bytes, att_id: bytes, blob: bytes, *, ct_sha256: bytes) -> bytes:
    d = AttachmentDecryptor(fk, att_id, ct_sha256=ct_sha256)
    return d.update(blob) + d.finalize()


@dataclass(frozen=True, slots=True)
class Sealed:
    """What a descriptor needs of an encrypted file."""

    att_id: bytes
    fk: bytes
    ct_sha256: bytes
    size: int


def encrypt_file(src: Path, dst: Path, rng: Rng = system_rng) -> Sealed:
    """Encrypt ``src`` into ``dst`` chunk by chunk under a fresh ``(att_id, fk)``."""
    e = AttachmentEncryptor(rng)
    with src.open("rb") as fin, dst.open("wb") as fout:
        fout.write(e.header)
        while piece := fin.read(_READ):
            fout.write(e.update(piece))
        fout.write(e.finalize())
    return Sealed(e.att_id, e.fk, e.ct_sha256, e.size)


class PlaintextFile:
    """A decryptor's plaintext written to ``dst`` by pieces, atomically: into
    ``dst.part``, renamed to ``dst`` only once ``finalize`` has verified the
    whole file, removed on any failure (a wrong tag, a short file, an error
    of the caller's). ``written``: the plaintext bytes so far.

    ``with PlaintextFile(dst, decryptor) as out: out.feed(piece)`` for each
    piece of ciphertext, from a file or from a network stream alike."""

    def __init__(self, dst: Path, decryptor: AttachmentDecryptor) -> None:
        self._dst = dst
        self._part = dst.with_name(dst.name + ".part")
        self._d = decryptor
        self._out: BinaryIO | None = None
        self.written = 0

    def __enter__(self) -> PlaintextFile:
        self._out = self._part.open("wb")
        return self

    def feed(self, piece: bytes) -> None:
        assert self._out is not None
        plain = self._d.update(piece)
        self._out.write(plain)
        self.written += len(plain)

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        assert self._out is not None
        try:
            if exc is None:
                plain = self._d.finalize()
                self._out.write(plain)
                self.written += len(plain)
            self._out.close()
            if exc is None:
                os.replace(self._part, self._dst)
        except BaseException:
            self._out.close()
            self._part.unlink(missing_ok=True)
            raise
        if exc is not None:
            self._part.unlink(missing_ok=True)


def decrypt_file(
    src: Path, dst: Path, fk: bytes, att_id: bytes, *, ct_sha256: bytes, size: int | None = None
) -> int:
    """Decrypt into a temporary file renamed to ``dst`` only if everything checks out."""
    d = AttachmentDecryptor(fk, att_id, ct_sha256=ct_sha256, size=size)
    with src.open("rb") as fin, PlaintextFile(dst, d) as out:
        while piece := fin.read(_READ):
            out.feed(piece)
    return out.written
