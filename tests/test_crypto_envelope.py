"""Message envelopes: seal/open, every AAD field, replay, staff-only content, bit flips."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtportal.crypto.certs import Flag, Role
from rtportal.crypto.envelope import CTYPE_BODY, CTYPE_TEXT, Body, Envelope, Header, Visibility
from rtportal.crypto.errors import (
    DecryptFailed,
    EncodingInvalid,
    Replay,
    SignatureInvalid,
    StaleEpochWrite,
    Uncertified,
    WrongContext,
)
from rtportal.errors import CryptoInvalid
from tests.support.crypto.world import NOW_MS, World

M, T = "M-1", "thread-1"


def make_world() -> World:
    w = World()
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("bot-1", Role.BOT, scopes=(M,))
    w.add_user("client-1", Role.CLIENT)
    w.add_user("client-2", Role.CLIENT)
    w.new_epoch(M, ("client-1", "client-2", "bot-1"))
    return w


@pytest.fixture
def world() -> World:
    return make_world()


def send(world: World, sender: str, text: str = "hello", **kw: object) -> Envelope:
    d = world.reader(sender, M)
    return d.seal_message(world.ids[sender], sender_id=sender, matter=M, thread=T,
                          plaintext=Body("", text).encode(), ts_ms=NOW_MS, ctype=CTYPE_BODY,
                          **kw)  # type: ignore[arg-type]  # fmt: skip


def test_client_message_read_by_staff_and_other_client(world: World) -> None:
    env = send(world, "client-1", "my passport")
    for reader in ("staff-1", "client-2"):
        h, cert, pt = world.reader(reader, M).open_message(env.encode(), matter=M, thread=T,
                                                           now_ms=NOW_MS)  # fmt: skip
        assert Body.decode(pt).text == "my passport"
        assert (h.sender, cert.role) == ("client-1", Role.CLIENT)


def test_bot_message_is_marked_by_its_certificate(world: World) -> None:
    env = send(world, "bot-1", "status: received")
    _, cert, _ = world.reader("client-1", M).open_message(env, matter=M, thread=T, now_ms=NOW_MS)
    assert cert.role is Role.BOT


def test_staff_only_note_unreadable_by_clients(world: World) -> None:
    staff = world.reader("staff-1", M)
    env = staff.seal_message(world.ids["staff-1"], sender_id="staff-1", matter=M, thread=T,
                             plaintext=b"internal", ts_ms=NOW_MS, ctype=CTYPE_TEXT,
                             vis=Visibility.STAFF)  # fmt: skip
    assert world.reader("staff-1", M).open_message(env, matter=M, thread=T, now_ms=NOW_MS)[2] == (
        b"internal"
    )
    with pytest.raises(Uncertified):  # the client has no FIR
        world.reader("client-1", M).open_message(env, matter=M, thread=T, now_ms=NOW_MS)


def test_client_cannot_write_staff_only(world: World) -> None:
    """Even with the right key, a client's vis=1 message is refused by readers."""
    staff = world.reader("staff-1", M)
    hd = Header(world.firm, M, T, os.urandom(16), None, "client-1", world.ids["client-1"].kid, 1,
                Visibility.STAFF, NOW_MS, CTYPE_TEXT)  # fmt: skip
    from rtportal.crypto.envelope import seal_envelope
    from rtportal.crypto.kdf import internal_key

    env = seal_envelope(
        hd, internal_key(world.fek.fir, world.firm, M, 1), b"x", world.ids["client-1"]
    )
    with pytest.raises(Uncertified):
        staff.open_message(env, matter=M, thread=T, now_ms=NOW_MS)


def test_replay_rejected(world: World) -> None:
    env = send(world, "client-1")
    d = world.reader("client-2", M)
    d.open_message(env, matter=M, thread=T, now_ms=NOW_MS)
    with pytest.raises(Replay):
        d.open_message(env, matter=M, thread=T, now_ms=NOW_MS)


def test_own_message_echo_is_a_replay(world: World) -> None:
    d = world.reader("client-1", M)
    env = d.seal_message(world.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                         plaintext=b"x", ts_ms=NOW_MS, ctype=CTYPE_TEXT)  # fmt: skip
    with pytest.raises(Replay):
        d.open_message(env, matter=M, thread=T, now_ms=NOW_MS)


# Header field name -> a changed value of that field's type (the types differ)
HEADER_CHANGES: dict[str, Any] = {
    "v": None,  # only version 1 exists: a changed v is an encoding error
    "firm": "firm-2",
    "matter": "M-2",
    "thread": "thread-2",
    "msg_id": b"\x01" * 16,
    "parent": b"\x02" * 16,
    "sender": "client-2",
    "sender_kid": b"\x03" * 16,
    "epoch": 2,
    "vis": Visibility.STAFF,
    "ts_ms": NOW_MS + 1,
    "ctype": CTYPE_TEXT,
}


