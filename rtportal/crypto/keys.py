"""Key types, public records, key ids and fingerprints (docs/security.md §4).

A key's fingerprint is SHA-256 of its canonical public record and its key id
the first 16 bytes, so ids are computed, never chosen. Private keys are kept
as 32-byte seeds (the form WebCrypto can import through PKCS#8).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from rtportal.crypto import encoding as enc
from rtportal.crypto.errors import EncodingInvalid, LowOrderPoint, SignatureInvalid
from rtportal.crypto.kdf import derive
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "INVITE_SECRET_LEN",
    "EscrowRecord",
    "EscrowRecordBody",
    "FirmEscrowKey",
    "FirmEscrowPublic",
    "FirmRootKey",
    "FirmRootPublic",
    "IdentityKey",
    "IdentityPublic",
    "check_x25519_public",
    "ed25519_verify",
    "fingerprint_text",
    "sign_escrow_record",
    "x25519",
]

INVITE_SECRET_LEN = 32

_CHECK_SCALAR = bytes([1]) + bytes(31)
_P25519 = 2**255 - 19


def _check_len(value: bytes, n: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != n:
        raise EncodingInvalid(f"{what} must be {n} bytes")
    return value


def x25519(sk: bytes, pk: bytes) -> bytes:
    """X25519(sk, pk), rejecting an all-zero result (a low-order ``pk``)."""
    _check_len(sk, 32, "X25519 private key")
    _check_len(pk, 32, "X25519 public key")
    try:
        private = X25519PrivateKey.from_private_bytes(sk)
        out = private.exchange(X25519PublicKey.from_public_bytes(pk))
    except ValueError:
        raise LowOrderPoint("X25519 shared secret is zero") from None
    if out == bytes(32):  # OpenSSL already refuses; kept so the rule does not depend on it
        raise LowOrderPoint("X25519 shared secret is zero")
    return out


def check_x25519_public(pk: bytes) -> bytes:
    """Reject low-order public keys (clamping clears the cofactor, so X25519(c, pk) = 0),
    then non-canonical encodings (u >= 2^255 - 19, top bit included).

    A certified key must have one encoding: its kid hashes the bytes, and HPKE's
    kem_context uses the bytes the sender saw while the recipient recomputes the
    canonical ones, so a non-canonical certified key could never receive a wrap.
    """
    x25519(_CHECK_SCALAR, pk)  # first, so every low-order encoding is crypto_low_order
    if int.from_bytes(pk, "little") >= _P25519:
        raise EncodingInvalid("non-canonical X25519 public key")
    return pk


def x25519_public(sk: bytes) -> bytes:
    private = X25519PrivateKey.from_private_bytes(_check_len(sk, 32, "X25519 seed"))
    return private.public_key().public_bytes_raw()


def ed25519_verify(pk: bytes, sig: bytes, msg: bytes) -> None:
    _check_len(pk, 32, "Ed25519 public key")
    _check_len(sig, 64, "Ed25519 signature")
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except (InvalidSignature, ValueError):
        raise SignatureInvalid("signature does not verify") from None


def fingerprint_text(fingerprint: bytes) -> str:
    """Human form: base32 of the first 20 bytes, 8 groups of 4 (160 bits)."""
    b32 = base64.b32encode(fingerprint[:20]).decode("ascii")
    return " ".join(b32[i : i + 4] for i in range(0, 32, 4))


class _Signer:
    """Ed25519 signing from a 32-byte seed (shared by FRK and UIK)."""

    ed_sk: bytes
    _ed: Ed25519PrivateKey

    def sign(self, msg: bytes) -> bytes:
        return self._ed.sign(msg)


class _PublicRecord:
    """Fingerprint = SHA-256 of the canonical public record; kid = its first 16 bytes (§4)."""

    __slots__ = ()

    def record(self) -> bytes:
        raise NotImplementedError

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha256(self.record()).digest()

    @property
    def kid(self) -> bytes:
        return self.fingerprint[:16]


@dataclass(frozen=True, slots=True)
class FirmRootPublic(_PublicRecord):
    ed_pk: bytes

    def __post_init__(self) -> None:
        _check_len(self.ed_pk, 32, "FRK public key")

    def record(self) -> bytes:
        return enc.record(b"RTKR", enc.field(self.ed_pk))

    @property
    def fingerprint_text(self) -> str:
        return fingerprint_text(self.fingerprint)

    @property
    def link(self) -> str:
        """The ``frk=`` value of an invite link fragment."""
        return base64.urlsafe_b64encode(self.fingerprint).rstrip(b"=").decode("ascii")

    def verify(self, sig: bytes, msg: bytes) -> None:
        ed25519_verify(self.ed_pk, sig, msg)


@dataclass(frozen=True, slots=True)
class FirmRootKey(_Signer):
    ed_sk: bytes
    _ed: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_len(self.ed_sk, 32, "FRK seed")
        object.__setattr__(self, "_ed", Ed25519PrivateKey.from_private_bytes(self.ed_sk))

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> FirmRootKey:
        return cls(rng(32))

    @property
    def public(self) -> FirmRootPublic:
        return FirmRootPublic(self._ed.public_key().public_bytes_raw())

    @property
    def kid(self) -> bytes:
        return self.public.kid


@dataclass(frozen=True, slots=True)
class IdentityPublic(_PublicRecord):
    """A user's public identity keys: X25519 (receives wraps) + Ed25519 (signs)."""

    x_pk: bytes
    ed_pk: bytes

    def __post_init__(self) -> None:
        _check_len(self.x_pk, 32, "X25519 public key")
        _check_len(self.ed_pk, 32, "Ed25519 public key")

    def record(self) -> bytes:
        return enc.record(b"RTKU", enc.field(self.x_pk), enc.field(self.ed_pk))

    def verify(self, sig: bytes, msg: bytes) -> None:
        ed25519_verify(self.ed_pk, sig, msg)


