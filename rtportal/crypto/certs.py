"""Certificates, client revocations and the firm's revocation list (docs/security.md §5).

A certificate binds (firm, role, user) to both public keys of a UIK. Staff
and bot certificates are signed by the firm root key; client certificates by
a staff member whose certificate carries CERTIFY_CLIENTS (or an unscoped
custodian bot). The revocation list ``RTL1`` is FRK-signed, versioned and
time-bound, so a server cannot withhold a revocation without the client
noticing. This module only encodes, signs and checks one signature; the
chain rules (who may issue what, revocation, expiry, freshness) live in
``directory``, which has the trust state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Protocol

from rtportal.crypto import encoding as enc
from rtportal.crypto.edwards import check_ed25519_public
from rtportal.crypto.errors import EncodingInvalid
from rtportal.crypto.keys import (
    FirmRootKey,
    FirmRootPublic,
    IdentityPublic,
    check_x25519_public,
    ed25519_verify,
)

__all__ = [
    "FRK_ISSUER",
    "CertBody",
    "Certificate",
    "Flag",
    "Reason",
    "Revocation",
    "RevocationBody",
    "RevocationEntry",
    "RevocationList",
    "RevocationListBody",
    "Role",
    "Signer",
    "issue",
    "parse_reason",
    "parse_role",
    "revoke",
    "sign_revocation_list",
]

FRK_ISSUER = "#frk"
CLOCK_SKEW_MS = 5 * 60 * 1000


class Role(IntEnum):
    STAFF = 1
    CLIENT = 2
    BOT = 3


class Flag(IntFlag):
    CERTIFY_CLIENTS = 0x1
    CUSTODIAN = 0x2


_KNOWN_FLAGS = int(Flag.CERTIFY_CLIENTS | Flag.CUSTODIAN)


class Signer(Protocol):
    """Anything that signs with Ed25519 (``FirmRootKey``, ``IdentityKey``)."""

    def sign(self, msg: bytes) -> bytes: ...

    @property
    def kid(self) -> bytes: ...


def parse_role(value: int) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise EncodingInvalid(f"unknown role {value}") from None


@dataclass(frozen=True, slots=True)
class CertBody:
    firm: str
    role: Role
    user: str
    x_pk: bytes
    ed_pk: bytes
    serial: int
    issued_at_ms: int
    expires_at_ms: int  # 0 = no expiry
    flags: Flag
    scopes: tuple[str, ...]  # matter ids; empty = every matter of the firm
    issuer: str  # FRK_ISSUER or the issuing staff member's user id
    issuer_kid: bytes

    def encode(self) -> bytes:
        """The to-be-signed record ``RTC1``."""
        if int(self.flags) & ~_KNOWN_FLAGS:
            raise EncodingInvalid("unknown certificate flag")
        if self.role is Role.CLIENT and self.flags:
            raise EncodingInvalid("client certificates carry no flags")
        return enc.record(
            b"RTC1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.u8(int(self.role))),
            enc.field(enc.id_(self.user)),
            enc.field(self.x_pk),
            enc.field(self.ed_pk),
            enc.field(enc.u64(self.serial)),
            enc.field(enc.u64(self.issued_at_ms)),
            enc.field(enc.u64(self.expires_at_ms)),
            enc.field(enc.u32(int(self.flags))),
            enc.field(enc.sorted_list(enc.ids(self.scopes))),
            enc.field(enc.id_(self.issuer)),
            enc.field(self.issuer_kid),
        )

    @classmethod
    def decode(cls, data: bytes) -> CertBody:
        r = enc.Reader(data, b"RTC1")
        firm, role, user = r.id_(), parse_role(r.u8()), r.id_()
        x_pk, ed_pk = r.fixed(32), r.fixed(32)
        serial, issued, expires, flags = r.u64(), r.u64(), r.u64(), r.u32()
        scopes = tuple(_utf8_id(s) for s in r.list_(sorted_=True))
        issuer, issuer_kid = r.id_(), r.fixed(16)
        r.done()
        body = cls(
            firm,
            role,
            user,
            x_pk,
            ed_pk,
            serial,
            issued,
            expires,
            Flag(flags),
            scopes,
            issuer,
            issuer_kid,
        )
        if body.encode() != data:  # flags/role rules; also a belt-and-braces canonical check
            raise EncodingInvalid("non-canonical certificate")
        check_ed25519_public(ed_pk)  # a small-order key would verify any message
        return body

    @property
    def public(self) -> IdentityPublic:
        return IdentityPublic(self.x_pk, self.ed_pk)

    @property
    def kid(self) -> bytes:
        return self.public.kid

    def valid_at(self, now_ms: int) -> bool:
        if self.issued_at_ms > now_ms + CLOCK_SKEW_MS:
            return False
        return self.expires_at_ms == 0 or now_ms < self.expires_at_ms

    def in_scope(self, matter: str) -> bool:
        return not self.scopes or matter in self.scopes


def _utf8_id(raw: bytes) -> str:
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingInvalid("invalid UTF-8") from None
    enc.id_(value)
    return value


@dataclass(frozen=True, slots=True)
class Certificate:
    body: CertBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTCX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        r = enc.Reader(data, b"RTCX")
        body, sig = CertBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)

    def verify_signature(self, issuer_ed_pk: bytes) -> None:
        """Only the signature; use ``Directory`` for the full chain rules."""
        ed25519_verify(issuer_ed_pk, self.sig, self.body.encode())


def issue(body: CertBody, signer: Signer) -> Certificate:
    """Sign ``body``; refuses a low-order X25519 or Ed25519 key or a mismatched issuer kid."""
    check_x25519_public(body.x_pk)
    check_ed25519_public(body.ed_pk)
    if body.issuer_kid != signer.kid:
        raise EncodingInvalid("issuer_kid is not the signer's key id")
    return Certificate(body, signer.sign(body.encode()))


@dataclass(frozen=True, slots=True)
class RevocationBody:
    firm: str
    user: str
    kid: bytes
    serial: int
    revoked_at_ms: int
    issuer: str
    issuer_kid: bytes

    def encode(self) -> bytes:
        return enc.record(
            b"RTV1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.user)),
            enc.field(self.kid),
            enc.field(enc.u64(self.serial)),
            enc.field(enc.u64(self.revoked_at_ms)),
            enc.field(enc.id_(self.issuer)),
            enc.field(self.issuer_kid),
        )

    @classmethod
    def decode(cls, data: bytes) -> RevocationBody:
        r = enc.Reader(data, b"RTV1")
        body = cls(r.id_(), r.id_(), r.fixed(16), r.u64(), r.u64(), r.id_(), r.fixed(16))
        r.done()
        return body


@dataclass(frozen=True, slots=True)
class Revocation:
    body: RevocationBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTVX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> Revocation:
        r = enc.Reader(data, b"RTVX")
        body, sig = RevocationBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)


def revoke(body: RevocationBody, signer: Signer) -> Revocation:
    if body.issuer_kid != signer.kid:
        raise EncodingInvalid("issuer_kid is not the signer's key id")
    return Revocation(body, signer.sign(body.encode()))


class Reason(IntEnum):
    """Why a key is on the revocation list.

    ``LEFT`` and ``SUPERSEDED`` are not compromises: what the key signed before
    ``revoked_at_ms`` stays valid (history stays readable). ``COMPROMISED``:
    nothing the key ever signed is valid, since a thief can backdate.
    """

    LEFT = 1
    SUPERSEDED = 2
    COMPROMISED = 3


def parse_reason(value: int) -> Reason:
    try:
        return Reason(value)
    except ValueError:
        raise EncodingInvalid(f"unknown revocation reason {value}") from None


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    user: str
    kid: bytes
    revoked_at_ms: int
    reason: Reason

    def encode(self) -> bytes:
        if len(self.kid) != 16:
            raise EncodingInvalid("kid must be 16 bytes")
        return enc.record(
            b"RTLE",
            enc.field(enc.id_(self.user)),
            enc.field(self.kid),
            enc.field(enc.u64(self.revoked_at_ms)),
            enc.field(enc.u8(int(parse_reason(int(self.reason))))),
        )

    @classmethod
    def decode(cls, data: bytes) -> RevocationEntry:
        r = enc.Reader(data, b"RTLE")
        entry = cls(r.id_(), r.fixed(16), r.u64(), parse_reason(r.u8()))
        r.done()
        return entry


@dataclass(frozen=True, slots=True)
class RevocationListBody:
    """``RTL1``: every revoked staff, bot (and FRK-revoked client) key of the firm."""

    firm: str
    version: int
    issued_at_ms: int
    next_update_ms: int
    entries: tuple[RevocationEntry, ...]

    def __post_init__(self) -> None:
        # one canonical order (by encoded bytes) so equal lists compare equal
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=RevocationEntry.encode)))

    def encode(self) -> bytes:
        if self.next_update_ms < self.issued_at_ms:
            raise EncodingInvalid("next_update is before issued_at")
        keys = [(e.user, e.kid) for e in self.entries]
        if len(set(keys)) != len(keys):
            raise EncodingInvalid("a key is on the revocation list twice")
        return enc.record(
            b"RTL1",
            enc.field(enc.id_(self.firm)),
            enc.field(enc.u32(self.version)),
            enc.field(enc.u64(self.issued_at_ms)),
            enc.field(enc.u64(self.next_update_ms)),
            enc.field(enc.sorted_list(e.encode() for e in self.entries)),
        )

    @classmethod
    def decode(cls, data: bytes) -> RevocationListBody:
        r = enc.Reader(data, b"RTL1")
        firm, version, issued, next_update = r.id_(), r.u32(), r.u64(), r.u64()
        entries = tuple(RevocationEntry.decode(e) for e in r.list_(sorted_=True))
        r.done()
        body = cls(firm, version, issued, next_update, entries)
        if body.encode() != data:  # the same (user, kid) twice, or next_update < issued_at
            raise EncodingInvalid("non-canonical revocation list")
        return body

    def entry(self, user: str, kid: bytes) -> RevocationEntry | None:
        for e in self.entries:
            if e.user == user and e.kid == kid:
                return e
        return None


@dataclass(frozen=True, slots=True)
class RevocationList:
    body: RevocationListBody
    sig: bytes

    def encode(self) -> bytes:
        return enc.record(b"RTLX", enc.field(self.body.encode()), enc.field(self.sig))

    @classmethod
    def decode(cls, data: bytes) -> RevocationList:
        r = enc.Reader(data, b"RTLX")
        body, sig = RevocationListBody.decode(r.raw()), r.fixed(64)
        r.done()
        return cls(body, sig)

    def verify(self, frk: FirmRootPublic) -> None:
        """Only the FRK signature; freshness and versions are ``Directory``'s."""
        frk.verify(self.sig, self.body.encode())


def sign_revocation_list(body: RevocationListBody, frk: FirmRootKey) -> RevocationList:
    return RevocationList(body, frk.sign(body.encode()))
