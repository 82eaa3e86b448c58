"""Password -> login secret and key backup, as the browser does it (docs/keys.md "New device").

One Argon2id run (``rtportal.crypto.backup``) gives the login secret the
server checks and the KEK that encrypts the identity seeds and the pinned
FRK fingerprint into the backup the server stores; the server never sees
the password, the KEK or the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtportal import base64url
from rtportal.crypto.backup import (
    Argon2Params,
    Backup,
    BackupContents,
    PasswordKeys,
    create_backup,
    derive_password_keys,
    open_backup,
)
from rtportal.crypto.errors import WrongContext
from rtportal.crypto.keys import IdentityKey
from rtportal.crypto.rng import Rng, system_rng

__all__ = ["Kdf", "backup_blob", "open_backup_blob"]


@dataclass(frozen=True, slots=True)
class Kdf:
    """The ``kdf`` object of prelogin, setup/open and invites/open."""

    salt: bytes
    params: Argon2Params

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Kdf:
        if data.get("alg") != "argon2id":
            raise WrongContext("the server asks for a key derivation other than Argon2id")
        salt = base64url.decode(data["salt"], 16, "salt")
        if salt is None:
            raise WrongContext("no salt")
        params = Argon2Params(int(data["m_kib"]), int(data["t"]), int(data["p"]))
        params.check()  # bounds first: a hostile server cannot make us burn memory
        return cls(salt, params)

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": "argon2id",
            "salt": base64url.encode(self.salt),
            "m_kib": self.params.m_kib,
            "t": self.params.t,
            "p": self.params.p,
        }

    def keys(self, password: str) -> PasswordKeys:
        return derive_password_keys(password, self.salt, self.params)


def backup_blob(
    kdf: Kdf,
    keys: PasswordKeys,
    *,
    firm: str,
    user: str,
    identity: IdentityKey,
    frk_fingerprint: bytes,
    rng: Rng = system_rng,
) -> str:
    """The key backup (unpadded base64url) under the KEK of ``keys`` (same salt and params)."""
    contents = BackupContents(identity, frk_fingerprint)
    backup = create_backup(
        firm, user, keys.kek, contents, params=kdf.params, salt=kdf.salt, rng=rng
    )
    return base64url.encode(backup.encode())


def open_backup_blob(
    blob: str, password: str, *, firm: str, user: str
) -> tuple[Backup, BackupContents]:
    data = base64url.decode(blob, 64 * 1024, "key_backup")
    if data is None:
        raise WrongContext("no key backup")
    backup, _, contents = open_backup(data, password, firm=firm, user=user)
    return backup, contents
