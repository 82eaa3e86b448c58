"""Message envelopes and bodies (docs/security.md §8).

The AAD binds every header field; the sender signs AAD ‖ nonce ‖ ct. A
reader never trusts the envelope's firm/matter/thread: it rebuilds the AAD
from the thread it is showing, so a message moved by the server fails the
signature. Certificate, membership and replay rules live in ``directory``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import Signer
from rtportal.crypto.errors import DecryptFailed, EncodingInvalid, WrongContext
from rtportal.crypto.keys import ed25519_verify
from rtportal.crypto.rng import Rng, system_rng

__all__ = [
    "CTYPE_BODY",
    "CTYPE_TEXT",
    "VERSION",
    "AttachmentDescriptor",
    "Body",
    "Envelope",
    "Header",
    "Visibility",
    "decrypt_envelope",
    "open_envelope",
    "seal_envelope",
    "verify_envelope",
]

VERSION = 1
CTYPE_BODY = "rtp1/body"
CTYPE_TEXT = "rtp1/text"
NONCE_LEN = 12


class Visibility(IntEnum):
    PORTAL = 0
    STAFF = 1


@dataclass(frozen=True, slots=True)
class Header:
    """Every authenticated, unencrypted field of a message."""

    firm: str
    matter: str
    thread: str
    msg_id: bytes
    parent: bytes | None
    sender: str
    sender_kid: bytes
    epoch: int
    vis: Visibility
    ts_ms: int
    ctype: str
    v: int = VERSION

    def aad(self) -> bytes:
        if len(self.msg_id) != 16 or (self.parent is not None and len(self.parent) != 16):
            raise EncodingInvalid("msg_id and parent are 16 bytes")
        return enc.record(
            b"RTM1",
            enc.field(enc.u8(self.v)),
            enc.field(enc.id_(self.firm)),
            enc.field(enc.id_(self.matter)),
            enc.field(enc.id_(self.thread)),
            enc.field(self.msg_id),
            enc.field(self.parent or b""),
            enc.field(enc.id_(self.sender)),
            enc.field(self.sender_kid),
            enc.field(enc.u32(self.epoch)),
            enc.field(enc.u8(int(self.vis))),
            enc.field(enc.u64(self.ts_ms)),
            enc.field(enc.ascii_(self.ctype)),
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        r = enc.Reader(data, b"RTM1")
        v = r.u8()
        if v != VERSION:
            raise EncodingInvalid(f"unsupported envelope version {v}")
        firm, matter, thread, msg_id, parent = (
            r.id_(),
            r.id_(),
            r.id_(),
            r.fixed(16),
            r.opt_fixed(16),
        )
        sender, sender_kid, epoch, vis = r.id_(), r.fixed(16), r.u32(), r.u8()
        ts_ms, ctype = r.u64(), r.ascii_()
        r.done()
        if vis > 1:
            raise EncodingInvalid(f"unknown visibility {vis}")
        return cls(
            firm,
            matter,
            thread,
            msg_id,
            parent,
            sender,
            sender_kid,
            epoch,
            Visibility(vis),
            ts_ms,
            ctype,
            v,
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    header: Header
    nonce: bytes
    ct: bytes
    sig: bytes

    def sig_input(self, aad: bytes | None = None) -> bytes:
        return enc.record(
            b"RTMS",
            enc.field(aad if aad is not None else self.header.aad()),
            enc.field(self.nonce),
            enc.long_field(self.ct),
        )

    def encode(self) -> bytes:
        """The transport blob ``RTMX`` (the event ``blob``)."""
        return enc.record(
            b"RTMX",
            enc.field(self.header.aad()),
            enc.field(self.nonce),
            enc.long_field(self.ct),
            enc.field(self.sig),
        )

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        r = enc.Reader(data, b"RTMX")
        header = Header.decode(r.raw())
        nonce, ct, sig = r.fixed(NONCE_LEN), r.raw_long(), r.fixed(64)
        r.done()
        if len(ct) < 16:
            raise EncodingInvalid("ciphertext shorter than the GCM tag")
        return cls(header, nonce, ct, sig)


def seal_envelope(
    header: Header, key: bytes, plaintext: bytes, signer: Signer, *, rng: Rng = system_rng
) -> Envelope:
    """Encrypt under the message (or internal) key and sign as the sender."""
    if header.sender_kid != signer.kid:
        raise EncodingInvalid("sender_kid is not the signer's key id")
    nonce = rng(NONCE_LEN)
    aad = header.aad()
    ct = AESGCM(key).encrypt(nonce, plaintext, aad)
    env = Envelope(header, nonce, ct, b"")
    return replace(env, sig=signer.sign(env.sig_input(aad)))


def verify_envelope(
    env: Envelope, *, firm: str, matter: str, thread: str, sender_ed_pk: bytes
) -> bytes:
    """Check the context and the signature over the *rebuilt* AAD; returns that AAD.

    ``sender_ed_pk`` must come from a certificate the caller already checked.
    """
    h = env.header
    if (h.firm, h.matter, h.thread) != (firm, matter, thread):
        raise WrongContext("message belongs to another firm, matter or thread")
    aad = replace(h, firm=firm, matter=matter, thread=thread).aad()
    ed25519_verify(sender_ed_pk, env.sig, env.sig_input(aad))
    return aad


def decrypt_envelope(env: Envelope, aad: bytes, key: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(env.nonce, env.ct, aad)
    except InvalidTag:
        raise DecryptFailed("message does not decrypt") from None


def open_envelope(
    env: Envelope,
    *,
    firm: str,
    matter: str,
    thread: str,
    sender_ed_pk: bytes,
    key: bytes,
) -> bytes:
    """:func:`verify_envelope` then decrypt (no replay check: see ``Directory``)."""
    aad = verify_envelope(env, firm=firm, matter=matter, thread=thread, sender_ed_pk=sender_ed_pk)
    return decrypt_envelope(env, aad, key)


@dataclass(frozen=True, slots=True)
class AttachmentDescriptor:
    att_id: bytes
    fk: bytes
    ct_sha256: bytes
    size: int
    name: str
    mime: str

    def encode(self) -> bytes:
        if len(self.att_id) != 16 or len(self.fk) != 32 or len(self.ct_sha256) != 32:
            raise EncodingInvalid("attachment descriptor field of wrong length")
        return enc.record(
            b"RTAD",
            enc.field(self.att_id),
            enc.field(self.fk),
            enc.field(self.ct_sha256),
            enc.field(enc.u64(self.size)),
            enc.field(enc.text(self.name)),
            enc.field(enc.text(self.mime)),
        )

    @classmethod
    def decode(cls, data: bytes) -> AttachmentDescriptor:
        r = enc.Reader(data, b"RTAD")
        d = cls(r.fixed(16), r.fixed(32), r.fixed(32), r.u64(), r.text(), r.text())
        r.done()
        return d


@dataclass(frozen=True, slots=True)
class Body:
    """Plaintext of a ``rtp1/body`` message: subject, text, attachments."""

    subject: str
    text: str
    attachments: tuple[AttachmentDescriptor, ...] = ()

    def encode(self) -> bytes:
        return enc.record(
            b"RTB1",
            enc.field(enc.text(self.subject)),
            enc.long_field(enc.text(self.text)),
            enc.field(enc.list_(a.encode() for a in self.attachments)),
        )

    @classmethod
    def decode(cls, data: bytes) -> Body:
        r = enc.Reader(data, b"RTB1")
        subject, text = r.text(), r.text_long()
        atts = tuple(AttachmentDescriptor.decode(a) for a in r.list_())
        r.done()
        return cls(subject, text, atts)
