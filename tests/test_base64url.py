"""``blob`` accepts exactly unpadded base64url (docs/protocol.md, docs/api.md)."""

from __future__ import annotations

import os

import pytest

from rtportal import base64url
from rtportal.errors import BadRequest, PayloadTooLarge


@pytest.mark.parametrize("size", range(12))
def test_every_length_round_trips(size: int) -> None:
    data = os.urandom(size)
    text = base64url.encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert base64url.decode(text, 16) == data


@pytest.mark.parametrize(
    "text",
    ["AQI=", "AQ==", "+/+/", "AQ/", "A", "AR", "AQ I", " AQI", "AQI\n", "é", "A===", 7, b"AQI"],
)
def test_anything_else_is_bad_request(text: object) -> None:
    """Padding, the standard alphabet, whitespace, a 1-char tail, non-zero unused bits."""
    with pytest.raises(BadRequest):
        base64url.decode(text, 16)


def test_over_the_limit_is_refused_before_decoding() -> None:
    assert base64url.decode(base64url.encode(bytes(4)), 4) == bytes(4)
    with pytest.raises(PayloadTooLarge):
        base64url.decode(base64url.encode(bytes(5)), 4)
    with pytest.raises(PayloadTooLarge):
        base64url.decode("*" * 10_000, 4)  # refused on its length, never parsed
    assert base64url.decode(None, 4) is None
