"""RFC 9180 HPKE, base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM.

Written over X25519, HKDF and AES-GCM (not ``cryptography``'s HPKE) so the
ephemeral key can be injected: golden vectors must be deterministic. The
tests cross-check it against the RFC's vectors and ``cryptography``'s HPKE.
Only single-shot seal/open (sequence number 0) is needed by rtp1.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtportal.crypto.errors import DecryptFailed, EncodingInvalid
from rtportal.crypto.kdf import hkdf_expand, hkdf_extract
from rtportal.crypto.keys import x25519, x25519_public
from rtportal.crypto.rng import Rng, system_rng

__all__ = ["ENC_LEN", "Context", "decap", "encap", "key_schedule", "open_base", "seal_base"]

KEM_ID = 0x0020
KDF_ID = 0x0001
AEAD_ID = 0x0002
ENC_LEN = 32
_NK = 32
_NN = 12
_NH = 32
_KEM_SUITE = b"KEM" + KEM_ID.to_bytes(2, "big")
_HPKE_SUITE = (
    b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + AEAD_ID.to_bytes(2, "big")
)
_MODE_BASE = b"\x00"


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info
    return hkdf_expand(prk, labeled_info, length)


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE, eae_prk, b"shared_secret", kem_context, _NH)


def encap(pk_r: bytes, eph_sk: bytes) -> tuple[bytes, bytes]:
    """(shared_secret, enc) for recipient ``pk_r`` with ephemeral private key ``eph_sk``."""
    dh = x25519(eph_sk, pk_r)
    enc = x25519_public(eph_sk)
    return _extract_and_expand(dh, enc + pk_r), enc


def decap(enc: bytes, sk_r: bytes) -> bytes:
    if len(enc) != ENC_LEN:
        raise EncodingInvalid("HPKE enc must be 32 bytes")
    dh = x25519(sk_r, enc)
    return _extract_and_expand(dh, enc + x25519_public(sk_r))


@dataclass(frozen=True, slots=True)
class Context:
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes


def key_schedule(shared_secret: bytes, info: bytes) -> Context:
    """KeySchedule for mode_base with empty psk / psk_id."""
    psk_id_hash = _labeled_extract(_HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(_HPKE_SUITE, b"", b"info_hash", info)
    ctx = _MODE_BASE + psk_id_hash + info_hash
    secret = _labeled_extract(_HPKE_SUITE, shared_secret, b"secret", b"")
    return Context(
        key=_labeled_expand(_HPKE_SUITE, secret, b"key", ctx, _NK),
        base_nonce=_labeled_expand(_HPKE_SUITE, secret, b"base_nonce", ctx, _NN),
        exporter_secret=_labeled_expand(_HPKE_SUITE, secret, b"exp", ctx, _NH),
    )


def seal_base(
    pk_r: bytes,
    info: bytes,
    aad: bytes,
    pt: bytes,
    *,
    eph_sk: bytes | None = None,
    rng: Rng = system_rng,
) -> tuple[bytes, bytes]:
    """SealBase: returns ``(enc, ct)``; ``eph_sk`` is injected only by vectors/tests."""
    shared, enc = encap(pk_r, eph_sk if eph_sk is not None else rng(32))
    ctx = key_schedule(shared, info)
    return enc, AESGCM(ctx.key).encrypt(ctx.base_nonce, pt, aad)


def open_base(sk_r: bytes, enc: bytes, info: bytes, aad: bytes, ct: bytes) -> bytes:
    """OpenBase; any failure after decapsulation is ``crypto_decrypt``."""
    if len(ct) < 16:
        raise EncodingInvalid("HPKE ciphertext shorter than the tag")
    ctx = key_schedule(decap(enc, sk_r), info)
    try:
        return AESGCM(ctx.key).decrypt(ctx.base_nonce, ct, aad)
    except InvalidTag:
        raise DecryptFailed("HPKE open failed") from None
