"""Key lifecycle rules of the verifier (docs/keys.md, issue 11 review findings 1-7).

Each test plays one way the lifecycle could be abused or break, against the
real library: a withheld or stale revocation list, a departed or compromised
staff key, a self-made escrow key, a removed client still writing, history
after people leave, hidden epochs and forks, the custodian bot's rights.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rtportal.crypto.certs import (
    FRK_ISSUER,
    Certificate,
    Flag,
    Reason,
    RevocationBody,
    RevocationList,
    Role,
    issue,
    revoke,
    sign_revocation_list,
)
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, Body, Envelope, Header, Visibility, seal_envelope
from rtportal.crypto.errors import (
    ChainBroken,
    Revoked,
    Rollback,
    SignatureInvalid,
    Stale,
    StaleEpochWrite,
    Uncertified,
)
from rtportal.crypto.kdf import message_key
from rtportal.crypto.keys import (
    EscrowRecordBody,
    FirmEscrowKey,
    IdentityKey,
    sign_escrow_record,
)
from rtportal.crypto.manifest import HEAD_MAX_AGE_MS, EpochHead, HeadBody, sign_head
from rtportal.crypto.recovery import HandoverBody, sas_code, sign_handover, verify_handover
from rtportal.crypto.wrap import FIRM_MATTER, WrapInfo, WrapKind, wrap_key
from tests.support.crypto.world import NOW_MS, World

M, T = "M-1", "thread-1"
DAY = 86_400_000
HOUR = 3_600_000


@pytest.fixture
def world() -> World:
    w = World()
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("staff-2", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("bot-1", Role.BOT, scopes=(M,))
    w.add_user("custodian", Role.BOT, flags=Flag.CUSTODIAN)
    w.add_user("client-1", Role.CLIENT)
    w.add_user("client-2", Role.CLIENT)
    return w


def _post(d: Directory, w: World, who: str, ts_ms: int, epoch: int | None = None) -> Envelope:
    """A message sealed without the writer's checks (what a rogue client could produce)."""
    st = d.matter(M)
    e = st.last_epoch if epoch is None else epoch
    h = Header(
        w.firm, M, T, w.rng(16), None, who, w.ids[who].kid, e, Visibility.PORTAL, ts_ms, CTYPE_BODY
    )
    key = message_key(w.chains[M].meks[e], w.firm, M, e)
    return seal_envelope(h, key, Body("", f"{who} at {ts_ms}").encode(), w.ids[who])


def _write(d: Directory, w: World, ts_ms: int = NOW_MS) -> Envelope:
    """client-1 writes through the library (the writer's checks apply)."""
    return d.seal_message(w.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                          plaintext=b"x", ts_ms=ts_ms, ctype=CTYPE_BODY)  # fmt: skip


def _open(d: Directory, env: Envelope, now_ms: int = NOW_MS) -> str:
    _, cert, _ = d.open_message(env.encode(), matter=M, thread=T, now_ms=now_ms)
    return cert.user


# ---- finding 1: revocation cannot be withheld ---------------------------------------
def test_no_revocation_list_no_usable_certificate(world: World) -> None:
    d = Directory(world.firm, world.frk.public)
    d.add_certificate(world.certs["staff-1"], NOW_MS)  # storing is fine ...
    with pytest.raises(Stale) as e:  # ... using is not
        d.certificate("staff-1", world.ids["staff-1"].kid, NOW_MS)
    assert e.value.code == "crypto_stale"


def test_stale_revocation_list_refused_and_ages_out_in_use(world: World) -> None:
    d = world.directory()
    kid = world.ids["staff-1"].kid
    # the server keeps serving the list it had: past next_update nothing is usable
    with pytest.raises(Stale):
        d.certificate("staff-1", kid, NOW_MS + 31 * DAY)
    fresh = Directory(world.firm, world.frk.public)
    with pytest.raises(Stale):
        fresh.set_revocation_list(world.revocation_list(next_update_ms=NOW_MS - 1), NOW_MS)


