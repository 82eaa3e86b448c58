"""Recovery codes, the proof a new key was made by someone who knows R (§11), key handover.

The server relays the proof but never sees R, so it cannot certify a key of
its own choosing; a staff client or the custodian bot (who know R) verify it.
A handover (``RTK1``) is signed by an invite-derived key to name the fresh
key that replaces it; since the server may have known that invite key, staff
and client also compare :func:`sas_code` of the fresh key by phone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import Signer
from rtportal.crypto.errors import EncodingInvalid, RecoveryInvalid
from rtportal.crypto.kdf import derivation_info, recovery_key
from rtportal.crypto.keys import IdentityPublic, check_x25519_public
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "CODE_LEN",
    "Handover",
    "HandoverBody",
    "RecoveryProof",
    "code_from_link",
    "code_link",
    "code_text",
    "new_code",
    "parse_code",
    "prove",
    "sas_code",
    "sign_handover",
    "verify_handover",
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


@dataclass(frozen=True, slots=True)
class HandoverBody:
    """``RTK1``: "my key ``old_kid`` hands over to ``new``", signed by the old key."""

    firm: str
    user: str
    old_kid: bytes
    new: IdentityPublic
    ts_ms: int

    def encode(self) -> bytes:
        if len(self.old_kid) != 16:
            raise EncodingInvalid("old_kid must be 16 bytes")
        return enc.record(
            b"RTK1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.user)),
            enc.field(self.old_kid),
            enc.field(self.new.x_pk),
            enc.field(self.new.ed_pk),
            enc.field(enc.u64(self.ts_ms)),
        )

    @classmethod
    def decode(cls, data: bytes) -> HandoverBody:
        r = enc.Reader(data, b"RTK1")
        firm, user, old_kid, x_pk, ed_pk = r.id_(), r.id_(), r.fixed(16), r.fixed(32), r.fixed(32)
        ts_ms = r.u64()
        r.done()
        return cls(firm, user, old_kid, IdentityPublic(x_pk, ed_pk), ts_ms)


@dataclass(frozen=True, slots=True)
class Handover:
    body: HandoverBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTKX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> Handover:
        r = enc.Reader(data, b"RTKX")
        body, sig = HandoverBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)


def sign_handover(body: HandoverBody, old: Signer) -> Handover:
    if body.old_kid != old.kid:
        raise EncodingInvalid("old_kid is not the signer's key id")
    check_x25519_public(body.new.x_pk)
    return Handover(body, old.sign(body.encode()))


def verify_handover(
    handover: Handover | bytes, old: IdentityPublic, *, firm: str, user: str
) -> HandoverBody:
    """The handover, if ``old`` (the certified invite key of ``user``) signed it."""
    h = handover if isinstance(handover, Handover) else Handover.decode(handover)
    b = h.body
    if (b.firm, b.user) != (firm, user):
        raise RecoveryInvalid("handover is for another user")
    if b.old_kid != old.kid:
        raise RecoveryInvalid("handover is from another key")
    if b.new.kid == old.kid:
        raise RecoveryInvalid("a handover names a new key")
    check_x25519_public(b.new.x_pk)
    old.verify(h.sig, b.encode())
    return b


def sas_code(firm: str, user: str, new: IdentityPublic) -> str:
    """Six digits ("123 456") both people read out to confirm the fresh key by phone.

    SHA-256 of a labelled record of firm, user and the new public keys; the
    first 8 bytes modulo 10^6 (bias below 2^-40). 20 bits only resist a live
    attacker who must guess the key before the call, which is the use here.
    """
    info = derivation_info("rtp1/sas", enc.id_(firm), enc.id_(user), new.x_pk, new.ed_pk)
    n = int.from_bytes(hashlib.sha256(info).digest()[:8], "big") % 1_000_000
    digits = f"{n:06d}"
    return f"{digits[:3]} {digits[3:]}"
