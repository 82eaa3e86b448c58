"""The Python client's trust state: what it pinned and saw, in one owner-only JSON file.

A fresh ``Directory`` is rebuilt from the server's records at every sync;
this file is what makes the server's word checkable across runs: the
pinned firm root key, the newest certificate serial seen per key, the
newest revocation-list and escrow versions, each matter's last verified
``(epoch, hash)`` and the ``msg_id``s already read (with the seq they were
read at, so re-reading history is not mistaken for a replay). The file
holds no secret; the identity key file it names does (also 0600).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtportal.crypto.keys import IdentityKey
from rtportal.datafiles import private_file
from rtportal.errors import BadRequest

__all__ = ["MAX_SEEN", "MatterPin", "TrustState", "load_identity", "save_identity"]

VERSION = 1
MAX_SEEN = 10_000  # msg_ids kept per matter; the first remembered go first

# Where an event is: its seq for staff and bots, its cursor token for a
# contact (protocol v2: a contact never sees a seq). Tokens are the same for
# the same event every time, so "read before at another cursor" is a replay.
At = int | str


@dataclass(slots=True)
class MatterPin:
    epoch: int = 0
    hash: bytes = b""
    seen: dict[bytes, At] = field(default_factory=dict)  # msg_id -> the event it was read at

    def remember(self, msg_id: bytes, at: At) -> None:
        self.seen.pop(msg_id, None)  # re-inserted: insertion order is reading order
        self.seen[msg_id] = at
        if len(self.seen) > MAX_SEEN:
            # Tokens have no order: the first remembered (read longest ago) go.
            for old in list(self.seen)[: len(self.seen) // 10]:
                del self.seen[old]


@dataclass(slots=True)
class TrustState:
    firm: str
    user: str
    frk_fingerprint: bytes | None = None
    identity_file: str | None = None
    cert_serials: dict[tuple[str, bytes], int] = field(default_factory=dict)
    revocation_version: int = 0
    escrow_version: int = 0
    matters: dict[str, MatterPin] = field(default_factory=dict)

    def matter(self, ref: str) -> MatterPin:
        return self.matters.setdefault(ref, MatterPin())

    # ---- file -----------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "firm": self.firm,
            "user": self.user,
            "frk": self.frk_fingerprint.hex() if self.frk_fingerprint else None,
            "identity_file": self.identity_file,
            "certs": {f"{u} {k.hex()}": s for (u, k), s in sorted(self.cert_serials.items())},
            "revocation_version": self.revocation_version,
            "escrow_version": self.escrow_version,
            "matters": {
                ref: {
                    "epoch": pin.epoch,
                    "hash": pin.hash.hex(),
                    "seen": {m.hex(): seq for m, seq in pin.seen.items()},
                }
                for ref, pin in sorted(self.matters.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> TrustState:
        try:
            if data["v"] != VERSION:
                raise BadRequest("unknown trust state version")
            state = cls(str(data["firm"]), str(data["user"]))
            state.frk_fingerprint = bytes.fromhex(data["frk"]) if data["frk"] else None
            state.identity_file = data["identity_file"]
            for key, serial in data["certs"].items():
                user, kid = key.split(" ")
                state.cert_serials[(user, bytes.fromhex(kid))] = int(serial)
            state.revocation_version = int(data["revocation_version"])
            state.escrow_version = int(data["escrow_version"])
            for ref, m in data["matters"].items():
                seen = {bytes.fromhex(k): _at(v) for k, v in m["seen"].items()}
                state.matters[ref] = MatterPin(int(m["epoch"]), bytes.fromhex(m["hash"]), seen)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadRequest(f"unreadable trust state: {exc}") from None
        return state

    @classmethod
    def load(cls, path: Path, *, firm: str, user: str) -> TrustState:
        """The state at ``path``, or a fresh one (a new device) when there is none."""
        if not path.exists():
            return cls(firm, user)
        state = cls.from_json(json.loads(path.read_text("utf-8")))
        if (state.firm, state.user) != (firm, user):
            raise BadRequest("the trust state file belongs to another firm or user")
        return state

    def save(self, path: Path) -> None:
        """Write atomically (a 0600 temporary file renamed over the old one)."""
        _write_private(path, json.dumps(self.to_json(), indent=1).encode("utf-8"))


def _at(value: object) -> At:
    """A remembered event position from the state file: a seq or a token."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("seen: a seq or a cursor token")
    return value


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    private_file(tmp)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def save_identity(path: Path, identity: IdentityKey, *, firm: str, user: str) -> None:
    """The identity key file ``RTUK`` (secret seeds), owner-only."""
    _write_private(path, identity.key_file(firm, user))


def load_identity(path: Path, *, firm: str, user: str) -> IdentityKey:
    got_firm, got_user, identity = IdentityKey.from_key_file(path.read_bytes())
    if (got_firm, got_user) != (firm, user):
        raise BadRequest("the identity key file belongs to another firm or user")
    return identity