def test_older_or_forged_revocation_list_refused(world: World) -> None:
    d = world.directory()
    v2 = world.revoke("staff-2", Reason.COMPROMISED, NOW_MS - HOUR)
    d.set_revocation_list(v2, NOW_MS)
    v1 = sign_revocation_list(replace(v2.body, version=1, entries=()), world.frk)
    with pytest.raises(Rollback):  # a server rolling the list back to before the revocation
        d.set_revocation_list(v1, NOW_MS)
    with pytest.raises(Rollback):  # another list under the same version
        d.set_revocation_list(sign_revocation_list(replace(v2.body, entries=()), world.frk), NOW_MS)
    forged = RevocationList(replace(v2.body, version=3, entries=()), v2.sig)
    with pytest.raises(SignatureInvalid):
        d.set_revocation_list(forged, NOW_MS)
    by_staff = RevocationList(v2.body, world.ids["staff-1"].sign(v2.body.encode()))
    with pytest.raises(SignatureInvalid):
        Directory(world.firm, world.frk.public).set_revocation_list(by_staff, NOW_MS)
    with pytest.raises(Revoked):
        d.certificate("staff-2", world.ids["staff-2"].kid, NOW_MS)


def test_compromised_staff_key_invalidates_its_history_and_its_clients(world: World) -> None:
    world.add_user("client-3", Role.CLIENT, issuer="staff-2")
    world.new_epoch(M, ("client-1",), creator="staff-2", ts_ms=NOW_MS - DAY // 2)
    d = world.directory()
    d.set_revocation_list(world.revoke("staff-2", Reason.COMPROMISED, NOW_MS), NOW_MS)
    with pytest.raises(Revoked):  # signed long before revoked_at: a thief can backdate
        d.accept_manifest(world.chains[M].manifests[1], M, NOW_MS)
    with pytest.raises(Revoked):  # a client certificate it issued is unusable at every use
        d.certificate("client-3", world.ids["client-3"].kid, NOW_MS)


def test_departed_staff_keeps_what_it_signed_before_leaving(world: World) -> None:
    left_at = NOW_MS - HOUR
    world.add_user("client-3", Role.CLIENT, issuer="staff-2")  # issued a day ago
    world.new_epoch(M, ("client-1",), creator="staff-2", ts_ms=left_at - 1)
    lst = world.revoke("staff-2", Reason.LEFT, left_at)
    d = world.directory()
    d.set_revocation_list(lst, NOW_MS)
    d.accept_manifest(world.chains[M].manifests[1], M, NOW_MS)  # history stays valid
    assert d.certificate("client-3", world.ids["client-3"].kid, NOW_MS).user == "client-3"
    with pytest.raises(Revoked):  # but nothing new from the departed key
        d.certificate("staff-2", world.ids["staff-2"].kid, NOW_MS)
    world.new_epoch(M, ("client-1",), creator="staff-2", ts_ms=left_at)
    with pytest.raises(Revoked):
        d.accept_manifest(world.chains[M].manifests[2], M, NOW_MS)
    # a client certificate it signs after leaving is refused
    k = IdentityKey.generate()
    body = replace(
        world.certs["client-3"].body,
        user="client-4",
        x_pk=k.public.x_pk,
        ed_pk=k.public.ed_pk,
        issued_at_ms=left_at + 1,
    )
    with pytest.raises(Revoked):
        d.add_certificate(issue(body, world.ids["staff-2"]), NOW_MS)


def test_client_revocation_ends_use_at_revoked_at(world: World) -> None:
    world.new_epoch(M, ("client-1", "client-2"), ts_ms=NOW_MS - DAY // 2)
    d = world.reader("client-2", M)
    before = _post(d, world, "client-1", NOW_MS - HOUR - 1)
    after = _post(d, world, "client-1", NOW_MS - HOUR)
    rev = RevocationBody(
        world.firm,
        "client-1",
        world.ids["client-1"].kid,
        9,
        NOW_MS - HOUR,
        "staff-1",
        world.ids["staff-1"].kid,
    )
    d.add_revocation(revoke(rev, world.ids["staff-1"]), NOW_MS)
    assert _open(d, before) == "client-1"
    with pytest.raises(Revoked):
        _open(d, after)


# ---- finding 2: a departed staff member keeps reading ------------------------------
def _firm_wrap(world: World, fek: FirmEscrowKey, wrapper: str, to: str = "custodian") -> bytes:
    info = WrapInfo(world.firm, FIRM_MATTER, fek.version, WrapKind.FIRM, to, world.ids[to].kid)
    w = wrap_key(
        fek.wrapped_plaintext(), info, world.ids[to].public.x_pk, wrapper, world.ids[wrapper]
    )
    return w.encode()


def test_firm_wrap_of_a_self_made_escrow_key_refused(world: World) -> None:
    d = world.directory()
    info = WrapInfo(
        world.firm, FIRM_MATTER, 1, WrapKind.FIRM, "custodian", world.ids["custodian"].kid
    )
    sk = world.ids["custodian"].x_sk
    assert d.unwrap(_firm_wrap(world, world.fek, "staff-1"), info, sk, NOW_MS)  # the real one
    own = FirmEscrowKey.generate(world.firm, 1)  # staff-2's own "escrow key" as version 1
    with pytest.raises(Uncertified):
        d.unwrap(_firm_wrap(world, own, "staff-2"), info, sk, NOW_MS)
    own2 = FirmEscrowKey.generate(world.firm, 2)  # or a version the FRK never signed
    info2 = replace(info, epoch=2)
    with pytest.raises(Uncertified):
        d.unwrap(_firm_wrap(world, own2, "staff-2"), info2, sk, NOW_MS)
    with pytest.raises(Uncertified):
        d.add_firm_keys(own)


def test_escrow_record_must_be_signed_by_the_root(world: World) -> None:
    d = world.directory()
    own = FirmEscrowKey.generate(world.firm, 2)
    body = EscrowRecordBody(world.firm, 2, own.public.x_pk, NOW_MS)
    forged = sign_escrow_record(body, world.frk)
    forged = replace(forged, sig=world.ids["staff-2"].sign(body.encode()))
    with pytest.raises(SignatureInvalid):
        d.add_escrow_record(forged)
    assert d.newest_escrow_version == 1


def test_writer_refuses_an_epoch_under_an_older_escrow_version(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    world.rotate_escrow()  # staff-2 left: FEK/FIR v2, signed by the FRK
    d = world.reader("client-1", M)
    with pytest.raises(StaleEpochWrite) as e:
        _write(d, world)
    assert e.value.code == "crypto_stale_epoch"
    world.new_epoch(M, ("client-1",))  # the next epoch under v2: writable again
    d = world.reader("client-1", M)
    _write(d, world)


# ---- finding 3: a removed client can still post ----------------------------------
@pytest.mark.parametrize("who", ["client-2", "bot-1"])
def test_removed_member_writing_under_its_old_epoch_refused(world: World, who: str) -> None:
    removed_at = NOW_MS - HOUR
    world.new_epoch(M, ("client-1", "client-2", "bot-1"), ts_ms=NOW_MS - DAY // 2)
    world.new_epoch(M, ("client-1",), ts_ms=removed_at)
    d = world.reader("client-1", M)
    assert _open(d, _post(d, world, who, removed_at - 1, epoch=1)) == who  # written before
    with pytest.raises(StaleEpochWrite):
        _open(d, _post(d, world, who, removed_at, epoch=1))


def test_custodian_bot_and_staff_are_not_epoch_members(world: World) -> None:
    world.new_epoch(M, ("client-1", "custodian"), ts_ms=NOW_MS - DAY // 2)
    world.new_epoch(M, ("client-1",), ts_ms=NOW_MS - HOUR)
    d = world.reader("client-1", M)
    # staff and a custodian bot write under the old epoch without membership (the server
    # refuses them anyway); the rule is about members who were left out
    assert _open(d, _post(d, world, "custodian", NOW_MS, epoch=1)) == "custodian"
    assert _open(d, _post(d, world, "staff-1", NOW_MS, epoch=1)) == "staff-1"


# ---- finding 4: history survives people leaving and certificates expiring ----------
def test_new_device_reads_history_after_creator_left_and_member_expired(world: World) -> None:
    t0 = NOW_MS - 2 * HOUR
    expires = NOW_MS - HOUR
    c1 = world.certs["client-1"]
    body = replace(c1.body, serial=c1.body.serial + 100, expires_at_ms=expires)
    world.certs["client-1"] = Certificate(body, world.ids["staff-1"].sign(body.encode()))
    world.new_epoch(M, ("client-1", "client-2"), creator="staff-2", ts_ms=t0)
    world.revoke("staff-2", Reason.LEFT, expires)
    d = world.reader("client-2", M)  # a fresh device, after both events
    old = _post(d, world, "client-1", t0 + 1)
    assert _open(d, old) == "client-1"
    with pytest.raises(Uncertified):  # but the expired key writes nothing new
        _open(d, _post(d, world, "client-1", NOW_MS))


# ---- finding 5: stale epochs and forks --------------------------------------------
def test_writer_needs_a_fresh_head_of_the_current_epoch(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    d = world.directory()
    d.accept_manifest(world.chains[M].manifests[1], M, NOW_MS)
    d.unwrap(
        world.wrap_mek(M, 1, "client-1"),
        world.mek_info(M, 1, "client-1"),
        world.ids["client-1"].x_sk,
        NOW_MS,
    )

    with pytest.raises(Stale):  # no head: the server may be hiding newer epochs
        _write(d, world)
    d.accept_head(world.head(M), M, NOW_MS)
    _write(d, world)
    with pytest.raises(Stale):  # the head ages out
        _write(d, world, NOW_MS + HEAD_MAX_AGE_MS + 1)
    with pytest.raises(Stale):
        d.accept_head(world.head(M, ts_ms=NOW_MS - HEAD_MAX_AGE_MS - 1), M, NOW_MS)


def test_head_ahead_of_the_chain_blocks_writes_until_synced(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    d = world.reader("client-1", M)
    m2, _ = world.new_epoch(M, ("client-1",))
    d.accept_head(world.head(M), M, NOW_MS)  # the server showed the head, not the epoch
    with pytest.raises(Stale):
        _write(d, world)
    with pytest.raises(Stale):  # and an older head cannot replace it
        d.accept_head(_head(world, 1), M, NOW_MS)
    d.accept_manifest(m2, M, NOW_MS)
    d.unwrap(
        world.wrap_mek(M, 2, "client-1"),
        world.mek_info(M, 2, "client-1"),
        world.ids["client-1"].x_sk,
        NOW_MS,
    )
    _write(d, world)


def _head(
    world: World,
    epoch: int,
    *,
    signer: str = "staff-1",
    digest: bytes | None = None,
    ts: int = NOW_MS,
) -> EpochHead:
    m = world.chains[M].manifests[epoch].body
    body = HeadBody(world.firm, M, epoch, digest or m.hash, ts, signer, world.ids[signer].kid)
    return sign_head(body, world.ids[signer])


def test_forked_or_foreign_heads_refused(world: World) -> None:
    world.new_epoch(M, ("client-1",))
    world.new_epoch(M, ("client-1",))
    d = world.reader("client-1", M)
    with pytest.raises(ChainBroken):  # same epoch, another manifest: a fork
        d.accept_head(_head(world, 2, digest=bytes(32)), M, NOW_MS)
    with pytest.raises(Stale):  # behind the verified chain
        d.accept_head(_head(world, 1), M, NOW_MS)
    with pytest.raises(Uncertified):  # heads are signed by staff or a custodian bot
        d.accept_head(_head(world, 2, signer="client-1"), M, NOW_MS)
    with pytest.raises(Uncertified):
        d.accept_head(_head(world, 2, signer="bot-1"), M, NOW_MS)
    d.accept_head(_head(world, 2, signer="custodian"), M, NOW_MS)
    # a head naming epoch 3 first, then a manifest 3 that differs from it: a fork
    fork = _head(world, 2, digest=b"\x01" * 32)
    fork = sign_head(replace(fork.body, epoch=3), world.ids["staff-1"])
    d.accept_head(fork, M, NOW_MS)
    m3, _ = world.new_epoch(M, ("client-1",))
    with pytest.raises(ChainBroken):
        d.accept_manifest(m3, M, NOW_MS)


# ---- finding 6: invite identity, handover, verification code ------------------------
def test_invite_key_hands_over_to_a_fresh_key_with_a_matching_code(world: World) -> None:
    secret = world.rng(32)
    invite = IdentityKey.from_invite_secret(secret, world.firm, "client-9")
    world.add_user("client-9", Role.CLIENT, key=invite)  # staff certify it before sending
    d = world.directory()
    assert d.certificate("client-9", invite.kid, NOW_MS).role is Role.CLIENT
    fresh = IdentityKey.generate()
    h = sign_handover(
        HandoverBody(world.firm, "client-9", invite.kid, fresh.public, NOW_MS), invite
    )
    # staff (with the invite key's certificate) verify it and compare the code by phone
    cert = d.certificate("client-9", invite.kid, NOW_MS)
    got = verify_handover(h.encode(), cert.public, firm=world.firm, user="client-9")
    assert sas_code(world.firm, "client-9", got.new) == sas_code(
        world.firm, "client-9", fresh.public
    )
    # a server that knew R hands over to its own key: signed, but the code differs
    evil = IdentityKey.generate()
    h2 = sign_handover(replace(h.body, new=evil.public), invite)
    got2 = verify_handover(h2, cert.public, firm=world.firm, user="client-9")
    assert sas_code(world.firm, "client-9", got2.new) != sas_code(
        world.firm, "client-9", fresh.public
    )


# ---- finding 7: the custodian bot certifies and revokes recovered clients -----------
def test_unscoped_custodian_bot_certifies_and_revokes_clients(world: World) -> None:
    k = IdentityKey.generate()
    world.add_user("client-9", Role.CLIENT, issuer="custodian", key=k)
    d = world.directory()
    assert d.certificate("client-9", k.kid, NOW_MS).issuer == "custodian"
    rev = RevocationBody(
        world.firm, "client-9", k.kid, 1, NOW_MS - 1, "custodian", world.ids["custodian"].kid
    )
    d.add_revocation(revoke(rev, world.ids["custodian"]), NOW_MS)
    with pytest.raises(Revoked):
        d.certificate("client-9", k.kid, NOW_MS)


@pytest.mark.parametrize("issuer", ["bot-1", "scoped-custodian", "staff-plain"])
def test_other_bots_and_plain_staff_cannot_certify_clients(world: World, issuer: str) -> None:
    if issuer == "scoped-custodian":
        world.add_user(issuer, Role.BOT, flags=Flag.CUSTODIAN, scopes=(M,))
    elif issuer == "staff-plain":
        world.add_user(issuer, Role.STAFF)
    d = world.directory()
    k = IdentityKey.generate()
    body = replace(
        world.certs["client-1"].body,
        user="client-9",
        x_pk=k.public.x_pk,
        ed_pk=k.public.ed_pk,
        issuer=issuer,
        issuer_kid=world.ids[issuer].kid,
    )
    with pytest.raises(Uncertified):
        d.add_certificate(issue(body, world.ids[issuer]), NOW_MS)
    rev = RevocationBody(
        world.firm, "client-1", world.ids["client-1"].kid, 1, NOW_MS, issuer, world.ids[issuer].kid
    )
    with pytest.raises(Uncertified):
        d.add_revocation(revoke(rev, world.ids[issuer]), NOW_MS)


def test_frk_client_revocation_is_total(world: World) -> None:
    """An RTV1 signed by the root itself (any key) ends everything, as a compromise."""
    world.new_epoch(M, ("client-1", "client-2"), ts_ms=NOW_MS - DAY // 2)
    d = world.reader("client-2", M)
    old = _post(d, world, "client-1", NOW_MS - DAY // 2)
    rev = RevocationBody(
        world.firm, "client-1", world.ids["client-1"].kid, 1, NOW_MS, FRK_ISSUER, world.frk.kid
    )
    d.add_revocation(revoke(rev, world.frk), NOW_MS)
    with pytest.raises(Revoked):
        _open(d, old)
