"""Golden vectors of the key lifecycle (docs/keys.md), generated and verified.

``lifecycle.json`` (read right after keys.json, because every later use of a
certificate needs the revocation list): the FRK-signed revocation list and
escrow record, an invite identity, a key handover with its sas code, and
their rejections. Appended to other files: signed heads (manifests.json), a
removed client writing under its old epoch (envelopes.json) and a firm-key
wrap of a self-made escrow key (wraps.json). New cases draw from their own
RNG (seeded from the vector seed), so the older cases keep their bytes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from rtportal.crypto import recovery as rec
from rtportal.crypto.certs import (
    Reason,
    RevocationEntry,
    RevocationList,
    RevocationListBody,
)
from rtportal.crypto.envelope import CTYPE_BODY, Body, Header, Visibility, seal_envelope
from rtportal.crypto.kdf import message_key
from rtportal.crypto.keys import EscrowRecord, EscrowRecordBody, IdentityKey, IdentityPublic
from rtportal.crypto.manifest import EpochHead, HeadBody, Manifest
from rtportal.crypto.rng import DeterministicRng
from rtportal.crypto.wrap import FIRM_MATTER, WrapInfo, WrapKind, wrap_key

if TYPE_CHECKING:
    from tests.support.crypto.vectors import _World
    from tests.support.crypto.vectors_verify import _Verifier

__all__ = [
    "LIFECYCLE_FILE",
    "case_heads",
    "case_lifecycle",
    "case_removed_member",
    "case_self_made_fek",
    "head_case",
    "lifecycle_case",
]

LIFECYCLE_FILE = "lifecycle.json"
_DAY = 86_400_000
Case = dict[str, Any]


def lifecycle_rng(seed: bytes) -> DeterministicRng:
    return DeterministicRng(hashlib.sha256(seed + b"rtp1/lifecycle").digest())


def _h(b: bytes) -> str:
    return b.hex()


def _signer(w: _World, name: str) -> Any:
    return w.signer(name)


# ---- generation ------------------------------------------------------------
def _list_case(
    w: _World, name: str, signer: str, body: RevocationListBody, now_ms: int, error: str = ""
) -> Case:
    rl = RevocationList(body, _signer(w, signer).sign(body.encode()))
    case: Case = {
        "name": name,
        "type": "revocation_list",
        "signer": signer,
        "firm": body.firm,
        "version": body.version,
        "issued_at_ms": body.issued_at_ms,
        "next_update_ms": body.next_update_ms,
        "entries": [
            {
                "user": e.user,
                "kid": _h(e.kid),
                "revoked_at_ms": e.revoked_at_ms,
                "reason": int(e.reason),
            }
            for e in body.entries
        ],
        "tbs": _h(body.encode()),
        "sig": _h(rl.sig),
        "list": _h(rl.encode()),
        "now_ms": now_ms,
        "expect": "reject" if error else "ok",
    }
    if error:
        case["error"] = error
    return case


def _escrow_case(
    w: _World, name: str, signer: str, body: EscrowRecordBody, error: str = ""
) -> Case:
    r = EscrowRecord(body, _signer(w, signer).sign(body.encode()))
    case: Case = {
        "name": name,
        "type": "escrow",
        "signer": signer,
        "firm": body.firm,
        "version": body.version,
        "x_pk": _h(body.x_pk),
        "created_at_ms": body.created_at_ms,
        "tbs": _h(body.encode()),
        "sig": _h(r.sig),
        "record": _h(r.encode()),
        "expect": "reject" if error else "ok",
    }
    if error:
        case["error"] = error
    return case


def _handover_case(
    name: str,
    secret: bytes,
    h: rec.Handover,
    verify_user: str,
    error: str = "",
) -> Case:
    b = h.body
    case: Case = {
        "name": name,
        "type": "handover",
        "secret": _h(secret),
        "firm": b.firm,
        "user": b.user,
        "verify_user": verify_user,
        "old_kid": _h(b.old_kid),
        "x_pk": _h(b.new.x_pk),
        "ed_pk": _h(b.new.ed_pk),
        "ts_ms": b.ts_ms,
        "tbs": _h(b.encode()),
        "sig": _h(h.sig),
        "handover": _h(h.encode()),
        "sas": rec.sas_code(b.firm, b.user, b.new),
        "expect": "reject" if error else "ok",
    }
    if error:
        case["error"] = error
    return case


def case_lifecycle(w: _World, firm: str, now_ms: int, seed: bytes) -> list[Case]:
    rng = lifecycle_rng(seed)
    entries = (
        RevocationEntry("staff-0", rng(16), now_ms - 2 * _DAY, Reason.LEFT),
        RevocationEntry("bot-0", rng(16), now_ms - 3 * _DAY, Reason.COMPROMISED),
    )
    v1 = RevocationListBody(firm, 1, now_ms - _DAY, now_ms + 30 * _DAY, entries)
    cases = [_list_case(w, "revocation-list-v1", "frk", v1, now_ms)]
    escrow = EscrowRecordBody(firm, w.fek.version, w.fek.public.x_pk, now_ms - _DAY)
    cases.append(_escrow_case(w, "escrow-v1", "frk", escrow))
    secret = rng(32)
    invite = IdentityKey.from_invite_secret(secret, firm, "client-9")
    cases.append(
        {
            "name": "invite-client-9",
            "type": "invite",
            "secret": _h(secret),
            "firm": firm,
            "user": "client-9",
            "x_sk": _h(invite.x_sk),
            "ed_sk": _h(invite.ed_sk),
            "x_pk": _h(invite.public.x_pk),
            "ed_pk": _h(invite.public.ed_pk),
            "kid": _h(invite.kid),
            "expect": "ok",
        }
    )
    fresh = IdentityKey.generate(rng)
    body = rec.HandoverBody(firm, "client-9", invite.kid, fresh.public, now_ms)
    good = rec.sign_handover(body, invite)
    cases.append(_handover_case("handover-client-9", secret, good, "client-9"))
    # rejections (after the ok cases: the list of version 1 is current)
    v2 = RevocationListBody(firm, 2, now_ms - _DAY, now_ms + 30 * _DAY, entries)
    cases.append(
        _list_case(w, "reject-list-signed-by-staff", "staff-1", v2, now_ms, "crypto_signature")
    )
    stale = RevocationListBody(firm, 2, now_ms - 40 * _DAY, now_ms - 1, entries)
    cases.append(_list_case(w, "reject-list-stale", "frk", stale, now_ms, "crypto_stale"))
    old = RevocationListBody(firm, 0, now_ms - _DAY, now_ms + 30 * _DAY, ())
    cases.append(_list_case(w, "reject-list-rollback", "frk", old, now_ms, "crypto_rollback"))
    own = EscrowRecordBody(firm, w.fek.version + 1, IdentityKey.generate(rng).public.x_pk, now_ms)
    cases.append(
        _escrow_case(w, "reject-escrow-signed-by-staff", "staff-1", own, "crypto_signature")
    )
    cases.append(
        _handover_case("reject-handover-other-user", secret, good, "client-8", "crypto_recovery")
    )
    forged = rec.Handover(body, fresh.sign(body.encode()))  # the new key signs itself in
    cases.append(
        _handover_case(
            "reject-handover-not-by-old-key", secret, forged, "client-9", "crypto_signature"
        )
    )
    return cases


def _head_case(w: _World, name: str, body: HeadBody, now_ms: int, error: str = "") -> Case:
    head = EpochHead(body, w.ids[body.signer].sign(body.encode()))
    case: Case = {
        "name": name,
        "type": "head",
        "firm": body.firm,
        "matter": body.matter,
        "epoch": body.epoch,
        "hash": _h(body.hash),
        "ts_ms": body.ts_ms,
        "signer": body.signer,
        "signer_kid": _h(body.signer_kid),
        "tbs": _h(body.encode()),
        "sig": _h(head.sig),
        "head": _h(head.encode()),
        "now_ms": now_ms,
        "expect": "reject" if error else "ok",
    }
    if error:
        case["error"] = error
    return case


def case_heads(w: _World, chain: dict[int, Manifest], now_ms: int, seed: bytes) -> list[Case]:
    """Appended to manifests.json: the chain is at epoch 3 when these are read."""
    rng = lifecycle_rng(seed + b"heads")
    last = chain[max(chain)].body

    def body(epoch: int, digest: bytes, ts: int, signer: str = "staff-1") -> HeadBody:
        return HeadBody(last.firm, last.matter, epoch, digest, ts, signer, w.kid(signer))

    ts = now_ms - 60_000
    return [
        _head_case(w, "head-e3", body(last.epoch, last.hash, ts), now_ms),
        _head_case(
            w,
            "reject-head-stale",
            body(last.epoch, last.hash, now_ms - 91 * _DAY),
            now_ms,
            "crypto_stale",
        ),
        _head_case(w, "reject-head-fork", body(last.epoch, rng(32), ts), now_ms, "crypto_chain"),
        _head_case(
            w, "reject-head-behind", body(2, chain[2].body.hash, ts), now_ms, "crypto_stale"
        ),
        _head_case(
            w,
            "reject-head-by-client",
            body(last.epoch, last.hash, ts, "client-1"),
            now_ms,
            "crypto_uncertified",
        ),
    ]


def case_removed_member(w: _World, chain: dict[int, Manifest], seed: bytes) -> list[Case]:
    """Appended to envelopes.json: client-2, left out at epoch 3, writes under epoch 2
    with a time after epoch 3's manifest (a removed client still posting)."""
    from tests.support.crypto.vectors import _env_case

    rng = lifecycle_rng(seed + b"removed")
    e2, e3 = chain[2].body, chain[3].body
    hd = Header(
        e2.firm,
        e2.matter,
        "thread-1",
        rng(16),
        None,
        "client-2",
        w.kid("client-2"),
        2,
        Visibility.PORTAL,
        e3.ts_ms + 1000,
        CTYPE_BODY,
    )
    mkey = message_key(w.meks[2], e2.firm, e2.matter, 2)
    pt = Body("", "still here").encode()
    env = seal_envelope(hd, mkey, pt, w.ids["client-2"], rng=rng)
    return [
        _env_case(
            "reject-removed-client-after-removal",
            env,
            "mek",
            w.meks[2],
            mkey,
            pt,
            None,
            "reject",
            "crypto_stale_epoch",
        )
    ]


