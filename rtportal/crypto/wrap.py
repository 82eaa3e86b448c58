"""Signed HPKE key wraps (docs/security.md §6).

HPKE base mode does not authenticate the sender, so the wrapper signs
``R("RTWS"; info, wrapper, wrapper_kid, enc, ct)``. All context (firm,
matter, epoch, kind, recipient) is in the HPKE ``info``, which the reader
rebuilds from what it expects, so a wrap for another matter, epoch or
recipient never opens. Certificate rules are checked by ``directory``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

from rtportal.crypto import encoding as enc
from rtportal.crypto import hpke
from rtportal.crypto.certs import Signer
from rtportal.crypto.errors import CommitmentMismatch, EncodingInvalid, WrongContext
from rtportal.crypto.kdf import commitment
from rtportal.crypto.keys import ed25519_verify
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "FEK_RECIPIENT",
    "FIRM_MATTER",
    "Wrap",
    "WrapInfo",
    "WrapKind",
    "open_wrap",
    "wrap_key",
]

FEK_RECIPIENT = "#fek"
FIRM_MATTER = "#firm"


class WrapKind(IntEnum):
    MEK = 1  # 32-byte matter epoch key
    FIRM = 2  # 64 bytes: FEK x_sk ‖ FIR; matter = "#firm", epoch = FEK version


_KEY_LEN = {WrapKind.MEK: 32, WrapKind.FIRM: 64}


@dataclass(frozen=True, slots=True)
class WrapInfo:
    """The HPKE ``info``: everything a wrap is bound to."""

    firm: str
    matter: str
    epoch: int
    kind: WrapKind
    recipient: str
    recipient_kid: bytes

    def encode(self) -> bytes:
        return enc.record(
            b"RTW1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.matter)),
            enc.field(enc.u32(self.epoch)),
            enc.field(enc.u8(int(self.kind))),
            enc.field(enc.id_(self.recipient)),
            enc.field(self.recipient_kid),
        )

    @classmethod
    def decode(cls, data: bytes) -> WrapInfo:
        r = enc.Reader(data, b"RTW1")
        firm, matter, epoch, kind = r.id_(), r.id_(), r.u32(), r.u8()
        recipient, kid = r.id_(), r.fixed(16)
        r.done()
        try:
            wrap_kind = WrapKind(kind)
        except ValueError:
            raise EncodingInvalid(f"unknown wrap kind {kind}") from None
        return cls(firm, matter, epoch, wrap_kind, recipient, kid)

    @property
    def key_len(self) -> int:
        return _KEY_LEN[self.kind]


@dataclass(frozen=True, slots=True)
class Wrap:
    info: WrapInfo
    wrapper: str
    wrapper_kid: bytes
    enc: bytes
    ct: bytes
    sig: bytes

    def _fields(self) -> tuple[bytes, ...]:
        return (
            enc.field(self.info.encode()),
            enc.field(enc.id_(self.wrapper)),
            enc.field(self.wrapper_kid),
            enc.field(self.enc),
            enc.field(self.ct),
        )

    def sig_input(self) -> bytes:
        return enc.record(b"RTWS", *self._fields())

    def encode(self) -> bytes:
        return enc.record(b"RTWX", *self._fields(), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> Wrap:
        r = enc.Reader(data, b"RTWX")
        info = WrapInfo.decode(r.raw())
        wrapper, wrapper_kid, enc_, ct, sig = (
            r.id_(),
            r.fixed(16),
            r.fixed(32),
            r.raw(),
            r.fixed(64),
        )
        r.done()
        if len(ct) != info.key_len + 16:
            raise EncodingInvalid("wrap ciphertext has the wrong length for its kind")
        return cls(info, wrapper, wrapper_kid, enc_, ct, sig)


def wrap_key(
    key: bytes,
    info: WrapInfo,
    recipient_x_pk: bytes,
    wrapper: str,
    signer: Signer,
    *,
    eph_sk: bytes | None = None,
    rng: Rng = system_rng,
) -> Wrap:
    """Wrap ``key`` (MEK or FEK‖FIR) to ``recipient_x_pk`` and sign it as ``wrapper``."""
    if len(key) != info.key_len:
        raise EncodingInvalid(f"a kind-{int(info.kind)} wrap carries {info.key_len} bytes")
    enc_, ct = hpke.seal_base(recipient_x_pk, info.encode(), b"", key, eph_sk=eph_sk, rng=rng)
    unsigned = Wrap(info, wrapper, signer.kid, enc_, ct, b"")
    return Wrap(info, wrapper, signer.kid, enc_, ct, signer.sign(unsigned.sig_input()))


def open_wrap(
    wrap: Wrap,
    expected: WrapInfo,
    recipient_x_sk: bytes,
    wrapper_ed_pk: bytes,
    *,
    commit: bytes | None = None,
) -> bytes:
    """Context, signature, HPKE open, then (MEK) the manifest commitment.

    ``wrapper_ed_pk`` must come from a certificate the caller already checked.
    """
    if wrap.info != expected:
        raise WrongContext("wrap is for another firm, matter, epoch, kind or recipient")
    if len(wrap.ct) != expected.key_len + 16:
        raise EncodingInvalid("wrap ciphertext has the wrong length")
    ed25519_verify(wrapper_ed_pk, wrap.sig, wrap.sig_input())
    key = hpke.open_base(recipient_x_sk, wrap.enc, expected.encode(), b"", wrap.ct)
    if expected.kind is WrapKind.MEK:
        if commit is None:
            raise CommitmentMismatch("no epoch commitment to check the MEK against")
        mine = commitment(key, expected.firm, expected.matter, expected.epoch)
        if not hmac.compare_digest(mine, commit):
            raise CommitmentMismatch("MEK does not match the manifest commitment")
    return key
