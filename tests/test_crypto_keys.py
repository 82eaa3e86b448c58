"""Certificates, revocations, signed key wraps, epoch manifests: accept good, reject the rest."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from rtportal.crypto.certs import FRK_ISSUER, Certificate, Flag, RevocationBody, Role, issue, revoke
from rtportal.crypto.directory import Directory
from rtportal.crypto.errors import (
    ChainBroken,
    CommitmentMismatch,
    DecryptFailed,
    EncodingInvalid,
    EpochGap,
    LowOrderPoint,
    Revoked,
    Rollback,
    SignatureInvalid,
    Uncertified,
    WrongContext,
)
from rtportal.crypto.keys import FirmRootKey
from rtportal.crypto.manifest import Manifest, Member, sign_manifest
from rtportal.crypto.wrap import FEK_RECIPIENT, Wrap, WrapInfo, WrapKind, wrap_key
from tests.support.crypto.world import NOW_MS, World

M = "M-1"


@pytest.fixture
def world() -> World:
    w = World()
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("staff-2", Role.STAFF)
    w.add_user("bot-1", Role.BOT, scopes=(M,))
    w.add_user("custodian", Role.BOT, flags=Flag.CUSTODIAN)
    w.add_user("client-1", Role.CLIENT)
    w.add_user("client-2", Role.CLIENT)
    return w


# ---- certificates --------------------------------------------------------
def test_certificates_verify_against_the_pinned_root(world: World) -> None:
    d = world.directory()
    assert d.certificate("client-1", world.ids["client-1"].kid, NOW_MS).role is Role.CLIENT
    assert d.certificate("bot-1", world.ids["bot-1"].kid, NOW_MS).in_scope(M)
    assert not d.certificate("bot-1", world.ids["bot-1"].kid, NOW_MS).in_scope("M-2")


def test_certificate_under_another_root_rejected(world: World) -> None:
    other = Directory(world.firm, FirmRootKey.generate().public)
    with pytest.raises(Uncertified):
        other.add_certificate(world.certs["staff-1"].encode(), NOW_MS)


def test_substituted_public_key_rejected(world: World) -> None:
    """The directory serves the staff certificate with another X25519 key in it."""
    d = Directory(world.firm, world.frk.public)
    c = world.certs["staff-1"]
    evil = Certificate(replace(c.body, x_pk=world.ids["client-2"].public.x_pk), c.sig)
    with pytest.raises(SignatureInvalid):
        d.add_certificate(evil.encode(), NOW_MS)


def test_client_certified_by_non_certifier_rejected(world: World) -> None:
    w2 = world
    w2.add_user("client-3", Role.CLIENT, issuer="staff-2")
    d = Directory(world.firm, world.frk.public)
    d.add_certificate(world.certs["staff-2"], NOW_MS)
    with pytest.raises(Uncertified):
        d.add_certificate(world.certs["client-3"], NOW_MS)


def test_staff_certificate_signed_by_staff_rejected(world: World) -> None:
    world.add_user("staff-3", Role.STAFF, issuer="staff-1")
    dd = Directory(world.firm, world.frk.public)
    dd.add_certificate(world.certs["staff-1"], NOW_MS)
    with pytest.raises(Uncertified):
        dd.add_certificate(world.certs["staff-3"], NOW_MS)


def test_expired_certificate_unusable_now_but_kept_for_history(world: World) -> None:
    """Expiry ends a key's use at ``expires_at``; what it signed before stays verifiable."""
    d = world.directory()
    c = world.certs["client-1"]
    body = replace(c.body, serial=c.body.serial + 1, expires_at_ms=NOW_MS - 1)
    d.add_certificate(Certificate(body, world.ids["staff-1"].sign(body.encode())), NOW_MS)
    kid = world.ids["client-1"].kid
    with pytest.raises(Uncertified):
        d.certificate("client-1", kid, NOW_MS)
    assert d.certificate("client-1", kid, NOW_MS, at_ms=NOW_MS - 2).user == "client-1"


def test_future_and_never_valid_certificates_rejected(world: World) -> None:
    d = world.directory()
    c = world.certs["client-1"]
    for body in (
        replace(c.body, issued_at_ms=NOW_MS + 3_600_000),
        replace(c.body, expires_at_ms=c.body.issued_at_ms),
    ):
        cert = Certificate(body, world.ids["staff-1"].sign(body.encode()))
        with pytest.raises(Uncertified):
            d.add_certificate(cert, NOW_MS)


