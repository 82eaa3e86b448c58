"""The firm root key file: a short text a person can print and keep offline.

The FRK signs staff certificates, revocation lists and escrow records; its
private part never reaches the server. Whoever holds this file can approve
staff for the firm, so it is written 0600 and never overwritten. The format
is the one the org admin's browser downloads and loads
(``static/staff/keyflows.js`` ``frkKeyFileText`` / ``readFrkKeyFile``), so a
file made by either works with both::

    rtportal firm root key (rtp1)
    Keep this file offline. Whoever holds it can certify staff of the firm.
    firm: <slug>
    fingerprint: <the human fingerprint, docs/security.md §17>
    seed: <the 32-byte Ed25519 seed, unpadded base64url>
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rtportal import base64url
from rtportal.crypto.keys import FirmRootKey
from rtportal.crypto.rng import Rng, system_rng
from rtportal.datafiles import FILE_MODE
from rtportal.errors import BadRequest, PayloadTooLarge

__all__ = ["encode_key_file", "init_key_file", "parse_key_file", "read_key_file"]

HEAD = "rtportal firm root key"
WARNING = "Keep this file offline. Whoever holds it can certify staff of the firm."
MAX_FILE = 4096  # the file is a few lines; anything larger is not one


def encode_key_file(firm: str, frk: FirmRootKey) -> bytes:
    lines = [
        f"{HEAD} (rtp1)",
        WARNING,
        f"firm: {firm}",
        f"fingerprint: {frk.public.fingerprint_text}",
        f"seed: {base64url.encode(frk.ed_sk)}",
        "",
    ]
    return "\n".join(lines).encode()


def parse_key_file(data: bytes, *, firm: str | None = None, name: str = "key file") -> FirmRootKey:
    """The FRK of a key file's bytes; the fingerprint line must match the seed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} is not a firm root key file") from None
    if len(data) > MAX_FILE or not text.startswith(HEAD):
        raise BadRequest(f"{name} is not a firm root key file")

    def field(key: str) -> str:
        m = re.search(rf"^{key}: (.+)$", text, re.MULTILINE)
        if m is None:
            raise BadRequest(f"{name} has no {key} line")
        return m.group(1).strip()

    got = field("firm")
    try:
        seed = base64url.decode(field("seed"), 32)
    except (BadRequest, PayloadTooLarge):
        seed = None
    if seed is None or len(seed) != 32:
        raise BadRequest(f"{name}: the seed is not 32 bytes of base64url")
    frk = FirmRootKey(seed)
    if field("fingerprint") != frk.public.fingerprint_text:
        raise BadRequest(f"{name}: the fingerprint does not match the seed")
    if firm is not None and got != firm:
        raise BadRequest(f"{name} is the root key of firm {got!r}, not {firm!r}")
    return frk


def read_key_file(path: Path, *, firm: str | None = None) -> tuple[str, FirmRootKey]:
    data = path.read_bytes()[: MAX_FILE + 1]
    frk = parse_key_file(data, firm=firm, name=str(path))
    got = re.search(r"^firm: (.+)$", data.decode(), re.MULTILINE)
    assert got is not None  # parse_key_file checked it
    return got.group(1).strip(), frk


def init_key_file(path: Path, firm: str, rng: Rng = system_rng) -> FirmRootKey:
    """A new FRK written to ``path`` (0600; an existing file is never replaced)."""
    frk = FirmRootKey.generate(rng)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise BadRequest(f"{path} exists: a firm root key file is never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(encode_key_file(firm, frk))
    return frk
