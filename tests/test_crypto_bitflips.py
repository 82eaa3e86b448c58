"""Property: any single bit flip in any signed or encrypted rtp1 object is rejected."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtportal.crypto import attachment as att
from rtportal.crypto import backup as bk
from rtportal.crypto import recovery as rec
from rtportal.crypto.certs import Flag, Role
from rtportal.crypto.keys import IdentityKey
from rtportal.errors import CryptoInvalid
from tests.support.crypto.world import NOW_MS, World

M = "M-1"
W = World()
W.add_user("staff-1", Role.STAFF, flags=Flag.CERTIFY_CLIENTS)
W.add_user("client-1", Role.CLIENT)
MANIFEST, _ = W.new_epoch(M, ("client-1",))
WRAP = W.wrap_mek(M, 1, "client-1").encode()
CERT = W.certs["client-1"].encode()
FAST = bk.Argon2Params(bk.MIN_M_KIB, bk.MIN_T, 1)  # the library floor (~30 ms)
SALT = os.urandom(16)
_KEYS = bk.derive_password_keys("pw", SALT, FAST)
BACKUP = bk.create_backup("firm-1", "client-1", _KEYS.kek,
                          bk.BackupContents(IdentityKey.generate(), bytes(32)), params=FAST,
                          salt=SALT).encode()  # fmt: skip
CODE = rec.new_code()
PROOF = rec.prove(CODE, "firm-1", "client-1", IdentityKey.generate().public).encode()
# flips in m_kib/t could ask Argon2 for up to 256 MiB: those bytes are covered by
# test_crypto_backup.py::test_every_backup_field_is_authenticated instead
_P = BACKUP.index(b"\x00\x04\x00\x00\x4c\x00\x00\x04\x00\x00\x00\x02") + 2
EXCLUDED = {"backup": range(_P, _P + 10)}
ATT_ID, FK, ATT = att.encrypt_bytes(os.urandom(att.CHUNK + 3))
ATT_SHA256 = hashlib.sha256(ATT).digest()


def open_manifest(b: bytes) -> None:
    W.directory().accept_manifest(b, M, NOW_MS)


def open_wrap(b: bytes) -> None:
    d = W.directory()
    d.accept_manifest(MANIFEST, M, NOW_MS)
    d.unwrap(b, W.mek_info(M, 1, "client-1"), W.ids["client-1"].x_sk, NOW_MS)


def open_cert(b: bytes) -> None:
    from rtportal.crypto.directory import Directory

    d = Directory(W.firm, W.frk.public)
    d.add_certificate(W.certs["staff-1"], NOW_MS)
    d.add_certificate(b, NOW_MS)


def open_recovery(b: bytes) -> None:
    rec.verify_proof(CODE, rec.RecoveryProof.decode(b), firm="firm-1", user="client-1")


OBJECTS: dict[str, tuple[bytes, Callable[[bytes], object]]] = {
    "manifest": (MANIFEST.encode(), open_manifest),
    "wrap": (WRAP, open_wrap),
    "certificate": (CERT, open_cert),
    "backup": (BACKUP, lambda b: bk.open_backup(b, "pw")),
    "recovery": (PROOF, open_recovery),
    "attachment": (ATT, lambda b: att.decrypt_bytes(FK, ATT_ID, b, ct_sha256=ATT_SHA256)),
}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_untouched_objects_open(name: str) -> None:
    blob, opener = OBJECTS[name]
    opener(blob)


@pytest.mark.parametrize("name", list(OBJECTS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_single_bit_flip_rejected(name: str, data: st.DataObject) -> None:
    blob, opener = OBJECTS[name]
    skip = EXCLUDED.get(name, range(0))
    bit = data.draw(
        st.integers(0, len(blob) * 8 - 1).filter(lambda b: b // 8 not in skip), label="bit"
    )
    flipped = bytearray(blob)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoInvalid):
        opener(bytes(flipped))
