"""Canonical binary records (docs/security.md §1).

``R(TAG; f1, …, fn) = TAG ‖ u16(len f1) ‖ f1 ‖ …``; long fields use a u32
length. Encoders build field *values* with the small helpers below; decoders
read a record through :class:`Reader`, which rejects anything that would not
re-encode to the same bytes (wrong tag, short or trailing data, wrong widths,
bad UTF-8, unsorted lists). That strictness is what makes the encoding
canonical, so signatures and AADs have exactly one byte form.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from rtportal.crypto.errors import EncodingInvalid

__all__ = [
    "ID_MAX",
    "Reader",
    "ascii_",
    "field",
    "id_",
    "ids",
    "list_",
    "long_field",
    "record",
    "sorted_list",
    "text",
    "u8",
    "u16",
    "u32",
    "u64",
]

ID_MAX = 255
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF


def field(value: bytes) -> bytes:
    """``F(x)``: u16 length prefix + value."""
    if len(value) > _U16_MAX:
        raise EncodingInvalid(f"field of {len(value)} bytes exceeds 65535")
    return len(value).to_bytes(2, "big") + value


def long_field(value: bytes) -> bytes:
    """``FL(x)``: u32 length prefix + value (only where the spec says *long*)."""
    if len(value) > _U32_MAX:
        raise EncodingInvalid("long field exceeds 2^32-1 bytes")
    return len(value).to_bytes(4, "big") + value


def record(tag: bytes, *encoded_fields: bytes) -> bytes:
    """A record from its tag and already length-prefixed fields."""
    if len(tag) != 4:
        raise ValueError("record tags are exactly 4 bytes")
    return tag + b"".join(encoded_fields)


def _uint(value: int, width: int) -> bytes:
    if not 0 <= value < (1 << (8 * width)):
        raise EncodingInvalid(f"integer {value} does not fit in {width} bytes")
    return value.to_bytes(width, "big")


def u8(value: int) -> bytes:
    return _uint(value, 1)


def u16(value: int) -> bytes:
    return _uint(value, 2)


def u32(value: int) -> bytes:
    return _uint(value, 4)


def u64(value: int) -> bytes:
    return _uint(value, 8)


def _encode_utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not Unicode text, so not encodable
        raise EncodingInvalid("text is not valid Unicode") from None


def _check_id_text(value: str) -> None:
    """Ids never silently change between languages (docs/security.md "One rule each").

    A browser's TextDecoder strips a leading U+FEFF unless told not to, and a
    control character (NUL above all) can split a key built by joining ids; so
    an id may not start with U+FEFF nor hold a C0/C1 control character.
    """
    if value.startswith("\ufeff") or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise EncodingInvalid("identifiers may not start with U+FEFF or hold control characters")


def id_(value: str) -> bytes:
    """An identifier: UTF-8, 1..255 bytes, no leading U+FEFF, no control characters."""
    raw = _encode_utf8(value)
    if not 1 <= len(raw) <= ID_MAX:
        raise EncodingInvalid("identifiers are 1..255 bytes of UTF-8")
    _check_id_text(value)
    return raw


def text(value: str) -> bytes:
    return _encode_utf8(value)


def ascii_(value: str) -> bytes:
    """A label or content type: printable ASCII 0x21..0x7e, 1..64 bytes."""
    if not 1 <= len(value) <= 64 or any(not 0x21 <= ord(c) <= 0x7E for c in value):
        raise EncodingInvalid("labels are 1..64 printable ASCII characters")
    return value.encode("ascii")


def list_(items: Iterable[bytes]) -> bytes:
    """A list field value: each item as ``F(item)``, concatenated."""
    return b"".join(field(item) for item in items)


def sorted_list(items: Iterable[bytes]) -> bytes:
    """A sorted list: items strictly increasing by their encoded bytes.

    A duplicate is an error, not silently dropped: the signer must sign what it
    was given (JavaScript's encoder refuses duplicates too).
    """
    ordered = sorted(items)
    if any(a == b for a, b in itertools.pairwise(ordered)):
        raise EncodingInvalid("duplicate item in a sorted list")
    return list_(ordered)


def _decode_utf8(raw: bytes) -> str:
    """Strict UTF-8 that keeps a leading U+FEFF (text fields keep it; JavaScript decodes
    with ``ignoreBOM: true`` to match)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingInvalid("invalid UTF-8") from None


class Reader:
    """Strict reader of one record: call the typed readers in field order, then ``done()``."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, tag: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise EncodingInvalid("expected bytes")
        self._data = bytes(data)
        if self._data[:4] != tag:
            raise EncodingInvalid(f"expected a {tag.decode('ascii')} record")
        self._pos = 4

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise EncodingInvalid("record truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def raw(self) -> bytes:
        """The next u16-prefixed field value."""
        return self._take(int.from_bytes(self._take(2), "big"))

    def raw_long(self) -> bytes:
        """The next u32-prefixed (long) field value."""
        return self._take(int.from_bytes(self._take(4), "big"))

    def fixed(self, n: int) -> bytes:
        value = self.raw()
        if len(value) != n:
            raise EncodingInvalid(f"expected {n} bytes, got {len(value)}")
        return value

    def opt_fixed(self, n: int) -> bytes | None:
        value = self.raw()
        if not value:
            return None
        if len(value) != n:
            raise EncodingInvalid(f"expected 0 or {n} bytes, got {len(value)}")
        return value

    def uint(self, width: int) -> int:
        return int.from_bytes(self.fixed(width), "big")

    def u8(self) -> int:
        return self.uint(1)

    def u32(self) -> int:
        return self.uint(4)

    def u64(self) -> int:
        return self.uint(8)

    def bool_(self) -> bool:
        value = self.u8()
        if value > 1:
            raise EncodingInvalid("booleans are 0 or 1")
        return value == 1

    def id_(self) -> str:
        raw = self.raw()
        if not 1 <= len(raw) <= ID_MAX:
            raise EncodingInvalid("identifiers are 1..255 bytes")
        value = _decode_utf8(raw)
        _check_id_text(value)
        return value

    def text(self) -> str:
        return _decode_utf8(self.raw())

    def text_long(self) -> str:
        return _decode_utf8(self.raw_long())

    def ascii_(self) -> str:
        raw = self.raw()
        if not 1 <= len(raw) <= 64 or any(not 0x21 <= b <= 0x7E for b in raw):
            raise EncodingInvalid("labels are 1..64 printable ASCII characters")
        return raw.decode("ascii")

    def list_(self, *, sorted_: bool = False) -> list[bytes]:
        """A list field: its items' raw bytes; ``sorted_`` enforces strict increase."""
        items = _split_list(self.raw())
        if sorted_ and any(a >= b for a, b in itertools.pairwise(items)):
            raise EncodingInvalid("list items must be sorted and unique")
        return items

    def done(self) -> None:
        if self._pos != len(self._data):
            raise EncodingInvalid("trailing bytes after record")


def _split_list(value: bytes) -> list[bytes]:
    items: list[bytes] = []
    pos = 0
    while pos < len(value):
        if pos + 2 > len(value):
            raise EncodingInvalid("list item truncated")
        n = int.from_bytes(value[pos : pos + 2], "big")
        if pos + 2 + n > len(value):
            raise EncodingInvalid("list item truncated")
        items.append(value[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return items


def ids(values: Sequence[str]) -> list[bytes]:
    """Encode several identifiers (helper for sorted id lists)."""
    return [id_(v) for v in values]
