"""Golden vectors shared with the JavaScript library (docs/security.md §13).

``generate`` builds a small firm (root key, staff, clients, bots, escrow key,
a matter with three epochs) from a seed-driven RNG and writes every object
the formats define, with every random input recorded, plus rejection cases.
``verify`` (in ``vectors_verify``) re-derives and checks a directory written
by either language. CLI::

    python -m tests.support.crypto.vectors generate OUTDIR [--seed HEX] [--no-blob-files]
    python -m tests.support.crypto.vectors verify DIR [--strict-codes]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rtportal.crypto import attachment as att
from rtportal.crypto import backup as bk
from rtportal.crypto import encoding as enc
from rtportal.crypto import kdf
from rtportal.crypto import recovery as rec
from rtportal.crypto.certs import FRK_ISSUER, CertBody, Certificate, Flag, RevocationBody, Role
from rtportal.crypto.certs import issue as issue_cert
from rtportal.crypto.certs import revoke as revoke_cert
from rtportal.crypto.envelope import (
    CTYPE_BODY,
    CTYPE_TEXT,
    AttachmentDescriptor,
    Body,
    Envelope,
    Header,
    Visibility,
    seal_envelope,
)
from rtportal.crypto.keys import FirmEscrowKey, FirmRootKey, IdentityKey
from rtportal.crypto.manifest import GENESIS_HASH, Manifest, ManifestBody, Member, sign_manifest
from rtportal.crypto.rng import DeterministicRng
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, Wrap, WrapInfo, WrapKind, wrap_key

__all__ = ["DEFAULT_SEED", "FILES", "NOW_MS", "generate", "main", "pattern"]

DEFAULT_SEED = bytes(range(32))
FIRM = "firm-1"
MATTER = "M-0001"
OTHER_MATTER = "M-0002"
THREAD = "thread-1"
NOW_MS = 1_790_000_000_000
DAY_MS = 86_400_000
FILES = (
    "keys.json",
    "certs.json",
    "manifests.json",
    "wraps.json",
    "envelopes.json",
    "attachments.json",
    "backups.json",
    "recovery.json",
)
ATTACHMENT_SIZES = (0, 1, 65535, 65536, 65537, 5 * 1024 * 1024)
INLINE_BLOB_MAX = 65537 + 1024
LOW_ORDER_POINT = bytes(32)  # u = 0, the simplest of the low-order points
SMALL_ORDER_ED25519 = bytes([1]) + bytes(31)  # y = 1: the identity point
USERS: tuple[tuple[str, Role, Flag, tuple[str, ...], str], ...] = (
    # (user, role, flags, scopes, issuer)
    ("staff-1", Role.STAFF, Flag.CERTIFY_CLIENTS, (), "frk"),
    ("staff-2", Role.STAFF, Flag(0), (), "frk"),
    ("bot-1", Role.BOT, Flag(0), (MATTER,), "frk"),
    ("custodian", Role.BOT, Flag.CUSTODIAN, (), "frk"),
    ("client-1", Role.CLIENT, Flag(0), (), "staff-1"),
    ("client-2", Role.CLIENT, Flag(0), (), "staff-1"),
)


def h(b: bytes) -> str:
    return b.hex()


def pattern(size: int) -> bytes:
    """The attachment plaintext of the vectors: byte i is ``i mod 251``."""
    block = bytes(range(251))
    return (block * (size // 251 + 1))[:size]


class _World:
    """The firm of the vectors and the JSON case lists being filled."""

    def __init__(self, seed: bytes) -> None:
        self.rng = DeterministicRng(seed)
        self.frk = FirmRootKey.generate(self.rng)
        self.ids = {u: IdentityKey.generate(self.rng) for u, *_ in USERS}
        self.fek = FirmEscrowKey.generate(FIRM, 1, self.rng)
        self.certs: dict[str, Certificate] = {}
        self.meks = {e: self.rng(32) for e in (1, 2, 3)}

    def signer(self, name: str) -> FirmRootKey | IdentityKey:
        return self.frk if name == "frk" else self.ids[name]

    def kid(self, user: str) -> bytes:
        return self.ids[user].kid


def _case_keys(w: _World) -> list[dict[str, Any]]:
    frk = w.frk.public
    cases: list[dict[str, Any]] = [
        {
            "name": "frk",
            "type": "frk",
            "firm": FIRM,
            "ed_sk": h(w.frk.ed_sk),
            "ed_pk": h(frk.ed_pk),
            "record": h(frk.record()),
            "fingerprint": h(frk.fingerprint),
            "kid": h(frk.kid),
            "fingerprint_text": frk.fingerprint_text,
            "link": frk.link,
        }
    ]
    for user, role, *_ in USERS:
        k = w.ids[user]
        cases.append(
            {
                "name": user,
                "type": "uik",
                "firm": FIRM,
                "user": user,
                "role": int(role),
                "x_sk": h(k.x_sk),
                "x_pk": h(k.public.x_pk),
                "ed_sk": h(k.ed_sk),
                "ed_pk": h(k.public.ed_pk),
                "record": h(k.public.record()),
                "fingerprint": h(k.public.fingerprint),
                "kid": h(k.kid),
                "key_file": h(k.key_file(FIRM, user)),
            }
        )
    fek = w.fek
    cases.append(
        {
            "name": "fek-1",
            "type": "fek",
            "firm": FIRM,
            "version": fek.version,
            "x_sk": h(fek.x_sk),
            "x_pk": h(fek.public.x_pk),
            "fir": h(fek.fir),
            "record": h(fek.public.record()),
            "kid": h(fek.kid),
        }
    )
    att_id = w.rng(16)
    code = w.rng(16)
    argon_out = w.rng(64)
    kdfs: list[tuple[str, bytes, bytes, str, list[bytes]]] = [
        ("msg", w.meks[1], b"", "rtp1/msg", [enc.id_(FIRM), enc.id_(MATTER), enc.u32(1)]),
        ("internal", fek.fir, b"", "rtp1/internal", [enc.id_(FIRM), enc.id_(MATTER), enc.u32(1)]),
        ("att", w.rng(32), att_id, "rtp1/att", []),
        ("login", argon_out, b"", "rtp1/login", []),
        ("kek", argon_out, b"", "rtp1/kek", []),
        ("rec", code, b"", "rtp1/rec", [enc.id_(FIRM), enc.id_("client-1")]),
    ]
    for name, ikm, salt, label, ctx in kdfs:
        info = kdf.derivation_info(label, *ctx)
        cases.append(
            {
                "name": f"kdf-{name}",
                "type": "kdf",
                "ikm": h(ikm),
                "salt": h(salt),
                "label": label,
                "ctx": [h(c) for c in ctx],
                "info": h(info),
                "length": 32,
                "okm": h(kdf.hkdf(ikm, salt, info, 32)),
            }
        )
    cases.append(
        {
            "name": "commit-1",
            "type": "commit",
            "mek": h(w.meks[1]),
            "firm": FIRM,
            "matter": MATTER,
            "epoch": 1,
            "input": h(
                kdf.derivation_info("rtp1/commit", enc.id_(FIRM), enc.id_(MATTER), enc.u32(1))
            ),
            "commit": h(kdf.commitment(w.meks[1], FIRM, MATTER, 1)),
        }
    )
    return cases


def _cert_case(name: str, subject: str, issuer: str, cert: Certificate) -> dict[str, Any]:
    b = cert.body
    return {
        "name": name,
        "subject": subject,
        "issuer": issuer,
        "firm": b.firm,
        "role": int(b.role),
        "user": b.user,
        "x_pk": h(b.x_pk),
        "ed_pk": h(b.ed_pk),
        "serial": b.serial,
        "issued_at_ms": b.issued_at_ms,
        "expires_at_ms": b.expires_at_ms,
        "flags": int(b.flags),
        "scopes": list(b.scopes),
        "issuer_id": b.issuer,
        "issuer_kid": h(b.issuer_kid),
        "tbs": h(b.encode()),
        "sig": h(cert.sig),
        "cert": h(cert.encode()),
        "now_ms": NOW_MS,
        "expect": "ok",
    }


def _cert_body(
    w: _World, user: str, role: Role, flags: Flag, scopes: tuple[str, ...], issuer: str, serial: int
) -> CertBody:
    k = w.ids[user]
    return CertBody(
        FIRM,
        role,
        user,
        k.public.x_pk,
        k.public.ed_pk,
        serial,
        NOW_MS - DAY_MS,
        NOW_MS + 365 * DAY_MS,
        flags,
        scopes,
        FRK_ISSUER if issuer == "frk" else issuer,
        w.signer(issuer).kid,
    )


def _case_certs(w: _World) -> list[dict[str, Any]]:
    cases = []
    for serial, (user, role, flags, scopes, issuer) in enumerate(USERS, start=1):
        cert = issue_cert(
            _cert_body(w, user, role, flags, scopes, issuer, serial), w.signer(issuer)
        )
        w.certs[user] = cert
        cases.append(_cert_case(f"cert-{user}", user, issuer, cert))

    def reject(name: str, subject: str, issuer: str, cert: Certificate, error: str) -> None:
        c = _cert_case(name, subject, issuer, cert)
        c.update(expect="reject", error=error)
        cases.append(c)

    # a staff member without CERTIFY_CLIENTS signs a client certificate
    body = _cert_body(w, "client-2", Role.CLIENT, Flag(0), (), "staff-2", 100)
    reject(
        "reject-client-cert-by-plain-staff",
        "client-2",
        "staff-2",
        issue_cert(body, w.ids["staff-2"]),
        "crypto_uncertified",
    )
    # a field changed after signing (user renamed)
    good = w.certs["client-1"]
    reject(
        "reject-cert-field-changed",
        "client-1",
        "staff-1",
        Certificate(replace(good.body, user="client-9"), good.sig),
        "crypto_signature",
    )
    # expired
    body = replace(
        _cert_body(w, "client-2", Role.CLIENT, Flag(0), (), "staff-1", 101),
        issued_at_ms=NOW_MS - 10 * DAY_MS,
        expires_at_ms=NOW_MS - DAY_MS,
    )
    reject(
        "reject-cert-expired",
        "client-2",
        "staff-1",
        issue_cert(body, w.ids["staff-1"]),
        "crypto_uncertified",
    )
    # a low-order X25519 key (signed anyway, bypassing issue()'s own check)
    body = replace(
        _cert_body(w, "client-2", Role.CLIENT, Flag(0), (), "staff-1", 102), x_pk=LOW_ORDER_POINT
    )
    reject(
        "reject-cert-low-order-key",
        "client-2",
        "staff-1",
        Certificate(body, w.ids["staff-1"].sign(body.encode())),
        "crypto_low_order",
    )
    # a small-order Ed25519 key (the identity point verifies any message with R = identity,
    # S = 0), signed anyway: refused at certification in both languages
    body = replace(
        _cert_body(w, "client-2", Role.CLIENT, Flag(0), (), "staff-1", 104),
        ed_pk=SMALL_ORDER_ED25519,
    )
    reject(
        "reject-cert-small-order-ed25519-key",
        "client-2",
        "staff-1",
        Certificate(body, w.ids["staff-1"].sign(body.encode())),
        "crypto_low_order",
    )
    # a staff certificate not signed by the firm root key
    body = replace(_cert_body(w, "staff-2", Role.STAFF, Flag(0), (), "staff-1", 103))
    reject(
        "reject-staff-cert-by-staff",
        "staff-2",
        "staff-1",
        issue_cert(body, w.ids["staff-1"]),
        "crypto_uncertified",
    )
    # revocation of staff-2 (applied after all certificate cases)
    rb = RevocationBody(FIRM, "staff-2", w.kid("staff-2"), 2, NOW_MS - 1000, FRK_ISSUER, w.frk.kid)
    r = revoke_cert(rb, w.frk)
    cases.append(
        {
            "name": "revoke-staff-2",
            "type": "revocation",
            "issuer": "frk",
            "firm": FIRM,
            "user": rb.user,
            "kid": h(rb.kid),
            "serial": rb.serial,
            "revoked_at_ms": rb.revoked_at_ms,
            "issuer_id": rb.issuer,
            "issuer_kid": h(rb.issuer_kid),
            "rtbs": h(rb.encode()),
            "sig": h(r.sig),
            "revocation": h(r.encode()),
            "now_ms": NOW_MS,
            "expect": "ok",
        }
    )
    return cases


def _members(w: _World, users: tuple[str, ...]) -> tuple[Member, ...]:
    roles = {u: r for u, r, *_ in USERS}
    return tuple(Member(u, w.kid(u), roles[u]) for u in users)


def _manifest_case(
    name: str,
    m: Manifest,
    mek: bytes,
    expect: str = "ok",
    error: str | None = None,
    verifier_matter: str = MATTER,
) -> dict[str, Any]:
    b = m.body
    case: dict[str, Any] = {
        "name": name,
        "firm": b.firm,
        "matter": b.matter,
        "verifier_matter": verifier_matter,
        "epoch": b.epoch,
        "prev_hash": h(b.prev_hash),
        "fek_version": b.fek_version,
        "members": [{"user": x.user, "kid": h(x.kid), "role": int(x.role)} for x in b.members],
        "share_history": b.share_history,
        "creator": b.creator,
        "creator_kid": h(b.creator_kid),
        "ts_ms": b.ts_ms,
        "mek": h(mek),
        "commit": h(b.commit),
        "tbs": h(b.encode()),
        "sig": h(m.sig),
        "manifest": h(m.encode()),
        "hash": h(b.hash),
        "now_ms": NOW_MS,
        "expect": expect,
    }
    if error:
        case["error"] = error
    return case


def _case_manifests(w: _World) -> tuple[list[dict[str, Any]], dict[int, Manifest]]:
    staff = w.ids["staff-1"]
    epochs = {
        1: ("client-1", "bot-1"),
        2: ("client-1", "client-2", "bot-1"),
        3: ("client-1", "bot-1"),
    }
    chain: dict[int, Manifest] = {}
    prev = GENESIS_HASH

    def body(
        epoch: int, users: tuple[str, ...], prev_hash: bytes, mek: bytes, matter: str = MATTER
    ) -> ManifestBody:
        return ManifestBody(
            FIRM,
            matter,
            epoch,
            prev_hash,
            1,
            _members(w, users),
            epoch == 2,
            "staff-1",
            staff.kid,
            NOW_MS - (10 - epoch) * 60_000,
            kdf.commitment(mek, FIRM, matter, epoch),
        )

    for e, users in epochs.items():
        chain[e] = sign_manifest(body(e, users, prev, w.meks[e]), staff)
        prev = chain[e].body.hash
    cases = [_manifest_case("epoch-1", chain[1], w.meks[1])]
    # a member nobody certified is slipped into epoch 2
    mallory = IdentityKey.generate(w.rng)
    bad = replace(
        body(2, epochs[2], chain[1].body.hash, w.meks[2]),
        members=(*_members(w, epochs[2]), Member("mallory", mallory.kid, Role.CLIENT)),
    )
    cases.append(
        _manifest_case(
            "reject-uncertified-member",
            sign_manifest(bad, staff),
            w.meks[2],
            "reject",
            "crypto_uncertified",
        )
    )
    cases.append(_manifest_case("epoch-2", chain[2], w.meks[2]))
    # a different epoch-1 manifest served after epoch 2: rollback
    other_mek = w.rng(32)
    old = sign_manifest(body(1, ("client-1", "client-2"), GENESIS_HASH, other_mek), staff)
    cases.append(_manifest_case("reject-rollback", old, other_mek, "reject", "crypto_rollback"))
    cases.append(_manifest_case("epoch-3", chain[3], w.meks[3]))
    cases.append(_manifest_case("epoch-3-again", chain[3], w.meks[3]))
    m4 = w.rng(32)
    skip = sign_manifest(body(5, ("client-1",), chain[3].body.hash, m4), staff)
    cases.append(_manifest_case("reject-epoch-gap", skip, m4, "reject", "crypto_epoch_gap"))
    broken = sign_manifest(body(4, ("client-1",), chain[1].body.hash, m4), staff)
    cases.append(_manifest_case("reject-broken-chain", broken, m4, "reject", "crypto_chain"))
    by_client = replace(
        body(4, ("client-1",), chain[3].body.hash, m4),
        creator="client-1",
        creator_kid=w.kid("client-1"),
    )
    cases.append(
        _manifest_case(
            "reject-signed-by-client",
            sign_manifest(by_client, w.ids["client-1"]),
            m4,
            "reject",
            "crypto_uncertified",
        )
    )
    good4 = sign_manifest(body(4, ("client-1",), chain[3].body.hash, m4), staff)
    tampered = Manifest(
        replace(good4.body, members=_members(w, ("client-1", "client-2"))), good4.sig
    )
    cases.append(
        _manifest_case(
            "reject-member-added-after-signing", tampered, m4, "reject", "crypto_signature"
        )
    )
    other = sign_manifest(body(4, ("client-1",), chain[3].body.hash, m4, OTHER_MATTER), staff)
    cases.append(_manifest_case("reject-other-matter", other, m4, "reject", "crypto_wrong_context"))
    return cases, chain


def _wrap_case(
    name: str,
    w: Wrap,
    wrapper: str,
    recipient: str,
    key: bytes,
    eph_sk: bytes,
    commit: bytes | None,
    expect: str = "ok",
    error: str | None = None,
    expect_context: WrapInfo | None = None,
) -> dict[str, Any]:
    i = w.info
    case: dict[str, Any] = {
        "name": name,
        "wrapper": wrapper,
        "recipient": recipient,
        "firm": i.firm,
        "matter": i.matter,
        "epoch": i.epoch,
        "kind": int(i.kind),
        "recipient_id": i.recipient,
        "recipient_kid": h(i.recipient_kid),
        "info": h(i.encode()),
        "eph_sk": h(eph_sk),
        "enc": h(w.enc),
        "ct": h(w.ct),
        "sig_input": h(w.sig_input()),
        "sig": h(w.sig),
        "wrap": h(w.encode()),
        "key": h(key),
        "commit": h(commit) if commit is not None else None,
        "now_ms": NOW_MS,
        "expect": expect,
    }
    if error:
        case["error"] = error
    if expect_context is not None:
        case["expect_context"] = {
            "firm": expect_context.firm,
            "matter": expect_context.matter,
            "epoch": expect_context.epoch,
            "kind": int(expect_context.kind),
            "recipient_id": expect_context.recipient,
            "recipient_kid": h(expect_context.recipient_kid),
        }
    return case


def _case_wraps(w: _World, chain: dict[int, Manifest]) -> list[dict[str, Any]]:
    cases = []
    staff = w.ids["staff-1"]

    def mk(
        wrapper: str,
        recipient: str,
        epoch: int,
        kind: WrapKind = WrapKind.MEK,
        key: bytes | None = None,
    ) -> tuple[Wrap, bytes, bytes, WrapInfo]:
        if recipient == "fek-1":
            info = WrapInfo(FIRM, MATTER, epoch, kind, FEK_RECIPIENT, w.fek.kid)
            pk = w.fek.public.x_pk
        else:
            matter = FIRM_MATTER if kind is WrapKind.FIRM else MATTER
            info = WrapInfo(FIRM, matter, epoch, kind, recipient, w.kid(recipient))
            pk = w.ids[recipient].public.x_pk
        if key is None:
            key = w.fek.wrapped_plaintext() if kind is WrapKind.FIRM else w.meks[epoch]
        eph = w.rng(32)
        signer = w.ids[wrapper]
        return wrap_key(key, info, pk, wrapper, signer, eph_sk=eph), key, eph, info

    members = {
        1: ("client-1", "bot-1"),
        2: ("client-1", "client-2", "bot-1"),
        3: ("client-1", "bot-1"),
    }
    for e in (1, 2, 3):
        for r in ("fek-1", *members[e]):
            wr, key, eph, _ = mk("staff-1", r, e)
            cases.append(
                _wrap_case(f"mek-e{e}-{r}", wr, "staff-1", r, key, eph, chain[e].body.commit)
            )
    wr, key, eph, _ = mk("staff-1", "custodian", 1, WrapKind.FIRM)
    cases.append(_wrap_case("firm-keys-v1-custodian", wr, "staff-1", "custodian", key, eph, None))

    commit1 = chain[1].body.commit
    wr, key, eph, info = mk("staff-1", "client-1", 1)
    # one good wrap for client-1, opened by a reader expecting another context
    for name, expected in (
        (
            "reject-other-recipient",
            replace(info, recipient="client-2", recipient_kid=w.kid("client-2")),
        ),
        ("reject-other-epoch", replace(info, epoch=2)),
        ("reject-other-matter", replace(info, matter=OTHER_MATTER)),
    ):
        case = _wrap_case(name, wr, "staff-1", "client-1", key, eph, commit1, "reject",
                          "crypto_wrong_context", expected)  # fmt: skip
        cases.append(case)
    # wraps made by someone who may not wrap, or of a key that is not the epoch's
    for name, wrapper, error in (
        ("reject-wrapper-not-staff", "client-2", "crypto_uncertified"),
        ("reject-wrapper-plain-bot", "bot-1", "crypto_uncertified"),
        ("reject-commitment-mismatch", "staff-1", "crypto_commitment"),
    ):
        other_key = w.rng(32) if error == "crypto_commitment" else None  # drawn before eph
        wr, key, eph, _ = mk(wrapper, "client-1", 1, key=other_key)
        cases.append(_wrap_case(name, wr, wrapper, "client-1", key, eph, commit1, "reject", error))
    wr, key, eph, _ = mk("staff-1", "client-1", 1)
    flipped = replace(wr, ct=bytes([wr.ct[0] ^ 1]) + wr.ct[1:])
    cases.append(
        _wrap_case(
            "reject-ct-flipped",
            flipped,
            "staff-1",
            "client-1",
            key,
            eph,
            commit1,
            "reject",
            "crypto_signature",
        )
    )
    info = WrapInfo(FIRM, MATTER, 1, WrapKind.MEK, "client-1", w.kid("client-1"))
    low = Wrap(info, "staff-1", staff.kid, LOW_ORDER_POINT, w.rng(48), b"")
    low = replace(low, sig=staff.sign(low.sig_input()))
    cases.append(
        _wrap_case(
            "reject-low-order-enc",
            low,
            "staff-1",
            "client-1",
            bytes(32),
            bytes(32),
            commit1,
            "reject",
            "crypto_low_order",
        )
    )
    return cases


def _env_case(
    name: str,
    env: Envelope,
    key_name: str,
    key: bytes,
    msg_key: bytes,
    plaintext: bytes,
    body: Body | None,
    expect: str = "ok",
    error: str | None = None,
    expect_context: dict[str, str] | None = None,
) -> dict[str, Any]:
    hd = env.header
    case: dict[str, Any] = {
        "name": name,
        "firm": hd.firm,
        "matter": hd.matter,
        "thread": hd.thread,
        "msg_id": h(hd.msg_id),
        "parent": h(hd.parent or b""),
        "sender": hd.sender,
        "sender_kid": h(hd.sender_kid),
        "epoch": hd.epoch,
        "vis": int(hd.vis),
        "ts_ms": hd.ts_ms,
        "ctype": hd.ctype,
        "key_name": key_name,
        "key": h(key),
        "msg_key": h(msg_key),
        "nonce": h(env.nonce),
        "plaintext": h(plaintext),
        "aad": h(hd.aad()),
        "sig_input": h(env.sig_input()),
        "ct": h(env.ct),
        "sig": h(env.sig),
        "envelope": h(env.encode()),
        "now_ms": NOW_MS,
        "expect": expect,
    }
    if body is not None:
        case["body"] = {
            "subject": body.subject,
            "text": body.text,
            "attachments": [
                {
                    "att_id": h(a.att_id),
                    "fk": h(a.fk),
                    "ct_sha256": h(a.ct_sha256),
                    "size": a.size,
                    "name": a.name,
                    "mime": a.mime,
                }
                for a in body.attachments
            ],
        }
    if error:
        case["error"] = error
    if expect_context is not None:
        case["expect_context"] = expect_context
    return case


def _case_envelopes(w: _World) -> list[dict[str, Any]]:
    ok: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    fir_key = kdf.internal_key(w.fek.fir, FIRM, MATTER, 1)

    def seal(
        sender: str,
        epoch: int,
        pt: bytes,
        *,
        vis: Visibility = Visibility.PORTAL,
        ctype: str = CTYPE_BODY,
        parent: bytes | None = None,
        ts: int = NOW_MS - 5000,
        thread: str = THREAD,
    ) -> tuple[Envelope, str, bytes, bytes]:
        hd = Header(
            FIRM, MATTER, thread, w.rng(16), parent, sender, w.kid(sender), epoch, vis, ts, ctype
        )
        if vis is Visibility.STAFF:
            key_name, key, mkey = "fir", w.fek.fir, fir_key
        else:
            key_name, key = "mek", w.meks[epoch]
            mkey = kdf.message_key(key, FIRM, MATTER, epoch)
        return seal_envelope(hd, mkey, pt, w.ids[sender], rng=w.rng), key_name, key, mkey

    att_x = att.encrypt_bytes(b"x", w.rng)  # (att_id, fk, blob)
    blob = att_x[2]
    body1 = Body(
        "Visa application",
        "Hello, here is my passport scan. Grüße ✓",
        (
            AttachmentDescriptor(
                att_x[0],
                att_x[1],
                hashlib.sha256(blob).digest(),
                1,
                "passport.pdf",
                "application/pdf",
            ),
        ),
    )
    env1, kn, k, mk = seal("client-1", 3, body1.encode())
    ok.append(_env_case("client-message", env1, kn, k, mk, body1.encode(), body1))
    body2 = Body("", "Thanks, received.")
    env2, kn, k, mk = seal("staff-1", 3, body2.encode(), parent=env1.header.msg_id)
    ok.append(_env_case("staff-reply", env2, kn, k, mk, body2.encode(), body2))
    note = b"internal: check the passport expiry"
    env3, kn, k, mk = seal("staff-1", 3, note, vis=Visibility.STAFF, ctype=CTYPE_TEXT)
    ok.append(_env_case("staff-internal-note", env3, kn, k, mk, note, None))
    body4 = Body("", "Status: documents received (system update)")
    env4, kn, k, mk = seal("bot-1", 3, body4.encode())
    ok.append(_env_case("bot-update", env4, kn, k, mk, body4.encode(), body4))
    body5 = Body("Earlier", "message from epoch 2")
    env5, kn, k, mk = seal("client-2", 2, body5.encode())
    ok.append(_env_case("client-2-epoch-2", env5, kn, k, mk, body5.encode(), body5))

    # rejections (fed after the ok cases, to the same replay state)
    bad.append(
        _env_case(
            "reject-replay",
            env1,
            "mek",
            w.meks[3],
            kdf.message_key(w.meks[3], FIRM, MATTER, 3),
            body1.encode(),
            None,
            "reject",
            "crypto_replay",
        )
    )
    e, kn, k, mk = seal("client-1", 3, b"moved")
    bad.append(
        _env_case(
            "reject-moved-thread",
            e,
            kn,
            k,
            mk,
            b"moved",
            None,
            "reject",
            "crypto_wrong_context",
            {"firm": FIRM, "matter": MATTER, "thread": "thread-2"},
        )
    )
    e, kn, k, mk = seal("client-1", 3, b"moved")
    bad.append(
        _env_case(
            "reject-moved-matter",
            e,
            kn,
            k,
            mk,
            b"moved",
            None,
            "reject",
            "crypto_wrong_context",
            {"firm": FIRM, "matter": OTHER_MATTER, "thread": THREAD},
        )
    )
    # each header field changed after signing (the server rewrites it)
    base, kn, k, mk = seal("client-1", 3, b"field")
    rewrites: list[tuple[str, Header]] = [
        ("thread", replace(base.header, thread="thread-2")),
        ("msg_id", replace(base.header, msg_id=w.rng(16))),
        ("parent", replace(base.header, parent=env2.header.msg_id)),
        ("epoch", replace(base.header, epoch=2)),
        ("ts_ms", replace(base.header, ts_ms=base.header.ts_ms + 1)),
        ("ctype", replace(base.header, ctype=CTYPE_TEXT)),
        ("sender", replace(base.header, sender="staff-1", sender_kid=w.kid("staff-1"))),
    ]
    for field_name, hd in rewrites:
        # the server rewrote the field (for thread: and shows it in thread-2): signature fails
        ctx = {"firm": FIRM, "matter": MATTER, "thread": hd.thread}
        bad.append(
            _env_case(
                f"reject-aad-{field_name}",
                replace(base, header=hd),
                kn,
                k,
                mk,
                b"field",
                None,
                "reject",
                "crypto_signature",
                ctx,
            )
        )
    e, kn, k, mk = seal("client-2", 3, b"removed")
    bad.append(
        _env_case(
            "reject-sender-not-member",
            e,
            kn,
            k,
            mk,
            b"removed",
            None,
            "reject",
            "crypto_uncertified",
        )
    )
    e, kn, k, mk = seal("staff-2", 3, b"revoked")
    bad.append(
        _env_case(
            "reject-sender-revoked", e, kn, k, mk, b"revoked", None, "reject", "crypto_revoked"
        )
    )
    # a client writing staff-only content (it cannot have FIR; a forged key shows the rule)
    hd = Header(
        FIRM,
        MATTER,
        THREAD,
        w.rng(16),
        None,
        "client-1",
        w.kid("client-1"),
        3,
        Visibility.STAFF,
        NOW_MS - 4000,
        CTYPE_TEXT,
    )
    e = seal_envelope(hd, fir_key, b"sneaky", w.ids["client-1"], rng=w.rng)
    bad.append(
        _env_case(
            "reject-client-staff-only",
            e,
            "fir",
            w.fek.fir,
            fir_key,
            b"sneaky",
            None,
            "reject",
            "crypto_uncertified",
        )
    )
    # ciphertext flipped and re-signed by the legitimate sender: signature fine, GCM fails
    e, kn, k, mk = seal("client-1", 3, b"flip")
    flipped = replace(e, ct=bytes([e.ct[0] ^ 0x80]) + e.ct[1:])
    flipped = replace(flipped, sig=w.ids["client-1"].sign(flipped.sig_input()))
    bad.append(
        _env_case(
            "reject-ct-flipped-resigned",
            flipped,
            kn,
            k,
            mk,
            b"flip",
            None,
            "reject",
            "crypto_decrypt",
        )
    )
    return ok + bad


def _case_attachments(w: _World, out: Path | None, blob_files: bool) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for size in ATTACHMENT_SIZES:
        att_id, fk, blob = att.encrypt_bytes(pattern(size), w.rng)
        case: dict[str, Any] = {
            "name": f"att-{size}",
            "att_id": h(att_id),
            "fk": h(fk),
            "size": size,
            "plaintext": "pattern",
            "chunk_key": h(kdf.attachment_chunk_key(fk, att_id)),
            "header": h(att.header(att_id)),
            "blob_sha256": h(hashlib.sha256(blob).digest()),
            "expect": "ok",
        }
        if len(blob) <= INLINE_BLOB_MAX:
            case["blob"] = h(blob)
        elif blob_files and out is not None:
            name = f"att-{size}.bin"
            (out / name).write_bytes(blob)
            case["blob_file"] = name
        cases.append(case)
    # rejections: order and truncation need two chunks (65536 + 5 bytes), the rest one byte
    two = _attachment_rejects(w, att.CHUNK + 5, two_chunk=True)
    one = _attachment_rejects(w, 1, two_chunk=False)
    cases.extend(two + one)
    return cases


def _attachment_rejects(w: _World, size: int, *, two_chunk: bool) -> list[dict[str, Any]]:
    att_id, fk, blob = att.encrypt_bytes(pattern(size), w.rng)
    hl, cc = att.HEADER_LEN, att.CT_CHUNK
    if two_chunk:
        first, last = blob[hl : hl + cc], blob[hl + cc :]
        variants = {
            "truncated-last-chunk": blob[: hl + cc],
            "reordered": blob[:hl] + last + first,
            "last-chunk-duplicated": blob + last,
        }
    else:
        variants = {
            "truncated-bytes": blob[:-1],
            "extended": blob + blob[hl:],
            "trailing-byte": blob + b"\x00",
            "re-headed": att.header(w.rng(16)) + blob[hl:],
            "header-only": blob[:hl],
            "bit-flip": blob[: hl + 3] + bytes([blob[hl + 3] ^ 1]) + blob[hl + 4 :],
        }
    return [
        {
            "name": f"reject-{name}-{size}",
            "att_id": h(att_id),
            "fk": h(fk),
            "size": size,
            "plaintext": "pattern",
            "chunk_key": h(kdf.attachment_chunk_key(fk, att_id)),
            "header": h(att.header(att_id)),
            "blob_sha256": h(hashlib.sha256(blob).digest()),
            "blob": h(bad),
            "expect": "reject",
            "error": "crypto_attachment",
        }
        for name, bad in variants.items()
    ]


def _backup_case(
    name: str,
    w: _World,
    password: str,
    make_password: str,
    params: bk.Argon2Params,
    expect: str = "ok",
    error: str | None = None,
    header_params: bk.Argon2Params | None = None,
) -> dict[str, Any]:
    user = "client-1"
    salt = w.rng(16)
    out = bk.argon2id(make_password.encode(), salt, params)
    keys = bk.PasswordKeys(kdf.login_secret(out), kdf.kek(out))
    contents = bk.BackupContents(w.ids[user], w.frk.public.fingerprint)
    b = bk.create_backup(FIRM, user, keys.kek, contents, params=params, salt=salt, rng=w.rng)
    if header_params is not None:  # parameters changed by the server after the fact
        b = replace(b, params=header_params)
    case: dict[str, Any] = {
        "name": name,
        "firm": FIRM,
        "user": user,
        "password": password,
        "salt": h(salt),
        "m_kib": b.params.m_kib,
        "t": b.params.t,
        "p": b.params.p,
        "argon2_out": h(out),
        "login_secret": h(keys.login_secret),
        "kek": h(keys.kek),
        "x_sk": h(contents.identity.x_sk),
        "ed_sk": h(contents.identity.ed_sk),
        "frk_fingerprint": h(contents.frk_fingerprint),
        "header": h(b.header()),
        "plaintext": h(contents.encode()),
        "nonce": h(b.nonce),
        "blob": h(b.encode()),
        "expect": expect,
    }
    if error:
        case["error"] = error
    return case


FLOOR = bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T, 1)


def _case_backups(w: _World) -> list[dict[str, Any]]:
    pw = "correct horse — battery staple ✓"
    params = bk.DEFAULT_PARAMS
    return [
        _backup_case("backup-default-params", w, pw, pw, params),
        _backup_case(
            "reject-wrong-password", w, "wrong password", pw, params, "reject", "crypto_decrypt"
        ),
        _backup_case(
            "reject-params-out-of-bounds",
            w,
            pw,
            pw,
            FLOOR,
            "reject",
            "crypto_encoding",
            header_params=bk.Argon2Params(4_194_304, 3, 1),
        ),
        _backup_case(
            "reject-params-lowered",
            w,
            pw,
            pw,
            bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T + 1, 1),
            "reject",
            "crypto_decrypt",
            header_params=FLOOR,
        ),
        _backup_case(  # below the library's floor: refused before any Argon2 work
            "reject-params-below-floor",
            w,
            pw,
            pw,
            FLOOR,
            "reject",
            "crypto_encoding",
            header_params=bk.Argon2Params(bk.MIN_M_KIB, 1, 1),
        ),
    ]


def _case_recovery(w: _World) -> list[dict[str, Any]]:
    cases = []

    def case(
        name: str,
        code: bytes,
        proof: rec.RecoveryProof,
        user: str,
        expect: str = "ok",
        error: str | None = None,
    ) -> None:
        c: dict[str, Any] = {
            "name": name,
            "firm": FIRM,
            "user": user,
            "code": h(code),
            "code_text": rec.code_text(code),
            "link": rec.code_link(code),
            "rk": h(kdf.recovery_key(code, FIRM, user)),
            "x_pk": h(proof.public.x_pk),
            "ed_pk": h(proof.public.ed_pk),
            "input": h(proof.input()),
            "proof": h(proof.proof),
            "transport": h(proof.encode()),
            "expect": expect,
        }
        if error:
            c["error"] = error
        cases.append(c)

    code = rec.new_code(w.rng)
    new_key = IdentityKey.generate(w.rng)
    good = rec.prove(code, FIRM, "client-1", new_key.public)
    case("recovery-client-1", code, good, "client-1")
    case("reject-wrong-code", rec.new_code(w.rng), good, "client-1", "reject", "crypto_recovery")
    other = IdentityKey.generate(w.rng).public
    case(
        "reject-key-substituted",
        code,
        replace(good, public=other),
        "client-1",
        "reject",
        "crypto_recovery",
    )
    case("reject-other-user", code, good, "client-2", "reject", "crypto_recovery")
    return cases


def generate(out: Path, seed: bytes = DEFAULT_SEED, *, blob_files: bool = True) -> list[Path]:
    """Write the vector files of §13 into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    w = _World(seed)
    files: dict[str, list[dict[str, Any]]] = {}
    files["keys.json"] = _case_keys(w)
    files["certs.json"] = _case_certs(w)
    files["manifests.json"], chain = _case_manifests(w)
    files["wraps.json"] = _case_wraps(w, chain)
    files["envelopes.json"] = _case_envelopes(w)
    files["attachments.json"] = _case_attachments(w, out, blob_files)
    files["backups.json"] = _case_backups(w)
    files["recovery.json"] = _case_recovery(w)
    paths = []
    for name in FILES:
        doc = {
            "rtp1_vectors": 1,
            "generator": "python",
            "file": name,
            "seed": h(seed),
            "cases": files[name],
        }
        path = out / name
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.crypto.vectors")
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write golden vectors into OUTDIR")
    g.add_argument("outdir", type=Path)
    g.add_argument("--seed", default=DEFAULT_SEED.hex(), help="hex seed of the deterministic RNG")
    g.add_argument(
        "--no-blob-files",
        action="store_true",
        help="do not write large attachment blobs (verifiers re-encrypt instead)",
    )
    v = sub.add_parser("verify", help="verify a vector directory (from either language)")
    v.add_argument("dir", type=Path)
    v.add_argument(
        "--strict-codes",
        action="store_true",
        help="a rejection with another error code than the vector names is a failure",
    )
    args = parser.parse_args(argv)
    if args.cmd == "generate":
        paths = generate(args.outdir, bytes.fromhex(args.seed), blob_files=not args.no_blob_files)
        print(f"wrote {len(paths)} files to {args.outdir}")
        return 0
    from tests.support.crypto.vectors_verify import verify_dir

    report = verify_dir(args.dir, strict_codes=args.strict_codes)
    for line in report.lines:
        print(line)
    print(f"{report.passed} passed, {len(report.failures)} failed, {report.warnings} warnings")
    return 1 if report.failures or report.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
