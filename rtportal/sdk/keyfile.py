"""The firm root key file: ``R("RTFK"; firm, ed_sk)``, owner-only, made offline.

The FRK signs staff certificates, revocation lists and escrow records; its
private part never reaches the server. Whoever holds this file can approve
staff for the firm, so it is written 0600 and never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtportal.crypto import encoding as enc
from rtportal.crypto.keys import FirmRootKey
from rtportal.crypto.rng import Rng, system_rng
from rtportal.datafiles import FILE_MODE
from rtportal.errors import BadRequest

__all__ = ["encode_key_file", "init_key_file", "read_key_file"]


def encode_key_file(firm: str, frk: FirmRootKey) -> bytes:
    return enc.record(b"RTFK", enc.field(enc.id_(firm)), enc.field(frk.ed_sk))


def read_key_file(path: Path, *, firm: str | None = None) -> tuple[str, FirmRootKey]:
    r = enc.Reader(path.read_bytes(), b"RTFK")
    got, seed = r.id_(), r.fixed(32)
    r.done()
    if firm is not None and got != firm:
        raise BadRequest(f"{path} is the root key of firm {got!r}, not {firm!r}")
    return got, FirmRootKey(seed)


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
