"""The Python client's sans-I/O flows end to end over an in-memory record store.

Every record is made by ``rtportal.sdk``'s flows and checked by its sync
(``rtportal.crypto`` underneath), as the server would store and serve them:
set-up, approval, invite -> welcome -> reply, removal, regenerate, and a
staff member leaving. The same flows run against the real server in
``test_sdk_server.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtportal import base64url
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import Body, Envelope
from rtportal.crypto.errors import Revoked, StaleEpochWrite, WrongContext
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.crypto.rng import DeterministicRng
from rtportal.sdk import epochs, firmkeys, invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import PinMismatch
from rtportal.sdk.state import TrustState

FIRM = "acme"
M = "AAAA0002"
NOW = 1_800_000_000_000


def b64(data: bytes) -> str:
    return base64url.encode(data)


@dataclass
class Store:
    """What the key directory stores, in the shapes its API serves."""

    frk: str
    revocations: list[str] = field(default_factory=list)
    client_revocations: list[str] = field(default_factory=list)
    escrow: list[str] = field(default_factory=list)
    certs: list[str] = field(default_factory=list)
    client_certs: list[str] = field(default_factory=list)
    firm_wraps: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    wraps: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def firm(self) -> dict[str, Any]:
        return {
            "frk": self.frk,
            "revocations": {"list": self.revocations[-1], "client": self.client_revocations},
            "escrow": self.escrow,
            "certs": self.certs,
            "wraps": self.firm_wraps,
        }

    def matter(self) -> dict[str, Any]:
        return {
            "manifests": self.manifests,
            "head": self.heads[-1] if self.heads else None,
            "certs": self.client_certs,
            "wraps": self.wraps,
        }

    def epoch(self, bundle: epochs.EpochBundle) -> None:
        body = bundle.body()
        self.manifests.append(str(body["manifest"]))
        self.heads.append(str(body["head"]))
        self.wraps.extend(str(w) for w in body["wraps"])  # type: ignore[attr-defined]

    def post(self, env: Envelope, kind: str = "message") -> int:
        seq = len(self.events) + 1
        payload = {"thread": env.header.thread}
        self.events.append(
            {"matter": M, "seq": seq, "kind": kind, "payload": payload, "blob": b64(env.encode())}
        )
        return seq


def view(store: Store, actor: Actor, state: TrustState, pin: bytes | None = None) -> Directory:
    d = sync.verify_firm(store.firm(), state, actor, NOW, pin_frk=pin)
    sync.verify_matter(
        d, store.matter(), state, actor, M, NOW, client_revocations=store.client_revocations
    )
    return d


def read(store: Store, actor: Actor, state: TrustState) -> list[messages.Item]:
    d = view(store, actor, state)
    out = [messages.open_event(d, state.matter(M), e, NOW) for e in store.events]
    return [i for i in out if i is not None]


def test_every_flow_over_the_record_store(tmp_path: Path) -> None:
    rng = DeterministicRng(b"sdk-flows")
    frk = FirmRootKey.generate(rng)
    admin = Actor(FIRM, "s1", IdentityKey.generate(rng))
    setup = firmkeys.firm_setup(frk, admin, now_ms=NOW, rng=rng)
    store = Store(str(setup.root_body()["frk"]))
    store.certs += setup.certs_body()["certs"]  # type: ignore[arg-type]
    store.escrow.append(str(setup.escrow_body()["record"]))
    store.firm_wraps += setup.escrow_body()["wraps"]  # type: ignore[arg-type]
    store.revocations.append(str(setup.revocations_body()["list"]))
    admin_state = TrustState(FIRM, "s1", frk.public.fingerprint)
    admin.firm_keys.clear()
    view(store, admin, admin_state)
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
        d.certificate("c7", old_client.kid, NOW)
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