def test_low_order_identity_key_rejected(world: World) -> None:
    c = world.certs["client-1"]
    body = replace(c.body, x_pk=bytes(32))
    cert = Certificate(body, world.ids["staff-1"].sign(body.encode()))
    with pytest.raises(LowOrderPoint):
        world.directory().add_certificate(cert, NOW_MS)


def test_non_canonical_identity_key_rejected(world: World) -> None:
    """The client's key with its top bit set: same point, another kid; signed by the issuer."""
    c = world.certs["client-1"]
    x_pk = c.body.x_pk[:31] + bytes([c.body.x_pk[31] | 0x80])
    body = replace(c.body, x_pk=x_pk)
    cert = Certificate(body, world.ids["staff-1"].sign(body.encode()))
    with pytest.raises(EncodingInvalid):
        world.directory().add_certificate(cert, NOW_MS)
    with pytest.raises(EncodingInvalid):
        issue(body, world.ids["staff-1"])


def test_revocation_by_root_blocks_the_key(world: World) -> None:
    d = world.directory()
    kid = world.ids["staff-2"].kid
    rev = revoke(
        RevocationBody(world.firm, "staff-2", kid, 1, NOW_MS, FRK_ISSUER, world.frk.kid), world.frk
    )
    d.add_revocation(rev.encode(), NOW_MS)
    with pytest.raises(Revoked):
        d.certificate("staff-2", kid, NOW_MS)
    with pytest.raises(Revoked):
        d.add_certificate(world.certs["staff-2"], NOW_MS)


def test_staff_cannot_revoke_staff(world: World) -> None:
    d = world.directory()
    s1 = world.ids["staff-1"]
    body = RevocationBody(
        world.firm, "staff-2", world.ids["staff-2"].kid, 1, NOW_MS, "staff-1", s1.kid
    )
    with pytest.raises(Uncertified):
        d.add_revocation(revoke(body, s1), NOW_MS)
    body = replace(body, user="client-1", kid=world.ids["client-1"].kid)
    d.add_revocation(revoke(body, s1), NOW_MS)  # a certifier may revoke a client
    with pytest.raises(Revoked):
        d.certificate("client-1", world.ids["client-1"].kid, NOW_MS)


def test_forged_revocation_rejected(world: World) -> None:
    d = world.directory()
    body = RevocationBody(world.firm, "staff-1", world.ids["staff-1"].kid, 1, NOW_MS, FRK_ISSUER,
                          world.frk.kid)  # fmt: skip
    rev = revoke(body, world.frk)
    with pytest.raises(SignatureInvalid):
        d.add_revocation(replace(rev, sig=os.urandom(64)), NOW_MS)


# ---- wraps -------------------------------------------------------------------
def _reader_with_manifest(world: World, user: str = "client-1") -> Directory:
    world.new_epoch(M, ("client-1", "bot-1"))
    d = world.directory()
    d.accept_manifest(world.chains[M].manifests[1], M, NOW_MS)
    return d


def test_wrap_round_trip_to_client_and_fek(world: World) -> None:
    d = _reader_with_manifest(world)
    mek = world.chains[M].meks[1]
    got = d.unwrap(world.wrap_mek(M, 1, "client-1").encode(), world.mek_info(M, 1, "client-1"),
                   world.ids["client-1"].x_sk, NOW_MS)  # fmt: skip
    assert got == mek
    info = WrapInfo(world.firm, M, 1, WrapKind.MEK, FEK_RECIPIENT, world.fek.kid)
    assert d.unwrap(world.wrap_mek(M, 1, FEK_RECIPIENT), info, world.fek.x_sk, NOW_MS) == mek


def test_firm_keys_wrap_to_custodian(world: World) -> None:
    d = world.directory()
    w = world.wrap_firm_keys("custodian")
    info = w.info
    assert d.unwrap(w.encode(), info, world.ids["custodian"].x_sk, NOW_MS) == (
        world.fek.x_sk + world.fek.fir
    )


@pytest.mark.parametrize(
    "change",
    [
        {"matter": "M-2"},
        {"epoch": 2},
        {"recipient": "client-2"},
        {"recipient_kid": os.urandom(16)},
        {"firm": "firm-2"},
        {"kind": WrapKind.FIRM},
    ],
    ids=lambda c: next(iter(c)),
)
def test_wrap_for_another_context_rejected(world: World, change: dict[str, object]) -> None:
    d = _reader_with_manifest(world)
    w = world.wrap_mek(M, 1, "client-1")
    expected = replace(world.mek_info(M, 1, "client-1"), **change)  # type: ignore[arg-type]
    with pytest.raises(WrongContext):
        d.unwrap(w, expected, world.ids["client-1"].x_sk, NOW_MS)