def case_self_made_fek(w: _World, seed: bytes) -> list[Case]:
    """Appended to wraps.json: staff-1 wraps an escrow key of its own making as version 1."""
    from tests.support.crypto.vectors import _wrap_case

    rng = lifecycle_rng(seed + b"fek")
    info = WrapInfo(
        w.fek.firm, FIRM_MATTER, w.fek.version, WrapKind.FIRM, "custodian", w.kid("custodian")
    )
    key, eph = rng(64), rng(32)
    wr = wrap_key(
        key, info, w.ids["custodian"].public.x_pk, "staff-1", w.ids["staff-1"], eph_sk=eph
    )
    return [
        _wrap_case(
            "reject-firm-wrap-self-made-fek",
            wr,
            "staff-1",
            "custodian",
            key,
            eph,
            None,
            "reject",
            "crypto_uncertified",
        )
    ]


# ---- verification ------------------------------------------------------------
def lifecycle_case(v: _Verifier, case: Case) -> None:
    """An ok case of lifecycle.json: rebuild the bytes, then use them as a client does."""
    from tests.support.crypto.vectors_verify import eq, u

    t = case["type"]
    if t == "revocation_list":
        body = RevocationListBody(
            case["firm"],
            case["version"],
            case["issued_at_ms"],
            case["next_update_ms"],
            tuple(
                RevocationEntry(e["user"], u(e["kid"]), e["revoked_at_ms"], Reason(e["reason"]))
                for e in case["entries"]
            ),
        )
        eq(body.encode(), u(case["tbs"]), "tbs")
        eq(v.signer(case["signer"]).sign(body.encode()), u(case["sig"]), "sig")
        eq(RevocationList(body, u(case["sig"])).encode(), u(case["list"]), "list")
        v.d.set_revocation_list(u(case["list"]), case["now_ms"])
    elif t == "escrow":
        eb = EscrowRecordBody(case["firm"], case["version"], u(case["x_pk"]), case["created_at_ms"])
        eq(eb.encode(), u(case["tbs"]), "tbs")
        eq(v.signer(case["signer"]).sign(eb.encode()), u(case["sig"]), "sig")
        eq(EscrowRecord(eb, u(case["sig"])).encode(), u(case["record"]), "record")
        if eb.version == v.fek.get("version"):
            eq(eb.x_pk, u(v.fek["x_pk"]), "escrow x_pk is the FEK of keys.json")
        v.d.add_escrow_record(u(case["record"]))
    elif t == "invite":
        k = IdentityKey.from_invite_secret(u(case["secret"]), case["firm"], case["user"])
        eq(k.x_sk, u(case["x_sk"]), "x_sk")
        eq(k.ed_sk, u(case["ed_sk"]), "ed_sk")
        eq(k.public.x_pk, u(case["x_pk"]), "x_pk")
        eq(k.public.ed_pk, u(case["ed_pk"]), "ed_pk")
        eq(k.kid, u(case["kid"]), "kid")
    elif t == "handover":
        old = IdentityKey.from_invite_secret(u(case["secret"]), case["firm"], case["user"])
        new = IdentityPublic(u(case["x_pk"]), u(case["ed_pk"]))
        hb = rec.HandoverBody(case["firm"], case["user"], u(case["old_kid"]), new, case["ts_ms"])
        eq(hb.encode(), u(case["tbs"]), "tbs")
        h = rec.sign_handover(hb, old)
        eq(h.sig, u(case["sig"]), "sig")
        eq(h.encode(), u(case["handover"]), "handover")
        got = rec.verify_handover(
            u(case["handover"]), old.public, firm=case["firm"], user=case["verify_user"]
        )
        eq(got.new, new, "verified new key")
        eq(rec.sas_code(case["firm"], case["user"], new), case["sas"], "sas")
    else:
        from tests.support.crypto.vectors_verify import VectorMismatch

        raise VectorMismatch(f"unknown lifecycle case type {t}")


