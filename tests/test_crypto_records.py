"""The lifecycle records of docs/keys.md: revocation list, escrow, head, invite key, handover.

Encode, decode, sign and verify round trips, and the decoders' refusals;
the verifier rules that use these records are in test_crypto_lifecycle.py.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from rtportal.crypto.certs import (
    Reason,
    RevocationEntry,
    RevocationList,
    RevocationListBody,
    sign_revocation_list,
)
from rtportal.crypto.errors import EncodingInvalid, RecoveryInvalid, SignatureInvalid, Stale
from rtportal.crypto.keys import (
    EscrowRecord,
    EscrowRecordBody,
    FirmEscrowKey,
    FirmRootKey,
    IdentityKey,
    sign_escrow_record,
)
from rtportal.crypto.manifest import HEAD_MAX_AGE_MS, EpochHead, HeadBody, sign_head
from rtportal.crypto.recovery import (
    Handover,
    HandoverBody,
    sas_code,
    sign_handover,
    verify_handover,
)

NOW = 1_790_000_000_000
FRK = FirmRootKey(bytes(range(32)))
ALICE = IdentityKey(bytes([7]) * 32, bytes([8]) * 32)


def _list(*entries: RevocationEntry, version: int = 1) -> RevocationListBody:
    return RevocationListBody("firm-1", version, NOW, NOW + 30 * 86_400_000, entries)


def test_revocation_list_round_trip_and_frk_signature() -> None:
    e1 = RevocationEntry("s3", ALICE.kid, NOW - 5, Reason.LEFT)
    e2 = RevocationEntry("b1", bytes(16), NOW - 9, Reason.COMPROMISED)
    signed = sign_revocation_list(_list(e1, e2), FRK)
    back = RevocationList.decode(signed.encode())
    assert back == signed
    assert back.body.entries == tuple(sorted((e1, e2), key=RevocationEntry.encode))
    assert back.body.entry("s3", ALICE.kid) == e1
    back.verify(FRK.public)
    with pytest.raises(SignatureInvalid):
        RevocationList(replace(back.body, version=2), back.sig).verify(FRK.public)
    with pytest.raises(SignatureInvalid):
        back.verify(FirmRootKey(bytes(32)).public)


def test_revocation_list_refuses_a_key_twice_an_unknown_reason_and_a_backwards_bound() -> None:
    e = RevocationEntry("s3", ALICE.kid, NOW, Reason.LEFT)
    with pytest.raises(EncodingInvalid):
        _list(e, replace(e, reason=Reason.COMPROMISED)).encode()
    with pytest.raises(EncodingInvalid):
        replace(_list(), next_update_ms=NOW - 1).encode()
    raw = sign_revocation_list(_list(e), FRK).encode()
    # reason byte is the last byte of the only entry, right before the signature field
    i = len(raw) - 2 - 64 - 1
    assert raw[i] == Reason.LEFT
    bad = raw[:i] + b"\x04" + raw[i + 1 :]
    with pytest.raises(EncodingInvalid):
        RevocationList.decode(bad)


def test_escrow_record_round_trip() -> None:
    fek = FirmEscrowKey("firm-1", 2, bytes([3]) * 32, bytes([4]) * 32)
    rec = sign_escrow_record(EscrowRecordBody("firm-1", 2, fek.public.x_pk, NOW), FRK)
    back = EscrowRecord.decode(rec.encode())
    assert back == rec
    back.verify(FRK.public)
    assert back.body.public == fek.public
    with pytest.raises(SignatureInvalid):
        EscrowRecord(replace(back.body, version=3), back.sig).verify(FRK.public)
    with pytest.raises(EncodingInvalid):
        EscrowRecordBody("firm-1", 0, fek.public.x_pk, NOW).encode()


def test_head_round_trip() -> None:
    body = HeadBody("firm-1", "AAAA0002", 3, bytes([9]) * 32, NOW, "s1", ALICE.kid)
    head = sign_head(body, ALICE)
    back = EpochHead.decode(head.encode())
    assert back == head
    ALICE.public.verify(back.sig, back.body.encode())
    assert HEAD_MAX_AGE_MS == 90 * 86_400_000
    with pytest.raises(EncodingInvalid):
        sign_head(replace(body, signer_kid=bytes(16)), ALICE)
    with pytest.raises(EncodingInvalid):
        replace(body, epoch=0).encode()


def test_invite_identity_is_deterministic_and_bound_to_firm_and_user() -> None:
    secret = bytes(range(32, 64))
    k = IdentityKey.from_invite_secret(secret, "demo", "c12")
    assert k == IdentityKey.from_invite_secret(secret, "demo", "c12")
    assert k.kid != IdentityKey.from_invite_secret(secret, "demo", "c13").kid
    assert k.kid != IdentityKey.from_invite_secret(secret, "demo2", "c12").kid
    with pytest.raises(EncodingInvalid):
        IdentityKey.from_invite_secret(secret[:16], "demo", "c12")


def test_handover_round_trip_and_sas_code() -> None:
    invite = IdentityKey.from_invite_secret(bytes(32), "demo", "c12")
    fresh = IdentityKey(bytes([1]) * 32, bytes([2]) * 32)
    h = sign_handover(HandoverBody("demo", "c12", invite.kid, fresh.public, NOW), invite)
    back = Handover.decode(h.encode())
    assert back == h
    assert verify_handover(h.encode(), invite.public, firm="demo", user="c12").new == fresh.public
    with pytest.raises(RecoveryInvalid):
        verify_handover(h, invite.public, firm="demo", user="c13")
    with pytest.raises(RecoveryInvalid):
        verify_handover(h, fresh.public, firm="demo", user="c12")
    forged = Handover(replace(h.body, ts_ms=NOW + 1), h.sig)
    with pytest.raises(SignatureInvalid):
        verify_handover(forged, invite.public, firm="demo", user="c12")
    code = sas_code("demo", "c12", fresh.public)
    assert re.fullmatch(r"\d{3} \d{3}", code)
    assert code == sas_code("demo", "c12", fresh.public)
    assert code != sas_code("demo", "c12", invite.public)


def test_stale_has_its_stable_code() -> None:
    assert Stale.code == "crypto_stale"
