"""Recovery codes and the proof a client's new key was made by someone who knows R (§11).

The server relays the proof but never sees R, so it cannot certify a key of
its own choosing; a staff client or the custodian bot (who know R) verify it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from rtportal.crypto import encoding as enc
from rtportal.crypto.errors import EncodingInvalid, RecoveryInvalid
from rtportal.crypto.kdf import recovery_key
from rtportal.crypto.keys import IdentityPublic
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "CODE_LEN",
    "RecoveryProof",
    "code_from_link",
    "code_link",
    "code_text",
    "new_code",
    "parse_code",
    "prove",
    "verify_proof",
]

CODE_LEN = 16
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def new_code(rng: Rng = system_rng) -> bytes:
    return rng(CODE_LEN)


def code_text(code: bytes) -> str:
    """26 base32 characters in groups of 4 separated by ``-``."""
    b32 = base64.b32encode(code).decode("ascii").rstrip("=")
    return "-".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def parse_code(text: str) -> bytes:
    # the same set as JavaScript's parseRecoveryCode: ASCII space, tab, CR, LF and "-"
    cleaned = "".join(c for c in text if c not in " -\t\r\n").upper()
    if len(cleaned) != 26:
        raise EncodingInvalid("a recovery code has 26 base32 characters")
    try:
        code = base64.b32decode(cleaned + "======")
    except ValueError:
        raise EncodingInvalid("a recovery code is base32 (A-Z, 2-7)") from None
    if len(code) != CODE_LEN or code_text(code).replace("-", "") != cleaned:
        raise EncodingInvalid("non-canonical recovery code")
    return code


def code_link(code: bytes) -> str:
    """The ``r=`` value of an invite link fragment."""
    return base64.urlsafe_b64encode(code).rstrip(b"=").decode("ascii")


def code_from_link(value: str) -> bytes:
    """Strict: base64url alphabet only, no padding, canonical (re-encodes to ``value``).

    ``urlsafe_b64decode`` alone would skip foreign characters and ignore
    non-zero trailing bits, so several strings would name one code.
    """
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise EncodingInvalid("bad recovery link value")
    try:
        code = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise EncodingInvalid("bad recovery link value") from None
    if len(code) != CODE_LEN:
        raise EncodingInvalid("a recovery code is 16 bytes")
    if code_link(code) != value:
        raise EncodingInvalid("non-canonical recovery link value")
    return code


def _input(firm: str, user: str, public: IdentityPublic) -> bytes:
    return enc.record(
        b"RTRP",
        enc.field(enc.id_(firm)),
        enc.field(enc.id_(user)),
        enc.field(public.x_pk),
        enc.field(public.ed_pk),
    )


@dataclass(frozen=True, slots=True)
class RecoveryProof:
    firm: str
    user: str
    public: IdentityPublic
    proof: bytes

    def encode(self) -> bytes:
        return enc.record(
            b"RTRX",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.user)),
            enc.field(self.public.x_pk),
            enc.field(self.public.ed_pk),
            enc.field(self.proof),
        )

    @classmethod
    def decode(cls, data: bytes) -> RecoveryProof:
        r = enc.Reader(data, b"RTRX")
        firm, user, x_pk, ed_pk, proof = r.id_(), r.id_(), r.fixed(32), r.fixed(32), r.fixed(32)
        r.done()
        return cls(firm, user, IdentityPublic(x_pk, ed_pk), proof)

    def input(self) -> bytes:
        return _input(self.firm, self.user, self.public)


def prove(code: bytes, firm: str, user: str, public: IdentityPublic) -> RecoveryProof:
    if len(code) != CODE_LEN:
        raise EncodingInvalid("a recovery code is 16 bytes")
    rk = recovery_key(code, firm, user)
    mac = hmac.new(rk, _input(firm, user, public), hashlib.sha256).digest()
    return RecoveryProof(firm, user, public, mac)


def verify_proof(code: bytes, proof: RecoveryProof, *, firm: str, user: str) -> IdentityPublic:
    """The new public keys, if ``proof`` was made with ``code`` for this firm and user."""
    if (proof.firm, proof.user) != (firm, user):
        raise RecoveryInvalid("recovery proof is for another user")
    expected = prove(code, firm, user, proof.public).proof
    if not hmac.compare_digest(expected, proof.proof):
        raise RecoveryInvalid("recovery proof does not verify")
    return proof.public
