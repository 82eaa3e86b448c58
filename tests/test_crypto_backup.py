"""Login secret, key backup (Argon2id) and recovery-code proofs."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from rtportal.crypto import backup as bk
from rtportal.crypto import recovery as rec
from rtportal.crypto.errors import DecryptFailed, EncodingInvalid, RecoveryInvalid, WrongContext
from rtportal.crypto.keys import FirmRootKey, IdentityKey

FAST = bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T, 1)  # the floor (~30 ms); defaults tested once


def make(
    password: str, params: bk.Argon2Params = FAST
) -> tuple[bytes, bk.BackupContents, bk.PasswordKeys]:
    salt = os.urandom(16)
    keys = bk.derive_password_keys(password, salt, params)
    contents = bk.BackupContents(IdentityKey.generate(), FirmRootKey.generate().public.fingerprint)
    b = bk.create_backup("firm-1", "client-1", keys.kek, contents, params=params, salt=salt)
    return b.encode(), contents, keys


def test_backup_unlocks_with_default_parameters() -> None:
    assert bk.DEFAULT_PARAMS == bk.Argon2Params(65536, 3, 1)
    blob, contents, keys = make("pässword ✓", bk.DEFAULT_PARAMS)
    backup, got_keys, got = bk.open_backup(blob, "pässword ✓")
    assert got == contents
    assert got_keys == keys
    assert backup.params == bk.DEFAULT_PARAMS


def test_login_secret_and_kek_are_independent() -> None:
    keys = bk.derive_password_keys("pw", os.urandom(16), FAST)
    assert keys.login_secret != keys.kek
    assert len(keys.login_secret) == len(keys.kek) == 32


def test_empty_password_refused() -> None:
    with pytest.raises(EncodingInvalid):
        bk.derive_password_keys("", os.urandom(16), FAST)


def test_wrong_password_rejected() -> None:
    blob, _, _ = make("right")
    with pytest.raises(DecryptFailed):
        bk.open_backup(blob, "wrong")


@pytest.mark.parametrize("field", ["firm", "user", "params", "salt", "nonce", "ct"])
def test_every_backup_field_is_authenticated(field: str) -> None:
    blob, _, _ = make("pw")
    b = bk.Backup.decode(blob)
    changes = {
        "firm": {"firm": "firm-2"},
        "user": {"user": "client-2"},
        "params": {"params": bk.Argon2Params(bk.MIN_M_KIB + 1024, bk.MIN_T, 1)},
        "salt": {"salt": os.urandom(16)},
        "nonce": {"nonce": os.urandom(12)},
        "ct": {"ct": bytes([b.ct[0] ^ 1]) + b.ct[1:]},
    }
    with pytest.raises(DecryptFailed):
        bk.open_backup(replace(b, **changes[field]).encode(), "pw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [bk.Argon2Params(2_000_000, 3, 1), bk.Argon2Params(65536, 0, 1), bk.Argon2Params(65536, 99, 1),
     bk.Argon2Params(65536, 3, 0), bk.Argon2Params(7, 1, 1), bk.Argon2Params(65536, 3, 9),
     # inside the old 1 GiB / t=16 bounds, outside the tightened ones (256 MiB, t=10)
     bk.Argon2Params(1_048_576, 3, 1), bk.Argon2Params(262_145, 3, 1),
     bk.Argon2Params(65536, 11, 1), bk.Argon2Params(65536, 16, 1)],
    ids=str,
)  # fmt: skip
def test_hostile_parameters_refused_before_work(params: bk.Argon2Params) -> None:
    blob, _, _ = make("pw")
    b = replace(bk.Backup.decode(blob), params=params)
    with pytest.raises(EncodingInvalid):
        bk.open_backup(b.encode(), "pw")


def test_backup_wrong_lengths() -> None:
    blob, _, _ = make("pw")
    with pytest.raises(EncodingInvalid):
        bk.open_backup(blob[:-1], "pw")
    with pytest.raises(EncodingInvalid):
        bk.open_backup(blob + b"\x00", "pw")


# ---- recovery -------------------------------------------------------------------
def test_recovery_code_text_and_link_round_trip() -> None:
    code = rec.new_code()
    text = rec.code_text(code)
    assert len(text.replace("-", "")) == 26 and text.count("-") == 6
    assert rec.parse_code(text) == code
    assert rec.parse_code(text.lower().replace("-", " ")) == code
    assert rec.code_from_link(rec.code_link(code)) == code
    for bad in ("", text[:-1], text + "A", text.replace(text[0], "1", 1)):
        with pytest.raises(EncodingInvalid):
            rec.parse_code(bad)


def test_recovery_proof_verifies_and_binds_everything() -> None:
    code = rec.new_code()
    new = IdentityKey.generate().public
    proof = rec.prove(code, "firm-1", "client-1", new)
    got = rec.verify_proof(code, rec.RecoveryProof.decode(proof.encode()), firm="firm-1",
                           user="client-1")  # fmt: skip
    assert got == new
    with pytest.raises(RecoveryInvalid):  # wrong code
        rec.verify_proof(rec.new_code(), proof, firm="firm-1", user="client-1")
    with pytest.raises(RecoveryInvalid):  # the server substitutes its own key
        rec.verify_proof(code, replace(proof, public=IdentityKey.generate().public), firm="firm-1",
                         user="client-1")  # fmt: skip
    with pytest.raises(RecoveryInvalid):  # proof for another user
        rec.verify_proof(code, proof, firm="firm-1", user="client-2")
    relabelled = rec.RecoveryProof("firm-1", "client-2", new, proof.proof)
    with pytest.raises(RecoveryInvalid):
        rec.verify_proof(code, relabelled, firm="firm-1", user="client-2")


def test_backup_of_another_user_refused_before_work() -> None:
    blob, contents, _ = make("pw")
    _, _, got = bk.open_backup(blob, "pw", firm="firm-1", user="client-1")
    assert got == contents
    with pytest.raises(WrongContext):
        bk.open_backup(blob, "pw", firm="firm-1", user="client-2")
    huge = replace(bk.Backup.decode(blob), params=bk.Argon2Params(1 << 30, 1, 1))
    with pytest.raises(WrongContext):  # context first: no Argon2 run for someone else's blob
        bk.open_backup(huge.encode(), "pw", firm="firm-2", user="client-1")


def test_recovery_link_is_strict_canonical_base64url() -> None:
    code = bytes(range(0, 16 * 17, 17))
    link = rec.code_link(code)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bumped = link[:-1] + alphabet[alphabet.index(link[-1]) ^ 1]  # same bytes, non-zero pad bits
    assert rec.code_from_link(link) == code
    for bad in (bumped, link + "=", link + "==", "+" + link[1:], link[:10] + " " + link[10:],
                link[:10] + "!" + link[10:], link + "A", ""):  # fmt: skip
        with pytest.raises(EncodingInvalid):
            rec.code_from_link(bad)


def test_parameter_bounds_are_inclusive() -> None:
    """The largest accepted parameters pass the check (no Argon2 run here: check() only)."""
    bk.Argon2Params(bk.MAX_M_KIB, bk.MAX_T, bk.MAX_P).check()
    bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T, 1).check()
    assert (bk.MAX_M_KIB, bk.MAX_T, bk.MAX_P) == (262_144, 10, 8)
    assert (bk.MIN_M_KIB, bk.MIN_T) == (19_456, 2)


def test_recovery_code_separators_match_javascript() -> None:
    code = bytes(range(16))
    text = rec.code_text(code)
    assert rec.parse_code(text.replace("-", "\r\n", 2).replace("-", "\t", 1)) == code
    with pytest.raises(EncodingInvalid):  # a Unicode space is not a separator in either language
        rec.parse_code(text.replace("-", "\u00a0", 1))
