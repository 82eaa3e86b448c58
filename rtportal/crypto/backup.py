"""Password-derived login secret and key backup (docs/security.md §10).

One Argon2id run gives 64 bytes; HKDF splits them into the login secret (sent
to the server, which hashes it again) and the KEK (never leaves the client),
so the server's copy of the login secret does not open the backup. The
parameters travel in the backup header and are part of its AAD.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtportal.crypto import encoding as enc
from rtportal.crypto.errors import DecryptFailed, EncodingInvalid, WrongContext
from rtportal.crypto.kdf import kek, login_secret
from rtportal.crypto.keys import IdentityKey
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "DEFAULT_PARAMS",
    "MIN_M_KIB",
    "MIN_T",
    "Argon2Params",
    "Backup",
    "BackupContents",
    "PasswordKeys",
    "argon2id",
    "create_backup",
    "derive_password_keys",
    "open_backup",
]

VERSION = 1
OUT_LEN = 64
SALT_LEN = 16
MAX_M_KIB = 262_144  # 256 MiB
MAX_T = 10
MAX_P = 8
# The floor (OWASP's Argon2id minimum: 19 MiB, t=2): the stored backup is an offline
# guessing oracle, so a server (or a tampered header) must not talk a client into
# deriving the KEK with weaker parameters. The server's own settings may only raise it.
MIN_M_KIB = 19_456
MIN_T = 2
MIN_P = 1


@dataclass(frozen=True, slots=True)
class Argon2Params:
    m_kib: int = 65536
    t: int = 3
    p: int = 1

    def check(self) -> None:
        """Bounds refused before any work, so a hostile server cannot make us burn memory
        nor derive a key that is cheap to guess.

        At most 4x the default memory and ~13x its work (256 MiB, t=10): room to
        raise the defaults, while a server-sent header cannot ask a browser
        tab for 1 GiB of wasm memory and 16 passes over it. At least
        ``MIN_M_KIB``/``MIN_T``/``MIN_P`` (same bounds as static/crypto/backup.js).
        """
        if not (
            MIN_P <= self.p <= MAX_P
            and max(MIN_M_KIB, 8 * self.p) <= self.m_kib <= MAX_M_KIB
            and MIN_T <= self.t <= MAX_T
        ):
            raise EncodingInvalid("Argon2id parameters out of bounds")


DEFAULT_PARAMS = Argon2Params()


def argon2id(password: bytes, salt: bytes, params: Argon2Params, length: int = OUT_LEN) -> bytes:
    params.check()
    return hash_secret_raw(
        secret=password,
        salt=salt,
        time_cost=params.t,
        memory_cost=params.m_kib,
        parallelism=params.p,
        hash_len=length,
        type=Type.ID,
        version=19,
    )


@dataclass(frozen=True, slots=True)
class PasswordKeys:
    login_secret: bytes
    kek: bytes


def derive_password_keys(password: str, salt: bytes, params: Argon2Params) -> PasswordKeys:
    if len(salt) != SALT_LEN:
        raise EncodingInvalid("Argon2 salts are 16 bytes")
    if not password:
        raise EncodingInvalid("an empty password protects nothing")
    out = argon2id(password.encode("utf-8"), salt, params)
    return PasswordKeys(login_secret(out), kek(out))


@dataclass(frozen=True, slots=True)
class BackupContents:
    identity: IdentityKey
    frk_fingerprint: bytes

    def encode(self) -> bytes:
        return enc.record(
            b"RTBP",
            enc.field(self.identity.x_sk),
            enc.field(self.identity.ed_sk),
            enc.field(self.frk_fingerprint),
        )

    @classmethod
    def decode(cls, data: bytes) -> BackupContents:
        r = enc.Reader(data, b"RTBP")
        x_sk, ed_sk, fp = r.fixed(32), r.fixed(32), r.fixed(32)
        r.done()
        return cls(IdentityKey(x_sk, ed_sk), fp)


@dataclass(frozen=True, slots=True)
class Backup:
    firm: str
    user: str
    params: Argon2Params
    salt: bytes
    nonce: bytes
    ct: bytes

    def header(self) -> bytes:
        return enc.record(
            b"RTBH",
            enc.field(enc.u8(VERSION)),
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.user)),
            enc.field(enc.u32(self.params.m_kib)),
            enc.field(enc.u32(self.params.t)),
            enc.field(enc.u32(self.params.p)),
            enc.field(self.salt),
        )

    def encode(self) -> bytes:
        return enc.record(
            b"RTBK", enc.field(self.header()), enc.field(self.nonce), enc.field(self.ct)
        )

    @classmethod
    def decode(cls, data: bytes) -> Backup:
        r = enc.Reader(data, b"RTBK")
        h = enc.Reader(r.raw(), b"RTBH")
        if h.u8() != VERSION:
            raise EncodingInvalid("unsupported backup version")
        firm, user = h.id_(), h.id_()
        params = Argon2Params(h.u32(), h.u32(), h.u32())
        salt = h.fixed(SALT_LEN)
        h.done()
        nonce, ct = r.fixed(12), r.raw()
        r.done()
        if len(ct) < 16:
            raise EncodingInvalid("backup ciphertext too short")
        return cls(firm, user, params, salt, nonce, ct)


def create_backup(
    firm: str,
    user: str,
    kek_: bytes,
    contents: BackupContents,
    *,
    params: Argon2Params,
    salt: bytes,
    rng: Rng = system_rng,
) -> Backup:
    """Encrypt ``contents`` under a KEK from :func:`derive_password_keys` (same params/salt)."""
    shell = Backup(firm, user, params, salt, rng(12), b"")
    ct = AESGCM(kek_).encrypt(shell.nonce, contents.encode(), shell.header())
    return Backup(firm, user, params, salt, shell.nonce, ct)


def open_backup(
    blob: bytes, password: str, *, firm: str | None = None, user: str | None = None
) -> tuple[Backup, PasswordKeys, BackupContents]:
    """Decode (bounds checked first), run Argon2id, decrypt; wrong password = ``crypto_decrypt``.

    With ``firm``/``user`` the header must name them (``crypto_wrong_context``),
    checked before any Argon2 work, as JavaScript's ``openBackup(blob, pw, expected)``.
    """
    backup = Backup.decode(blob)
    if (firm is not None or user is not None) and (backup.firm, backup.user) != (firm, user):
        raise WrongContext("backup of another firm or user")
    backup.params.check()
    keys = derive_password_keys(password, backup.salt, backup.params)
    try:
        pt = AESGCM(keys.kek).decrypt(backup.nonce, backup.ct, backup.header())
    except InvalidTag:
        raise DecryptFailed("wrong password or altered backup") from None
    return backup, keys, BackupContents.decode(pt)
