"""HKDF-SHA256 and the labelled derivations of rtp1 (docs/security.md §3).

HKDF is written over ``hmac`` (RFC 5869) because HPKE needs Extract and Expand
separately. An empty salt is 32 zero bytes: HMAC pads short keys with zeros,
so the result is identical, and WebCrypto refuses zero-length HMAC keys.
"""

from __future__ import annotations

import hashlib
import hmac

from rtportal.crypto.encoding import ascii_, field, id_, record, u32

__all__ = [
    "ZERO_SALT",
    "attachment_chunk_key",
    "commitment",
    "derivation_info",
    "derive",
    "hkdf",
    "hkdf_expand",
    "hkdf_extract",
    "internal_key",
    "kek",
    "login_secret",
    "message_key",
    "recovery_key",
]

ZERO_SALT = bytes(32)
_HASH_LEN = 32


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or ZERO_SALT, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    if not 0 < length <= 255 * _HASH_LEN:
        raise ValueError("HKDF-SHA256 output length out of range")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def derivation_info(label: str, *ctx: bytes) -> bytes:
    """``D(label, ctx…) = R("RTD1"; label, ctx…)``; ``ctx`` are raw field values."""
    return record(b"RTD1", field(ascii_(label)), *(field(c) for c in ctx))


def derive(ikm: bytes, label: str, *ctx: bytes, salt: bytes = ZERO_SALT, length: int = 32) -> bytes:
    return hkdf(ikm, salt, derivation_info(label, *ctx), length)


def message_key(mek: bytes, firm: str, matter: str, epoch: int) -> bytes:
    return derive(mek, "rtp1/msg", id_(firm), id_(matter), u32(epoch))


def internal_key(fir: bytes, firm: str, matter: str, fek_version: int) -> bytes:
    """Staff-only content key: clients never hold FIR, so they cannot derive it."""
    return derive(fir, "rtp1/internal", id_(firm), id_(matter), u32(fek_version))


def attachment_chunk_key(fk: bytes, att_id: bytes) -> bytes:
    return derive(fk, "rtp1/att", salt=att_id)


def login_secret(argon2_out: bytes) -> bytes:
    return derive(argon2_out, "rtp1/login")


def kek(argon2_out: bytes) -> bytes:
    return derive(argon2_out, "rtp1/kek")


def recovery_key(code: bytes, firm: str, user: str) -> bytes:
    return derive(code, "rtp1/rec", id_(firm), id_(user))


def commitment(mek: bytes, firm: str, matter: str, epoch: int) -> bytes:
    """Published in the manifest so a recipient can tell it got *the* epoch key."""
    info = derivation_info("rtp1/commit", id_(firm), id_(matter), u32(epoch))
    return hmac.new(mek, info, hashlib.sha256).digest()