def lifecycle_reject(v: _Verifier, case: Case) -> None:
    from tests.support.crypto.vectors_verify import u

    t = case["type"]
    if t == "revocation_list":
        v.d.set_revocation_list(u(case["list"]), case["now_ms"])
    elif t == "escrow":
        v.d.add_escrow_record(u(case["record"]))
    elif t == "handover":
        old = IdentityKey.from_invite_secret(u(case["secret"]), case["firm"], case["user"])
        rec.verify_handover(
            u(case["handover"]), old.public, firm=case["firm"], user=case["verify_user"]
        )


def head_case(v: _Verifier, case: Case) -> None:
    """An ok head of manifests.json: rebuild, then accept as the verifier's matter head."""
    from tests.support.crypto.vectors_verify import eq, u

    body = HeadBody(
        case["firm"],
        case["matter"],
        case["epoch"],
        u(case["hash"]),
        case["ts_ms"],
        case["signer"],
        u(case["signer_kid"]),
    )
    eq(body.encode(), u(case["tbs"]), "tbs")
    eq(v.identity(case["signer"]).sign(body.encode()), u(case["sig"]), "sig")
    eq(EpochHead(body, u(case["sig"])).encode(), u(case["head"]), "head")
    v.d.accept_head(u(case["head"]), case["matter"], case["now_ms"])


def head_reject(v: _Verifier, case: Case) -> None:
    from tests.support.crypto.vectors_verify import u

    v.d.accept_head(u(case["head"]), case["matter"], case["now_ms"])
