"""Known-answer tests from the standards' own tables (tests/vectors/standards.json).

The same JSON is read by the JavaScript tests, so both implementations are held
to identical tables: RFC 5869 HKDF, RFC 7748 X25519 (plus low-order rejection),
RFC 8032 §7.1 Ed25519, Argon2id, RFC 9180 HPKE; HPKE is also cross-checked
against ``cryptography``'s own implementation in both directions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rtportal.crypto import hpke
from rtportal.crypto.backup import MIN_M_KIB, MIN_T, Argon2Params, argon2id
from rtportal.crypto.errors import DecryptFailed, EncodingInvalid, LowOrderPoint
from rtportal.crypto.kdf import hkdf, hkdf_expand, hkdf_extract
from rtportal.crypto.keys import (
    FirmRootKey,
    check_x25519_public,
    ed25519_verify,
    x25519,
    x25519_public,
)

STD: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "standards.json").read_text(encoding="utf-8")
)


def u(s: str) -> bytes:
    return bytes.fromhex(s)


def test_tables_are_present() -> None:
    assert len(STD["hkdf"]) == 3
    assert len(STD["x25519"]) == 3
    assert len(STD["ed25519"]) == 4
    assert len(STD["argon2id"]) >= 3
    assert len(STD["hpke"]) == 1 and len(STD["hpke"][0]["encryptions"]) == 3
    assert len(STD["x25519_low_order"]) == 7
    assert set(STD["sources"]) >= {"hkdf", "x25519", "ed25519", "argon2id", "hpke"}


@pytest.mark.parametrize("v", STD["hkdf"], ids=lambda v: f"L{v['L']}")
def test_rfc5869_hkdf(v: dict[str, Any]) -> None:
    prk = hkdf_extract(u(v["salt"]), u(v["ikm"]))
    assert prk == u(v["prk"])
    assert hkdf_expand(prk, u(v["info"]), v["L"]) == u(v["okm"])
    assert hkdf(u(v["ikm"]), u(v["salt"]), u(v["info"]), v["L"]) == u(v["okm"])


def test_empty_salt_equals_32_zero_bytes() -> None:
    """The rule WebCrypto needs (docs/security.md §2) gives the RFC's own answer (A.3)."""
    v = STD["hkdf"][2]
    assert v["salt"] == ""
    assert hkdf(u(v["ikm"]), bytes(32), b"", v["L"]) == u(v["okm"])


@pytest.mark.parametrize("v", STD["x25519"], ids=lambda v: v["out"][:8])
def test_rfc7748_x25519(v: dict[str, Any]) -> None:
    assert x25519(u(v["scalar"]), u(v["u"])) == u(v["out"])


def test_rfc7748_x25519_iterated() -> None:
    k = u_ = bytes([9]) + bytes(31)
    want = {it["iterations"]: u(it["out"]) for it in STD["x25519_iterated"]}
    for i in range(1, max(want) + 1):
        k, u_ = x25519(k, u_), k
        if i in want:
            assert k == want[i], f"after {i} iterations"


@pytest.mark.parametrize("point", STD["x25519_low_order"], ids=lambda p: p[:6])
def test_x25519_low_order_points_rejected(point: str) -> None:
    sk = X25519PrivateKey.generate().private_bytes_raw()
    with pytest.raises(LowOrderPoint):
        x25519(sk, u(point))
    with pytest.raises(LowOrderPoint):
        check_x25519_public(u(point))
    with pytest.raises(LowOrderPoint):
        hpke.seal_base(u(point), b"info", b"", b"k" * 32)


def test_x25519_good_point_accepted() -> None:
    pk = x25519_public(os.urandom(32))
    assert check_x25519_public(pk) == pk


@pytest.mark.parametrize("v", STD["ed25519"], ids=lambda v: f"msg{len(v['msg']) // 2}")
def test_rfc8032_ed25519(v: dict[str, Any]) -> None:
    k = FirmRootKey(u(v["sk"]))
    assert k.public.ed_pk == u(v["pk"])
    assert k.sign(u(v["msg"])) == u(v["sig"])
    ed25519_verify(u(v["pk"]), u(v["sig"]), u(v["msg"]))
    bad = bytearray(u(v["sig"]))
    bad[0] ^= 1
    with pytest.raises(Exception, match="does not verify"):
        ed25519_verify(u(v["pk"]), bytes(bad), u(v["msg"]))


@pytest.mark.parametrize("v", STD["argon2id"], ids=lambda v: f"m{v['m_kib']}t{v['t']}p{v['p']}")
def test_argon2id_vectors(v: dict[str, Any]) -> None:
    """The standards' vectors use parameters below rtp1's floor (Argon2Params.check refuses
    them), so they check argon2-cffi, the primitive argon2id() calls, directly."""
    out = hash_secret_raw(secret=u(v["password"]), salt=u(v["salt"]), time_cost=v["t"],
                          memory_cost=v["m_kib"], parallelism=v["p"], hash_len=v["length"],
                          type=Type.ID, version=19)  # fmt: skip
    assert out == u(v["out"])
    params = Argon2Params(v["m_kib"], v["t"], v["p"])
    if params.m_kib >= MIN_M_KIB and params.t >= MIN_T:
        assert argon2id(u(v["password"]), u(v["salt"]), params, v["length"]) == out


