"""Epoch manifests and heads: signed membership with a hash chain (docs/security.md §7).

Building and encoding only; the verifier rules (certified members, chain,
no rollback, fresh head) are in ``directory`` where the per-matter state lives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import Role, Signer, parse_role
from rtportal.crypto.errors import EncodingInvalid

__all__ = [
    "GENESIS_HASH",
    "HEAD_MAX_AGE_MS",
    "EpochHead",
    "HeadBody",
    "Manifest",
    "ManifestBody",
    "Member",
    "sign_head",
    "sign_manifest",
]

GENESIS_HASH = bytes(32)
# a writer needs a head of the current epoch signed within this bound, so a server that
# hides newer epochs (or forks the chain) is noticed within 90 days even in a quiet matter
HEAD_MAX_AGE_MS = 90 * 86_400_000


@dataclass(frozen=True, slots=True, order=True)
class Member:
    user: str
    kid: bytes
    role: Role

    def encode(self) -> bytes:
        return enc.record(
            b"RTEM",
            enc.field(enc.id_(self.user)),
            enc.field(self.kid),
            enc.field(enc.u8(int(self.role))),
        )

    @classmethod
    def decode(cls, data: bytes) -> Member:
        r = enc.Reader(data, b"RTEM")
        member = cls(r.id_(), r.fixed(16), parse_role(r.u8()))
        r.done()
        if member.role is Role.STAFF:
            raise EncodingInvalid("staff read through the FEK and are not manifest members")
        return member


@dataclass(frozen=True, slots=True)
class ManifestBody:
    firm: str
    matter: str
    epoch: int
    prev_hash: bytes
    fek_version: int
    members: tuple[Member, ...]
    share_history: bool
    creator: str
    creator_kid: bytes
    ts_ms: int
    commit: bytes

    def __post_init__(self) -> None:
        # one canonical order (by encoded bytes) so equal manifests compare equal
        object.__setattr__(self, "members", tuple(sorted(self.members, key=Member.encode)))

    def encode(self) -> bytes:
        if self.epoch < 1:
            raise EncodingInvalid("epochs start at 1")
        encoded = [m.encode() for m in self.members]
        if len(set(encoded)) != len(encoded):
            raise EncodingInvalid("duplicate manifest member")
        return enc.record(
            b"RTE1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.matter)),
            enc.field(enc.u32(self.epoch)),
            enc.field(self.prev_hash),
            enc.field(enc.u32(self.fek_version)),
            enc.field(enc.sorted_list(encoded)),
            enc.field(enc.u8(int(self.share_history))),
            enc.field(enc.id_(self.creator)),
            enc.field(self.creator_kid),
            enc.field(enc.u64(self.ts_ms)),
            enc.field(self.commit),
        )

    @classmethod
    def decode(cls, data: bytes) -> ManifestBody:
        r = enc.Reader(data, b"RTE1")
        firm, matter, epoch, prev_hash, fek_version = (
            r.id_(),
            r.id_(),
            r.u32(),
            r.fixed(32),
            r.u32(),
        )
        members = tuple(Member.decode(m) for m in r.list_(sorted_=True))
        share_history, creator, creator_kid = r.bool_(), r.id_(), r.fixed(16)
        ts_ms, commit = r.u64(), r.fixed(32)
        r.done()
        if epoch < 1:
            raise EncodingInvalid("epochs start at 1")
        return cls(
            firm,
            matter,
            epoch,
            prev_hash,
            fek_version,
            members,
            share_history,
            creator,
            creator_kid,
            ts_ms,
            commit,
        )

    @property
    def hash(self) -> bytes:
        """``SHA-256(tbs)``: what the next epoch's ``prev_hash`` must be."""
        return hashlib.sha256(self.encode()).digest()

    def member(self, user: str, kid: bytes) -> Member | None:
        for m in self.members:
            if m.user == user and m.kid == kid:
                return m
        return None


@dataclass(frozen=True, slots=True)
class Manifest:
    body: ManifestBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTEX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        r = enc.Reader(data, b"RTEX")
        body, sig = ManifestBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)


def sign_manifest(body: ManifestBody, signer: Signer) -> Manifest:
    if body.creator_kid != signer.kid:
        raise EncodingInvalid("creator_kid is not the signer's key id")
    return Manifest(body, signer.sign(body.encode()))


@dataclass(frozen=True, slots=True)
class HeadBody:
    """``RTH1``: "the newest epoch of this matter is (epoch, hash)", signed at ``ts_ms``."""

    firm: str
    matter: str
    epoch: int
    hash: bytes
    ts_ms: int
    signer: str
    signer_kid: bytes

    def encode(self) -> bytes:
        if self.epoch < 1:
            raise EncodingInvalid("epochs start at 1")
        if len(self.hash) != 32 or len(self.signer_kid) != 16:
            raise EncodingInvalid("head hash is 32 bytes and signer_kid 16")
        return enc.record(
            b"RTH1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.matter)),
            enc.field(enc.u32(self.epoch)),
            enc.field(self.hash),
            enc.field(enc.u64(self.ts_ms)),
            enc.field(enc.id_(self.signer)),
            enc.field(self.signer_kid),
        )

    @classmethod
    def decode(cls, data: bytes) -> HeadBody:
        r = enc.Reader(data, b"RTH1")
        body = cls(r.id_(), r.id_(), r.u32(), r.fixed(32), r.u64(), r.id_(), r.fixed(16))
        r.done()
        if body.epoch < 1:
            raise EncodingInvalid("epochs start at 1")
        return body


@dataclass(frozen=True, slots=True)
class EpochHead:
    body: HeadBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTHX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> EpochHead:
        r = enc.Reader(data, b"RTHX")
        body, sig = HeadBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)


def sign_head(body: HeadBody, signer: Signer) -> EpochHead:
    if body.signer_kid != signer.kid:
        raise EncodingInvalid("signer_kid is not the signer's key id")
    return EpochHead(body, signer.sign(body.encode()))
