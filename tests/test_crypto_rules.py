"""One rule each, in both languages (docs/security.md): the Python half of the negative tests.

static/crypto/test/rules.test.mjs holds the same cases for the JavaScript library.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtportal.crypto import attachment as att
from rtportal.crypto import backup as bk
from rtportal.crypto.certs import Certificate, Flag, Role, issue
from rtportal.crypto.edwards import check_ed25519_public
from rtportal.crypto.envelope import CTYPE_BODY, Body
from rtportal.crypto.errors import (
    AttachmentInvalid,
    EncodingInvalid,
    LowOrderPoint,
    StaleEpochWrite,
    Uncertified,
)
from rtportal.crypto.kdf import attachment_chunk_key
from rtportal.crypto.keys import IdentityKey
from rtportal.errors import InvalidConfig
from rtportal.settings import Settings
from tests.support.crypto.world import NOW_MS, World

M1, M2, T = "M-1", "M-2", "thread-1"
# the 8 small-order points (canonical encodings, both x signs where x != 0)
SMALL_ORDER = [
    "01" + "00" * 31,
    "ec" + "ff" * 30 + "7f",
    "00" * 32,
    "00" * 31 + "80",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]
# y >= p (p + 1, i.e. y = 1 again), and x = 0 with the sign bit set
NON_CANONICAL_ED = ["ee" + "ff" * 30 + "7f", "01" + "00" * 30 + "80"]


def _world() -> World:
    w = World()
    w.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
    w.add_user("staff-m2", Role.STAFF, scopes=(M2,))
    w.add_user("client-1", Role.CLIENT)
    return w


# ---- 3. certificate scope: one rule for every role ---------------------------------------


def test_scoped_staff_may_not_sign_another_matters_manifest() -> None:
    w = _world()
    m1, _ = w.new_epoch(M1, ("client-1",), creator="staff-m2")
    with pytest.raises(Uncertified):
        w.directory().accept_manifest(m1, M1, NOW_MS)
    m2, _ = w.new_epoch(M2, ("client-1",), creator="staff-m2")
    assert w.directory().accept_manifest(m2, M2, NOW_MS).epoch == 1


def test_scoped_staff_may_not_write_or_wrap_in_another_matter() -> None:
    w = _world()
    w.new_epoch(M1, ("client-1",))
    d = w.reader("staff-m2", M1)
    pt = Body("", "x").encode()
    env = d.seal_message(w.ids["staff-m2"], sender_id="staff-m2", matter=M1, thread=T,
                         plaintext=pt, ts_ms=NOW_MS, ctype=CTYPE_BODY)  # fmt: skip
    with pytest.raises(Uncertified):
        w.reader("client-1", M1).open_message(env.encode(), matter=M1, thread=T, now_ms=NOW_MS)
    wrap = w.wrap_mek(M1, 1, "client-1", wrapper="staff-m2")
    with pytest.raises(Uncertified):
        w.reader("staff-1", M1).unwrap(wrap, w.mek_info(M1, 1, "client-1"), bytes(32), NOW_MS)


# ---- 4. a serial tie never widens a certificate -----------------------------------------


def _recertify(w: World, user: str, **changes: object) -> Certificate:
    body = replace(w.certs[user].body, **changes)  # type: ignore[arg-type]
    return issue(body, w.frk)


def test_equal_serial_different_bytes_is_refused_and_the_first_kept() -> None:
    w = _world()
    d = w.directory()
    wider = _recertify(w, "staff-m2", scopes=())
    with pytest.raises(EncodingInvalid):
        d.add_certificate(wider, NOW_MS)
    with pytest.raises(EncodingInvalid):
        d.add_certificate(_recertify(w, "staff-m2", flags=Flag.CERTIFY_CLIENTS), NOW_MS)
    kept = d.certificate("staff-m2", w.ids["staff-m2"].kid, NOW_MS)
    assert kept.scopes == (M2,) and kept.flags == Flag(0)
    assert d.add_certificate(w.certs["staff-m2"].encode(), NOW_MS) == kept  # same bytes: no-op
    higher = _recertify(w, "staff-m2", serial=w.certs["staff-m2"].body.serial + 100, scopes=())
    assert d.add_certificate(higher, NOW_MS).scopes == ()  # a higher serial still replaces


# ---- 5. small-order and non-canonical Ed25519 keys are never certified -------------------


def test_small_order_ed25519_key_verifies_any_message_so_it_is_refused() -> None:
    identity = bytes.fromhex(SMALL_ORDER[0])
    forged = identity + bytes(32)  # R = identity, S = 0
    for msg in (b"pay 10", b"pay 10000"):  # why: the primitive alone accepts both
        Ed25519PublicKey.from_public_bytes(identity).verify(forged, msg)
    for pk in SMALL_ORDER:
        with pytest.raises(LowOrderPoint):
            check_ed25519_public(bytes.fromhex(pk))
    for pk in NON_CANONICAL_ED:
        with pytest.raises(EncodingInvalid):
            check_ed25519_public(bytes.fromhex(pk))
    good = IdentityKey.generate().public.ed_pk
    assert check_ed25519_public(good) == good


@pytest.mark.parametrize("pk", [SMALL_ORDER[0], SMALL_ORDER[4], NON_CANONICAL_ED[0]])
def test_weak_ed25519_key_refused_at_issue_decode_and_add(pk: str) -> None:
    w = _world()
    body = replace(w.certs["staff-1"].body, user="mallory", ed_pk=bytes.fromhex(pk))
    with pytest.raises((LowOrderPoint, EncodingInvalid)):
        issue(body, w.frk)
    signed = Certificate(body, w.frk.sign(body.encode()))  # an FRK holder skipping issue()
    with pytest.raises((LowOrderPoint, EncodingInvalid)):
        Certificate.decode(signed.encode())
    with pytest.raises((LowOrderPoint, EncodingInvalid)):
        w.directory().add_certificate(signed, NOW_MS)


# ---- 2 and 6. attachments: one chunk bound; ct_sha256 required; fresh ids ----------------


def test_final_chunk_of_65537_bytes_is_refused() -> None:
    att_id, fk = att.new_attachment()
    head = att.header(att_id)
    last = AESGCM(attachment_chunk_key(fk, att_id)).encrypt(
        (0).to_bytes(11, "big") + b"\x01", bytes(att.CHUNK + 1), head
    )
    blob = head + last
    with pytest.raises(AttachmentInvalid):
        att.decrypt_bytes(fk, att_id, blob, ct_sha256=hashlib.sha256(blob).digest())


def test_ct_sha256_is_required_to_decrypt() -> None:
    att_id, fk, blob = att.encrypt_bytes(b"scan")
    for missing in (None, b"", bytes(31)):
        with pytest.raises(EncodingInvalid):
            att.decrypt_bytes(fk, att_id, blob, ct_sha256=missing)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        att.AttachmentDecryptor(fk, att_id)  # type: ignore[call-arg]


def test_encryptor_draws_fresh_ids_and_a_splice_fails_the_hash() -> None:
    a, b = att.AttachmentEncryptor(), att.AttachmentEncryptor()
    assert (a.att_id, a.fk) != (b.att_id, b.fk)
    with pytest.raises(TypeError):  # no way to hand it a (fk, att_id) pair
        att.AttachmentEncryptor(b"\x01" * 32, b"\x02" * 16)  # type: ignore[arg-type, call-arg]
    # two files under one pair (only an injected, repeating rng can make that) splice cleanly
    # at the STREAM layer; the descriptor's ct_sha256 is what refuses the result
    ids = att.new_attachment()

    def same(n: int) -> bytes:
        return ids[0] if n == 16 else ids[1]

    att_id, fk, one = att.encrypt_bytes(bytes(att.CHUNK) + b"one", same)
    _, _, two = att.encrypt_bytes(bytes([1]) * att.CHUNK + b"two", same)
    cut = att.HEADER_LEN + att.CT_CHUNK
    spliced = two[:cut] + one[cut:]
    for digest in (hashlib.sha256(one).digest(), hashlib.sha256(two).digest()):
        with pytest.raises(AttachmentInvalid):
            att.decrypt_bytes(fk, att_id, spliced, ct_sha256=digest)


# ---- 7. a writer only writes under the newest verified epoch -----------------------------


def test_seal_without_a_verified_epoch_is_refused() -> None:
    w = _world()
    d = w.directory()  # no manifest accepted: nothing to write under
    with pytest.raises(StaleEpochWrite):
        d.seal_message(w.ids["staff-1"], sender_id="staff-1", matter=M1, thread=T,
                       plaintext=b"x", ts_ms=NOW_MS, ctype=CTYPE_BODY)  # fmt: skip


# ---- 8. Argon2id floor ------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [bk.Argon2Params(19455, 2, 1), bk.Argon2Params(19456, 1, 1), bk.Argon2Params(8, 1, 1)]
)
def test_argon2_params_below_the_floor_are_refused(params: bk.Argon2Params) -> None:
    with pytest.raises(EncodingInvalid):
        params.check()


def test_argon2_floor_itself_is_accepted_and_a_lowered_backup_refused() -> None:
    floor = bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T, 1)
    floor.check()
    salt = bytes(16)
    keys = bk.derive_password_keys("pw", salt, floor)
    contents = bk.BackupContents(IdentityKey.generate(), bytes(32))
    blob = bk.create_backup("f", "u", keys.kek, contents, params=floor, salt=salt).encode()
    lowered = replace(bk.Backup.decode(blob), params=bk.Argon2Params(bk.MIN_M_KIB, 1, 1))
    with pytest.raises(EncodingInvalid):  # a server lowering t cannot make a cheap oracle
        bk.open_backup(lowered.encode(), "pw")


@pytest.mark.parametrize(
    "env",
    [
        {"RTPORTAL_LOGIN_KDF_MIN_M_KIB": "64"},
        {"RTPORTAL_LOGIN_KDF_MIN_T": "1"},
        {"RTPORTAL_LOGIN_KDF_M_KIB": "1024"},
        {"RTPORTAL_LOGIN_KDF_T": "1"},
        {"RTPORTAL_LOGIN_KDF_MIN_M_KIB": "30000", "RTPORTAL_LOGIN_KDF_M_KIB": "20000"},
    ],
)
def test_settings_never_hand_out_params_below_the_floor(
    env: dict[str, str], tmp_path: Path
) -> None:
    base = {"RTPORTAL_DATA_DIR": str(tmp_path), "RTPORTAL_SECRET_KEY": "5e" * 32}
    with pytest.raises(InvalidConfig):
        Settings.from_env({**base, **env})
    ok = Settings.from_env(base)
    assert (ok.login_kdf_min_m_kib, ok.login_kdf_min_t) == (bk.MIN_M_KIB, bk.MIN_T)