def test_wrap_info_rewritten_by_server_fails_signature_or_decryption(world: World) -> None:
    """Rewriting the info to match the reader breaks the signature (and HPKE's info)."""
    d = _reader_with_manifest(world)
    w = world.wrap_mek(M, 1, "client-1")
    moved = replace(
        w, info=replace(w.info, recipient="client-2", recipient_kid=world.ids["client-2"].kid)
    )
    with pytest.raises(SignatureInvalid):
        d.unwrap(moved, moved.info, world.ids["client-2"].x_sk, NOW_MS)


@pytest.mark.parametrize("wrapper", ["client-2", "bot-1"])
def test_wrap_signed_by_non_staff_rejected(world: World, wrapper: str) -> None:
    d = _reader_with_manifest(world)
    with pytest.raises(Uncertified):
        w = world.wrap_mek(M, 1, "client-1", wrapper=wrapper)
        d.unwrap(w, world.mek_info(M, 1, "client-1"), world.ids["client-1"].x_sk, NOW_MS)


def test_wrap_by_custodian_bot_accepted(world: World) -> None:
    d = _reader_with_manifest(world)
    w = world.wrap_mek(M, 1, "client-1", wrapper="custodian")
    assert d.unwrap(w, w.info, world.ids["client-1"].x_sk, NOW_MS) == world.chains[M].meks[1]


def test_wrap_of_wrong_key_fails_commitment(world: World) -> None:
    d = _reader_with_manifest(world)
    info = world.mek_info(M, 1, "client-1")
    w = wrap_key(
        os.urandom(32), info, world.ids["client-1"].public.x_pk, "staff-1", world.ids["staff-1"]
    )
    with pytest.raises(CommitmentMismatch):
        d.unwrap(w, info, world.ids["client-1"].x_sk, NOW_MS)


