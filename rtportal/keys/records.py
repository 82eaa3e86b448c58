"""Decoding the records clients post, and the checks that need no private key.

Every record is decoded with the rtp1 library (``rtportal.crypto``) and must
name the caller's firm (and the matter of the URL); FRK-signed records are
verified against the firm's stored root key. A record that does not decode,
names another context or fails its signature is ``bad_request`` with
``details.field`` and ``details.reason`` (the library's stable ``crypto_*``
code): refused early, never a 500. Clients verify everything again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rtportal import base64url
from rtportal.crypto import encoding as enc
from rtportal.crypto.backup import Backup
from rtportal.crypto.certs import FRK_ISSUER, Certificate, Revocation, RevocationList, Role
from rtportal.crypto.envelope import Envelope
from rtportal.crypto.errors import WrongContext
from rtportal.crypto.keys import (
    EscrowRecord,
    FirmRootPublic,
    IdentityPublic,
    check_x25519_public,
    ed25519_verify,
)
from rtportal.crypto.manifest import EpochHead, Manifest
from rtportal.crypto.wrap import Wrap
from rtportal.errors import BadRequest, CryptoInvalid

__all__ = [
    "Limits",
    "backup",
    "certificate",
    "client_revocation",
    "decoding",
    "envelope",
    "escrow_record",
    "head",
    "identity",
    "manifest",
    "raw",
    "raw_list",
    "revocation_list",
    "root",
    "verify",
    "verify_frk_cert",
    "wrap",
]


class Limits:
    """Size limits of docs/keys.md, in bytes of the decoded record."""

    ROOT = 256
    PUBLIC_KEYS = 256
    CERT = 4096
    REVOCATION = 4096
    HEAD = 4096
    ESCROW = 4096
    MANIFEST = 64 * 1024
    REVOCATION_LIST = 256 * 1024
    WRAP = 1024
    BACKUP = 8192
    HANDOVER = 1024
    WRAPS_PER_REQUEST = 1000
    CERTS_PER_REQUEST = 100


def raw(value: object, limit: int, field: str) -> bytes:
    """A required record: unpadded base64url of at most ``limit`` bytes."""
    data = base64url.decode(value, limit, field)
    if data is None:
        raise BadRequest(f"{field}: required", field=field)
    return data


def raw_list(value: object, limit: int, field: str, maximum: int) -> list[bytes]:
    """A list of at most ``maximum`` records (``None``: the empty list)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > maximum:
        raise BadRequest(f"{field}: must be a list of at most {maximum} records", field=field)
    return [raw(item, limit, f"{field}[{i}]") for i, item in enumerate(value)]


@contextmanager
def decoding(field: str) -> Iterator[None]:
    """A library refusal (``crypto_*``) as ``bad_request`` naming the field and the reason."""
    try:
        yield
    except CryptoInvalid as err:
        raise BadRequest(f"{field}: {err.message}", field=field, reason=err.code) from None
    except (ValueError, UnicodeError):
        raise BadRequest(
            f"{field}: not a valid record", field=field, reason="crypto_encoding"
        ) from None


def _context(ok: bool, what: str) -> None:
    if not ok:
        raise WrongContext(what)


def root(data: bytes, field: str = "frk") -> FirmRootPublic:
    """The firm root public record ``RTKR``."""
    with decoding(field):
        r = enc.Reader(data, b"RTKR")
        public = FirmRootPublic(r.fixed(32))
        r.done()
    return public


def backup(data: bytes, firm: str, user: str, field: str = "backup") -> Backup:
    """A key backup ``RTBK``/``RTBH`` of ``user`` at ``firm`` whose Argon2id parameters
    are within the library's bounds (never below its floor)."""
    with decoding(field):
        blob = Backup.decode(data)
        _context((blob.firm, blob.user) == (firm, user), "backup of another firm or user")
        blob.params.check()
    return blob


def identity(data: bytes, field: str = "public_keys") -> IdentityPublic:
    """A user's identity public record ``RTKU`` (a usable X25519 key)."""
    with decoding(field):
        r = enc.Reader(data, b"RTKU")
        public = IdentityPublic(r.fixed(32), r.fixed(32))
        r.done()
        check_x25519_public(public.x_pk)
    return public


def certificate(data: bytes, firm: str, field: str) -> Certificate:
    with decoding(field):
        cert = Certificate.decode(data)
        _context(cert.body.firm == firm, "certificate of another firm")
        check_x25519_public(cert.body.x_pk)
    return cert


def verify_frk_cert(cert: Certificate, frk: FirmRootPublic, field: str) -> None:
    """A staff or bot certificate: issued by the firm root key, its signature verifies."""
    with decoding(field):
        if cert.body.role is Role.CLIENT:
            raise WrongContext("a client certificate is not issued by the firm root key")
        _context(
            cert.body.issuer == FRK_ISSUER and cert.body.issuer_kid == frk.kid,
            "staff and bot certificates are issued by the firm root key",
        )
        frk.verify(cert.sig, cert.body.encode())


def verify(ed_pk: bytes, sig: bytes, message: bytes, field: str) -> None:
    """One Ed25519 signature by a key the caller took from a stored certificate."""
    with decoding(field):
        ed25519_verify(ed_pk, sig, message)


def client_revocation(data: bytes, firm: str, field: str) -> Revocation:
    with decoding(field):
        revocation = Revocation.decode(data)
        _context(revocation.body.firm == firm, "revocation of another firm")
    return revocation


def manifest(data: bytes, firm: str, matter: str, field: str = "manifest") -> Manifest:
    with decoding(field):
        m = Manifest.decode(data)
        _context(m.body.firm == firm and m.body.matter == matter, "manifest of another matter")
    return m


def wrap(data: bytes, firm: str, field: str) -> Wrap:
    with decoding(field):
        w = Wrap.decode(data)
        _context(w.info.firm == firm, "wrap of another firm")
    return w


def envelope(data: bytes, field: str = "blob") -> Envelope:
    with decoding(field):
        return Envelope.decode(data)


# The three records of the library's lifecycle rules (RTL1, RTF1, RTH1); each
# is decoded here and nowhere else.


def revocation_list(
    data: bytes, firm: str, frk: FirmRootPublic, field: str = "list"
) -> RevocationList:
    """The FRK-signed revocation list ``RTLX`` (its ``body.version`` is the CAS)."""
    with decoding(field):
        rl = RevocationList.decode(data)
        _context(rl.body.firm == firm, "revocation list of another firm")
        rl.verify(frk)
    return rl


def escrow_record(
    data: bytes, firm: str, frk: FirmRootPublic, field: str = "record"
) -> EscrowRecord:
    """The FRK-signed escrow key record ``RTFX`` (``body.version``: the FEK version)."""
    with decoding(field):
        record = EscrowRecord.decode(data)
        _context(record.body.firm == firm, "escrow record of another firm")
        record.verify(frk)
    return record


def head(data: bytes, firm: str, matter: str, field: str = "head") -> EpochHead:
    """A signed epoch head ``RTHX`` (the signer's signature is checked by the caller)."""
    with decoding(field):
        h = EpochHead.decode(data)
        _context(h.body.firm == firm and h.body.matter == matter, "head of another matter")
    return h
