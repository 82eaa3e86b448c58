"""``blob`` on the wire: unpadded base64url (RFC 4648 §5, no ``=``), one form everywhere.

Events carry their blob in this form over HTTP and the websocket, and both
accept exactly this form on input: the URL-safe alphabet ``A-Z a-z 0-9 - _``,
no padding, no whitespace, and the canonical spelling (unused trailing bits
zero), so one blob has one spelling.
"""

from __future__ import annotations

import base64
import binascii

from rtportal.errors import BadRequest, PayloadTooLarge

__all__ = ["decode", "encode"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# To the standard alphabet for binascii; "+", "/" and "=" become "*", which
# its strict mode refuses like any other character outside the alphabet.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
# Unused low bits of the last character, by length mod 4 (1 is never valid).
_UNUSED_BITS = {2: 0x0F, 3: 0x03}


def encode(data: bytes) -> str:
    """``data`` as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(value: object, limit: int, what: str = "blob") -> bytes | None:
    """Unpadded base64url (or ``None``) -> bytes of at most ``limit`` bytes.

    ``BadRequest`` for anything but the documented form, ``PayloadTooLarge``
    over the limit (checked on the text length before decoding).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{what}: must be an unpadded base64url string or null")
    if len(value) > (limit * 4 + 2) // 3:
        raise PayloadTooLarge(f"{what}: over {limit} bytes")
    rem = len(value) % 4
    try:
        text = value.encode("ascii").translate(_TO_STANDARD)
        data = binascii.a2b_base64(text + b"=" * (-rem % 4), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise BadRequest(f"{what}: not unpadded base64url") from None
    if rem and _ALPHABET.index(value[-1]) & _UNUSED_BITS[rem]:
        raise BadRequest(f"{what}: not canonical base64url (unused bits must be zero)")
    return data