def test_wrap_without_verified_manifest_rejected(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    d = world.directory()  # manifest never accepted
    with pytest.raises(WrongContext):
        d.unwrap(world.wrap_mek(M, 1, "client-1"), world.mek_info(M, 1, "client-1"),
                 world.ids["client-1"].x_sk, NOW_MS)  # fmt: skip


def test_wrap_wrong_lengths_and_low_order_enc(world: World) -> None:
    d = _reader_with_manifest(world)
    w = world.wrap_mek(M, 1, "client-1")
    blob = w.encode()
    with pytest.raises(EncodingInvalid):
        Wrap.decode(replace(w, ct=w.ct + b"\x00").encode())
    with pytest.raises(EncodingInvalid):
        Wrap.decode(blob[:-1])
    staff = world.ids["staff-1"]
    low = replace(w, enc=bytes(32))
    low = replace(low, sig=staff.sign(low.sig_input()))
    with pytest.raises(LowOrderPoint):
        d.unwrap(low, w.info, world.ids["client-1"].x_sk, NOW_MS)


def test_wrap_for_me_opened_with_wrong_private_key_fails(world: World) -> None:
    d = _reader_with_manifest(world)
    w = world.wrap_mek(M, 1, "client-1")
    with pytest.raises(DecryptFailed):
        d.unwrap(w, w.info, world.ids["client-2"].x_sk, NOW_MS)


# ---- manifests -------------------------------------------------------------------
def test_chain_of_epochs_accepted_and_idempotent(world: World) -> None:
    for members in (("client-1",), ("client-1", "client-2"), ("client-1",)):
        world.new_epoch(M, members)
    d = world.directory()
    for e in (1, 2, 3):
        d.accept_manifest(world.chains[M].manifests[e].encode(), M, NOW_MS)
    d.accept_manifest(world.chains[M].manifests[3], M, NOW_MS)  # re-delivery
    assert d.current_epoch(M) == 3


def test_uncertified_member_rejected(world: World) -> None:
    m, _ = world.new_epoch(M, ("client-1",))
    body = replace(
        m.body, members=(*m.body.members, Member("mallory", os.urandom(16), Role.CLIENT))
    )
    evil = sign_manifest(body, world.ids["staff-1"])
    with pytest.raises(Uncertified):
        world.directory().accept_manifest(evil, M, NOW_MS)


def test_member_role_must_match_certificate(world: World) -> None:
    m, _ = world.new_epoch(M, ("client-1",))
    body = replace(m.body, members=(Member("client-1", world.ids["client-1"].kid, Role.BOT),))
    with pytest.raises(Uncertified):
        world.directory().accept_manifest(sign_manifest(body, world.ids["staff-1"]), M, NOW_MS)


def test_bot_member_out_of_scope_rejected(world: World) -> None:
    world.new_epoch("M-2", ("bot-1",))
    with pytest.raises(Uncertified):
        world.directory().accept_manifest(world.chains["M-2"].manifests[1], "M-2", NOW_MS)


def test_manifest_signed_by_client_or_plain_bot_rejected(world: World) -> None:
    for creator in ("client-1", "bot-1"):
        w = world
        w.chains.pop(M, None)
        w.new_epoch(M, ("client-1",), creator=creator)
        with pytest.raises(Uncertified):
            w.directory().accept_manifest(w.chains[M].manifests[1], M, NOW_MS)


def test_member_added_after_signing_rejected(world: World) -> None:
    m, _ = world.new_epoch(M, ("client-1",))
    extra = Member("client-2", world.ids["client-2"].kid, Role.CLIENT)
    tampered = Manifest(replace(m.body, members=(*m.body.members, extra)), m.sig)
    with pytest.raises(SignatureInvalid):
        world.directory().accept_manifest(tampered.encode(), M, NOW_MS)


def test_broken_chain_gap_rollback_and_first_epoch(world: World) -> None:
    m1, _ = world.new_epoch(M, ("client-1",))
    m2, _ = world.new_epoch(M, ("client-1", "client-2"))
    m3, _ = world.new_epoch(M, ("client-1",))
    staff = world.ids["staff-1"]
    d = world.directory()
    with pytest.raises(ChainBroken):  # a fresh reader must start at epoch 1
        d.accept_manifest(m2, M, NOW_MS)
    d.accept_manifest(m1, M, NOW_MS)
    with pytest.raises(EpochGap):
        d.accept_manifest(m3, M, NOW_MS)
    forked = sign_manifest(replace(m2.body, prev_hash=os.urandom(32)), staff)
    with pytest.raises(ChainBroken):
        d.accept_manifest(forked, M, NOW_MS)
    d.accept_manifest(m2, M, NOW_MS)
    with pytest.raises(Rollback):
        d.accept_manifest(m1, M, NOW_MS)
    other1 = sign_manifest(replace(m2.body, members=m1.body.members), staff)
    with pytest.raises(Rollback):  # same epoch, different content
        d.accept_manifest(other1, M, NOW_MS)
    assert d.current_epoch(M) == 2


def test_pinned_start_for_member_without_history(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    m2, _ = world.new_epoch(M, ("client-1", "client-2"))
    d = world.directory()
    d.accept_manifest(m2, M, NOW_MS, pin=True)
    assert d.current_epoch(M) == 2


def test_manifest_for_other_matter_rejected(world: World) -> None:
    world.new_epoch("M-2", ("client-1",))
    with pytest.raises(WrongContext):
        world.directory().accept_manifest(world.chains["M-2"].manifests[1], M, NOW_MS)


def test_firm_keys_wrapped_by_a_scoped_custodian_rejected(world: World) -> None:
    """Firm keys are firm-wide: a custodian bot limited to some matters may not hand them out."""
    world.add_user("cust-m1", Role.BOT, flags=Flag.CUSTODIAN, scopes=(M,))
    d = world.directory()
    w = world.wrap_firm_keys("staff-2", wrapper="cust-m1")
    with pytest.raises(Uncertified):
        d.unwrap(w.encode(), w.info, world.ids["staff-2"].x_sk, NOW_MS)
    ok = world.wrap_firm_keys("staff-2", wrapper="custodian")  # unscoped custodian: fine
    assert d.unwrap(ok.encode(), ok.info, world.ids["staff-2"].x_sk, NOW_MS)[32:] == world.fek.fir


def test_older_certificate_of_a_key_does_not_replace_a_newer_one(world: World) -> None:
    """The FRK narrows bot-1 to one matter (serial up); the server re-serves the old, wider one."""
    d = world.directory()
    wide = world.certs["bot-1"]
    narrow_body = replace(wide.body, serial=wide.body.serial + 100, scopes=("M-other",))
    narrow = Certificate(narrow_body, world.frk.sign(narrow_body.encode()))
    assert d.add_certificate(narrow, NOW_MS).scopes == ("M-other",)
    assert d.add_certificate(wide, NOW_MS).scopes == ("M-other",)  # still the newer one
    assert d.certificate("bot-1", wide.body.kid, NOW_MS).serial == narrow_body.serial
    fresh = world.directory()  # a client that sees them in the other order ends the same
    fresh.add_certificate(wide, NOW_MS)
    fresh.add_certificate(narrow, NOW_MS)
    assert fresh.certificate("bot-1", wide.body.kid, NOW_MS).scopes == ("M-other",)
