"""Ed25519 public keys fit to certify: canonical, on the curve, not of small order.

A small-order public key A (one of the 8 points with ``[8]A = 0``) makes the
verification equation ``[S]B = R + [k]A`` independent of the message for a
suitable ``R``: one signature "verifies" many messages, so a certificate for
such a key would let its holder deny or replay anything. A non-canonical
encoding (``y >= p``, or ``x = 0`` with the sign bit set) gives one key two
byte forms, hence two kids. Both are refused before a key is certified
(``certs.issue``, ``CertBody.decode``, ``Directory.add_certificate``), the same
rule as static/crypto/edwards.js. Key generation never makes such keys; the
check uses only public data, so plain big-int arithmetic is fine.
"""

from __future__ import annotations

from rtportal.crypto.errors import EncodingInvalid, LowOrderPoint

__all__ = ["check_ed25519_public"]

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode(pk: bytes) -> tuple[int, int]:
    """RFC 8032 §5.1.3 point decoding, refusing every non-canonical form."""
    if len(pk) != 32:
        raise EncodingInvalid("Ed25519 public key must be 32 bytes")
    n = int.from_bytes(pk, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= _P:
        raise EncodingInvalid("non-canonical Ed25519 public key")
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        x = (x * _SQRT_M1) % _P
        if (v * x * x - u) % _P != 0:
            raise EncodingInvalid("Ed25519 public key is not a curve point")
    if x == 0 and sign:
        raise EncodingInvalid("non-canonical Ed25519 public key")
    if x & 1 != sign:
        x = _P - x
    return x, y


def _double(x: int, y: int) -> tuple[int, int]:
    """Affine doubling on -x^2 + y^2 = 1 + d x^2 y^2 (no denominator is 0: d is a non-square)."""
    xx, yy = x * x % _P, y * y % _P
    x3 = 2 * x * y * pow((yy - xx) % _P, _P - 2, _P)
    y3 = (yy + xx) * pow((2 - yy + xx) % _P, _P - 2, _P)
    return x3 % _P, y3 % _P


def check_ed25519_public(pk: bytes) -> bytes:
    """``pk`` when canonical and not of small order; ``crypto_encoding`` / ``crypto_low_order``."""
    x, y = _decode(pk)
    for _ in range(3):
        x, y = _double(x, y)
    if (x, y) == (0, 1):
        raise LowOrderPoint("small-order Ed25519 public key")
    return pk
