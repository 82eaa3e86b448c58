"""The Python client's sans-I/O flows end to end over an in-memory record store.

Every record is made by ``rtportal.sdk``'s flows and checked by its sync
(``rtportal.crypto`` underneath), as the server would store and serve them:
set-up, approval, invite -> welcome -> reply, removal, regenerate, and a
staff member leaving. The same flows run against the real server in
``test_sdk_server.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rtportal.crypto.envelope import Body
from rtportal.crypto.errors import Revoked, StaleEpochWrite, WrongContext
from rtportal.crypto.keys import IdentityKey
from rtportal.crypto.rng import DeterministicRng
from rtportal.sdk import epochs, firmkeys, invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import PinMismatch
from rtportal.sdk.state import TrustState
from tests.support.sdkstore import FIRM, NOW, M, read, set_up, view


def test_every_flow_over_the_record_store(tmp_path: Path) -> None:
    rng = DeterministicRng(b"sdk-flows")
    frk, admin, store, admin_state = set_up(rng)
    assert set(admin.firm_keys) == {1}

    # staff onboarding: s2 registers, the admin approves with the FRK
    sam = Actor(FIRM, "s2", IdentityKey.generate(rng))
    approval = firmkeys.approve_staff(
        frk, admin, [("s2", sam.identity.public)], now_ms=NOW, rng=rng
    )
    store.certs += approval.body()["certs"]  # type: ignore[arg-type]
    store.firm_wraps += approval.body()["wraps"]  # type: ignore[arg-type]
    sam_state = TrustState(FIRM, "s2")
    with pytest.raises(PinMismatch):
        view(store, sam, sam_state)  # nothing pinned yet: the fingerprint must be given
    view(store, sam, sam_state, pin=frk.public.fingerprint)
    assert set(sam.firm_keys) == {1}

    # invite c7 with no client online; the client accepts from the link alone
    d = view(store, admin, admin_state)
    rnd = invitekeys.invite_round(
        d, admin, matter=M, welcomes=[(7, Body("Welcome", "hello c7"))], now_ms=NOW, rng=rng
    )
    store.client_certs += rnd.crypto_body()["certs"]  # type: ignore[arg-type]
    store.epoch(rnd.epoch)
    store.post(rnd.welcome[7], "welcome")
    link = invitekeys.accept_link("https://p.example", "tok", rnd.invitees[0].secret, frk.public)
    token, secret, frk_fp = invitekeys.parse_accept_fragment(link)
    assert token == "tok"
    client = Actor(FIRM, "c7", records.invite_identity(secret, FIRM, "c7"))
    client_state = TrustState(FIRM, "c7", frk_fp)
    [welcome] = read(store, client, client_state)
    assert (welcome.thread, welcome.body.text, welcome.sender) == ("welcome-7", "hello c7", "s1")
    d = view(store, client, client_state)
    reply = messages.seal(d, client, matter=M, thread="welcome-7", body=Body("", "hi"), now_ms=NOW)
    seq = store.post(reply)
    client_state.matter(M).remember(reply.header.msg_id, seq)
    assert [i.body.text for i in read(store, sam, sam_state)] == ["hello c7", "hi"]
    assert [i.body.text for i in read(store, sam, sam_state)] == ["hello c7", "hi"]  # re-read
    replayed = dict(store.events[-1], seq=99)
    with pytest.raises(Exception, match="msg_id"):
        messages.open_event(view(store, sam, sam_state), sam_state.matter(M), replayed, NOW)

    # regenerate: a new key from R' (a new device) reads the history again; the old key is revoked
    d = view(store, admin, admin_state)
    reg = invitekeys.regenerate(d, admin, matter=M, contact_id=7, now_ms=NOW + 1, rng=rng)
    store.client_certs += reg.certs_body()["certs"]  # type: ignore[arg-type]
    store.epoch(reg.epoch)
    store.wraps += reg.wraps_body()["wraps"]  # type: ignore[arg-type]
    store.client_revocations += reg.revocations_body()["revocations"]  # type: ignore[arg-type]
    assert len(reg.revocations) == 1
    old_client, client = (
        client,
        Actor(FIRM, "c7", records.invite_identity(reg.invitee.secret, FIRM, "c7")),
    )
    client_state = TrustState(FIRM, "c7", frk.public.fingerprint)
    d = view(store, client, client_state)
    assert d.current_epoch(M) == 2
    with pytest.raises(Revoked):
        d.certificate("c7", old_client.kid, NOW + 2)  # revoked from NOW + 1 on
    staff_written = [e for e in store.events if e["kind"] == "welcome"]
    opened = [messages.open_event(d, client_state.matter(M), e, NOW) for e in staff_written]
    assert [i.body.text for i in opened if i] == ["hello c7"]
    reply = messages.seal(
        d, client, matter=M, thread="welcome-7", body=Body("", "again"), now_ms=NOW + 2
    )
    store.post(reply)

    # removal: the next epoch leaves c7 out; c7 cannot write or read anything new
    d = view(store, admin, admin_state)
    store.epoch(invitekeys.removal(d, admin, matter=M, user="c7", now_ms=NOW + 3, rng=rng))
    d = view(store, admin, admin_state)
    store.post(
        messages.seal(d, admin, matter=M, thread="t", body=Body("", "after"), now_ms=NOW + 4)
    )
    d = view(store, client, client_state)
    with pytest.raises(WrongContext):
        messages.seal(d, client, matter=M, thread="t", body=Body("", "x"), now_ms=NOW + 5)
    with pytest.raises(StaleEpochWrite):
        d.seal_message(
            client.identity,
            sender_id="c7",
            matter=M,
            thread="t",
            plaintext=b"x",
            ts_ms=NOW,
            ctype="rtp1/text",
            epoch=1,
        )
    with pytest.raises(WrongContext):  # the staff message after the removal
        messages.open_event(d, client_state.matter(M), store.events[-1], NOW)

    # a staff member leaves: FEK v2 for the others, every matter moves to a new epoch
    d = view(store, admin, admin_state)
    current = records.decode_revocation_list(sync.decode(store.revocations[-1]))
    rot = firmkeys.rotate_escrow(
        frk,
        admin,
        current=current,
        leaving=[("s2", sam.kid)],
        remaining=[("s1", admin.identity.public)],
        now_ms=NOW + 5,
        rng=rng,
    )
    store.revocations.append(str(rot.revocations_body()["list"]))
    store.escrow.append(str(rot.escrow_body()["record"]))
    store.firm_wraps += rot.escrow_body()["wraps"]  # type: ignore[arg-type]
    d = view(store, admin, admin_state)
    assert set(admin.firm_keys) == {1, 2}
    bundle = epochs.next_epoch(
        d, admin, matter=M, members=epochs.current_members(d, M), now_ms=NOW + 6, rng=rng
    )
    assert bundle.manifest.body.fek_version == 2
    store.epoch(bundle)
    d = view(store, admin, admin_state)
    store.post(
        messages.seal(d, admin, matter=M, thread="t", body=Body("", "secret"), now_ms=NOW + 7)
    )
    # what Sam took with him (identity, FEK v1) opens nothing new
    d = sync.verify_firm(store.firm(), sam_state, sam, NOW)
    sync.verify_matter(d, store.matter(), sam_state, sam, M, NOW)
    with pytest.raises(WrongContext):
        messages.open_event(d, sam_state.matter(M), store.events[-1], NOW)


def test_state_file_round_trip_is_private(tmp_path: Path) -> None:
    state = TrustState(FIRM, "c7", bytes(32))
    state.cert_serials[("s1", bytes(16))] = 5
    state.matter(M).epoch, state.matter(M).hash = 3, bytes(range(32))
    state.matter(M).remember(bytes(16), 4)
    path = tmp_path / "state.json"
    state.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert TrustState.load(path, firm=FIRM, user="c7") == state
    with pytest.raises(Exception, match="another firm or user"):
        TrustState.load(path, firm=FIRM, user="c8")