def test_rfc9106_argon2id_with_secret_and_ad() -> None:
    """RFC 9106 §5.3 needs secret and ad, which argon2-cffi cannot pass: check the RFC answer
    with cryptography's Argon2id, then that it agrees with argon2-cffi on rtp1's parameters."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    (v,) = STD["argon2id_rfc9106"]
    kdf = Argon2id(salt=u(v["salt"]), length=v["length"], iterations=v["t"], lanes=v["p"],
                   memory_cost=v["m_kib"], ad=u(v["ad"]), secret=u(v["secret"]))  # fmt: skip
    assert kdf.derive(u(v["password"])) == u(v["out"])
    salt, pw = os.urandom(16), "pässword".encode()
    ours = argon2id(pw, salt, Argon2Params())
    theirs = Argon2id(salt=salt, length=64, iterations=3, lanes=1, memory_cost=65536).derive(pw)
    assert ours == theirs


HPKE = STD["hpke"][0]


def test_rfc9180_hpke_encap_and_key_schedule() -> None:
    shared, enc = hpke.encap(u(HPKE["pkRm"]), u(HPKE["skEm"]))
    assert enc == u(HPKE["enc"]) == u(HPKE["pkEm"])
    assert shared == u(HPKE["shared_secret"])
    assert hpke.decap(enc, u(HPKE["skRm"])) == shared
    ctx = hpke.key_schedule(shared, u(HPKE["info"]))
    assert ctx.key == u(HPKE["key"])
    assert ctx.base_nonce == u(HPKE["base_nonce"])


def test_rfc9180_hpke_first_encryption_seal_and_open() -> None:
    e = HPKE["encryptions"][0]
    assert e["nonce"] == HPKE["base_nonce"]  # sequence 0 is the only one rtp1 uses
    enc, ct = hpke.seal_base(
        u(HPKE["pkRm"]), u(HPKE["info"]), u(e["aad"]), u(e["pt"]), eph_sk=u(HPKE["skEm"])
    )
    assert (enc, ct) == (u(HPKE["enc"]), u(e["ct"]))
    assert hpke.open_base(u(HPKE["skRm"]), enc, u(HPKE["info"]), u(e["aad"]), ct) == u(e["pt"])
    with pytest.raises(DecryptFailed):
        hpke.open_base(u(HPKE["skRm"]), enc, u(HPKE["info"]) + b"x", u(e["aad"]), ct)


def _cryptography_suite() -> Any:
    from cryptography.hazmat.primitives import hpke as chpke

    if not hasattr(chpke, "Suite"):
        pytest.skip("this cryptography has no HPKE")  # reason: older cryptography only
    return chpke.Suite(chpke.KEM.X25519, chpke.KDF.HKDF_SHA256, chpke.AEAD.AES_256_GCM)


def test_hpke_matches_cryptography_both_ways() -> None:
    suite = _cryptography_suite()
    sk = X25519PrivateKey.generate()
    sk_raw, pk_raw = sk.private_bytes_raw(), sk.public_key().public_bytes_raw()
    info, pt = b"RTW1 context", os.urandom(48)
    # cryptography seals (enc ‖ ct), ours opens
    blob = suite.encrypt(pt, sk.public_key(), info=info)
    assert hpke.open_base(sk_raw, blob[:32], info, b"", blob[32:]) == pt
    # ours seals, cryptography opens
    enc, ct = hpke.seal_base(pk_raw, info, b"", pt)
    assert suite.decrypt(enc + ct, sk, info=info) == pt


def test_ed25519_seed_is_the_rfc_private_key() -> None:
    """Keys are stored as 32-byte seeds: the same bytes cryptography and WebCrypto import."""
    seed = os.urandom(32)
    assert (
        FirmRootKey(seed).public.ed_pk
        == Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    )


def test_non_canonical_x25519_public_keys_rejected() -> None:
    """Top bit set, or u >= p: the same point as a canonical key, so refused (one key, one kid)."""
    p = 2**255 - 19
    pk = x25519_public(os.urandom(32))
    top = bytes(pk[:31]) + bytes([pk[31] | 0x80])
    plus_p = (2 + p).to_bytes(32, "little")  # u = 2 written as p + 2: not a low-order point
    assert x25519(os.urandom(32), plus_p)  # X25519 itself takes it (RFC 7748 reduces mod p)
    assert check_x25519_public(pk) == pk
    for bad in (top, plus_p):
        with pytest.raises(EncodingInvalid):
            check_x25519_public(bad)