@dataclass(frozen=True, slots=True)
class IdentityKey(_Signer):
    """A user identity key (UIK): two 32-byte seeds."""

    x_sk: bytes
    ed_sk: bytes
    _ed: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    _public: IdentityPublic = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_len(self.x_sk, 32, "X25519 seed")
        _check_len(self.ed_sk, 32, "Ed25519 seed")
        ed = Ed25519PrivateKey.from_private_bytes(self.ed_sk)
        object.__setattr__(self, "_ed", ed)
        public = IdentityPublic(x25519_public(self.x_sk), ed.public_key().public_bytes_raw())
        object.__setattr__(self, "_public", public)

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> IdentityKey:
        return cls(rng(32), rng(32))

    @classmethod
    def from_invite_secret(cls, secret: bytes, firm: str, user: str) -> IdentityKey:
        """The invited client's key, derived from the link secret ``R`` (docs/keys.md).

        Staff certify it before the client exists, so the client can read at
        once; the (firm, user) context means one ``R`` never yields the same key twice.
        """
        _check_len(secret, INVITE_SECRET_LEN, "invite secret")
        seeds = derive(secret, "rtp1/invite", enc.id_(firm), enc.id_(user), length=64)
        return cls(seeds[:32], seeds[32:])

    @property
    def public(self) -> IdentityPublic:
        return self._public

    @property
    def kid(self) -> bytes:
        return self._public.kid

    def key_file(self, firm: str, user: str) -> bytes:
        """``R("RTUK"; firm, user, x_sk, ed_sk)``: a bot's key file (secret!)."""
        return enc.record(
            b"RTUK",
            enc.field(enc.id_(firm)),
            enc.field(enc.id_(user)),
            enc.field(self.x_sk),
            enc.field(self.ed_sk),
        )

    @classmethod
    def from_key_file(cls, data: bytes) -> tuple[str, str, IdentityKey]:
        r = enc.Reader(data, b"RTUK")
        firm, user, x_sk, ed_sk = r.id_(), r.id_(), r.fixed(32), r.fixed(32)
        r.done()
        return firm, user, cls(x_sk, ed_sk)


@dataclass(frozen=True, slots=True)
class FirmEscrowPublic(_PublicRecord):
    firm: str
    version: int
    x_pk: bytes

    def record(self) -> bytes:
        return enc.record(
            b"RTKE",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.u32(self.version)),
            enc.field(_check_len(self.x_pk, 32, "FEK public key")),
        )


@dataclass(frozen=True, slots=True)
class FirmEscrowKey:
    """FEK (X25519) and FIR (32 bytes) of one version: what every staff member holds."""

    firm: str
    version: int
    x_sk: bytes
    fir: bytes

    def __post_init__(self) -> None:
        _check_len(self.x_sk, 32, "FEK seed")
        _check_len(self.fir, 32, "FIR")

    @classmethod
    def generate(cls, firm: str, version: int, rng: Rng = system_rng) -> FirmEscrowKey:
        return cls(firm, version, rng(32), rng(32))

    @property
    def public(self) -> FirmEscrowPublic:
        return FirmEscrowPublic(self.firm, self.version, x25519_public(self.x_sk))

    @property
    def kid(self) -> bytes:
        return self.public.kid

    def wrapped_plaintext(self) -> bytes:
        """The 64-byte plaintext of a kind-2 wrap: ``FEK x_sk ‖ FIR``."""
        return self.x_sk + self.fir


@dataclass(frozen=True, slots=True)
class EscrowRecordBody:
    """``RTF1``: the FRK's word on which X25519 key is the FEK of a version.

    A reader refuses a firm-key wrap whose FEK does not match, so a staff
    member cannot hand others an escrow key of their own making.
    """

    firm: str
    version: int
    x_pk: bytes
    created_at_ms: int

    def encode(self) -> bytes:
        if self.version < 1:
            raise EncodingInvalid("escrow versions start at 1")
        return enc.record(
            b"RTF1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.u32(self.version)),
            enc.field(_check_len(self.x_pk, 32, "FEK public key")),
            enc.field(enc.u64(self.created_at_ms)),
        )

    @classmethod
    def decode(cls, data: bytes) -> EscrowRecordBody:
        r = enc.Reader(data, b"RTF1")
        body = cls(r.id_(), r.u32(), r.fixed(32), r.u64())
        r.done()
        if body.version < 1:
            raise EncodingInvalid("escrow versions start at 1")
        return body

    @property
    def public(self) -> FirmEscrowPublic:
        return FirmEscrowPublic(self.firm, self.version, self.x_pk)


@dataclass(frozen=True, slots=True)
class EscrowRecord:
    body: EscrowRecordBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTFX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> EscrowRecord:
        r = enc.Reader(data, b"RTFX")
        body, sig = EscrowRecordBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)

    def verify(self, frk: FirmRootPublic) -> None:
        check_x25519_public(self.body.x_pk)
        frk.verify(self.sig, self.body.encode())


def sign_escrow_record(body: EscrowRecordBody, frk: FirmRootKey) -> EscrowRecord:
    check_x25519_public(body.x_pk)
    return EscrowRecord(body, frk.sign(body.encode()))