@pytest.mark.parametrize("field", list(HEADER_CHANGES))
def test_every_aad_field_changed_is_rejected(world: World, field: str) -> None:
    env = send(world, "client-1")
    reader = world.reader("staff-1", M)
    if field == "v":
        blob = env.encode()
        at = blob.index(b"RTM1") + 4 + 2  # the u8 version inside the AAD
        with pytest.raises(EncodingInvalid):
            Envelope.decode(blob[:at] + b"\x02" + blob[at + 1 :])
        return
    changed = replace(env, header=replace(env.header, **{field: HEADER_CHANGES[field]}))
    # the reader is shown the thread the (rewritten) message claims, as a server would arrange
    h = changed.header
    if h.firm != world.firm:
        with pytest.raises(WrongContext):
            reader.open_message(changed.encode(), matter=M, thread=T, now_ms=NOW_MS)
        return
    with pytest.raises(CryptoInvalid) as e:
        reader.open_message(changed.encode(), matter=h.matter, thread=h.thread, now_ms=NOW_MS)
    assert e.value.code in {"crypto_signature", "crypto_uncertified", "crypto_wrong_context"}
    # and no field change ever leaves the original message unreadable to a correct reader
    assert reader.open_message(env, matter=M, thread=T, now_ms=NOW_MS)[2]


def test_moved_message_rejected_even_when_header_matches(world: World) -> None:
    env = send(world, "client-1")
    reader = world.reader("staff-1", M)
    with pytest.raises(WrongContext):
        reader.open_message(env, matter=M, thread="thread-2", now_ms=NOW_MS)
    moved = replace(env, header=replace(env.header, thread="thread-2"))
    with pytest.raises(SignatureInvalid):
        reader.open_message(moved, matter=M, thread="thread-2", now_ms=NOW_MS)


def test_non_member_and_stale_epoch_writes(world: World) -> None:
    world.new_epoch(M, ("client-1",))  # client-2 removed
    w2 = world.reader("client-1", M)
    with pytest.raises(StaleEpochWrite):
        w2.seal_message(world.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                        plaintext=b"x", ts_ms=NOW_MS, ctype=CTYPE_TEXT, epoch=1)  # fmt: skip
    env = w2.seal_message(world.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                          plaintext=b"x", ts_ms=NOW_MS, ctype=CTYPE_TEXT)  # fmt: skip
    assert env.header.epoch == 2
    removed = world.reader("client-2", M)  # sees the manifests, gets no epoch-2 key
    with pytest.raises(WrongContext):
        removed.open_message(env, matter=M, thread=T, now_ms=NOW_MS)
    # a message the removed client signs under the new epoch is not from a member
    from rtportal.crypto.envelope import seal_envelope
    from rtportal.crypto.kdf import message_key

    hd = Header(world.firm, M, T, os.urandom(16), None, "client-2", world.ids["client-2"].kid, 2,
                Visibility.PORTAL, NOW_MS, CTYPE_TEXT)  # fmt: skip
    forged = seal_envelope(hd, message_key(world.chains[M].meks[2], world.firm, M, 2), b"x",
                           world.ids["client-2"])  # fmt: skip
    with pytest.raises(Uncertified):
        world.reader("staff-1", M).open_message(forged, matter=M, thread=T, now_ms=NOW_MS)


def test_wrong_lengths_rejected(world: World) -> None:
    env = send(world, "client-1")
    for bad in (
        replace(env, nonce=b"\x00" * 11),
        replace(env, sig=env.sig[:63]),
        replace(env, ct=b"\x00" * 15),
    ):
        with pytest.raises(EncodingInvalid):
            Envelope.decode(bad.encode())


_FLIP_WORLD = make_world()
_FLIP_ENV = send(_FLIP_WORLD, "client-1", "bit flip target")
_FLIP_BLOB = _FLIP_ENV.encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_FLIP_BLOB) * 8 - 1))
def test_any_single_bit_flip_is_rejected(bit: int) -> None:
    blob = bytearray(_FLIP_BLOB)
    blob[bit // 8] ^= 1 << (bit % 8)
    reader = _FLIP_WORLD.reader("staff-1", M)  # fresh state: a flip is never a mere replay
    with pytest.raises(CryptoInvalid):
        reader.open_message(bytes(blob), matter=M, thread=T, now_ms=NOW_MS)


def test_decrypt_failure_with_valid_signature(world: World) -> None:
    env = send(world, "client-1")
    flipped = replace(env, ct=bytes([env.ct[0] ^ 1]) + env.ct[1:])
    flipped = replace(flipped, sig=world.ids["client-1"].sign(flipped.sig_input()))
    with pytest.raises(DecryptFailed):
        world.reader("staff-1", M).open_message(flipped, matter=M, thread=T, now_ms=NOW_MS)


@pytest.mark.parametrize(("ctype", "pt"), [(CTYPE_TEXT, b"\xff\xfe"), (CTYPE_BODY, b"RTB1\x00")])
def test_plaintext_must_match_its_ctype(world: World, ctype: str, pt: bytes) -> None:
    """Signed and authentic, but not what ctype says: crypto_encoding, msg_id not burnt (as JS)."""
    w = world.reader("client-1", M)
    env = w.seal_message(world.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                         plaintext=pt, ts_ms=NOW_MS, ctype=ctype)  # fmt: skip
    reader = world.reader("staff-1", M)
    for _ in range(2):  # the second time too: a rejected message is not recorded as seen
        with pytest.raises(EncodingInvalid):
            reader.open_message(env, matter=M, thread=T, now_ms=NOW_MS)
    good = w.seal_message(world.ids["client-1"], sender_id="client-1", matter=M, thread=T,
                          plaintext="ünïcode".encode(), ts_ms=NOW_MS, ctype=CTYPE_TEXT)  # fmt: skip
    assert reader.open_message(good, matter=M, thread=T, now_ms=NOW_MS)[2] == "ünïcode".encode()
