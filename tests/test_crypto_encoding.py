"""Canonical encoding: round trips (hypothesis) and strict rejection of non-canonical bytes."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import CertBody, Certificate, Flag, Role
from rtportal.crypto.envelope import AttachmentDescriptor, Body, Envelope, Header, Visibility
from rtportal.crypto.errors import EncodingInvalid
from rtportal.crypto.kdf import derivation_info
from rtportal.crypto.keys import FirmRootKey, IdentityKey, fingerprint_text
from rtportal.crypto.manifest import ManifestBody, Member
from rtportal.crypto.wrap import WrapInfo, WrapKind
from rtportal.errors import CryptoInvalid


def _id_ok(s: str) -> bool:
    """The id rule: 1..255 bytes, no leading U+FEFF, no C0/C1 control character."""
    bad = s.startswith("\ufeff") or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s)
    return 1 <= len(s.encode()) <= 255 and not bad


ids = st.text(min_size=1, max_size=40).filter(_id_ok)
b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
# certifiable Ed25519 keys (random bytes are rarely canonical curve points of large order)
ed_pks = st.binary(min_size=32, max_size=32).map(
    lambda seed: IdentityKey(bytes(32), seed).public.ed_pk
)
u32s = st.integers(0, 2**32 - 1)
u64s = st.integers(0, 2**64 - 1)
ctypes = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


def test_documented_example_bytes() -> None:
    """docs/security.md §3 gives these exact bytes for D("rtp1/msg", "f1", "M1", 7)."""
    got = derivation_info("rtp1/msg", b"f1", b"M1", enc.u32(7))
    want = bytes.fromhex("525444310008727470312f6d73670002663100024d31000400000007")
    assert got == want


def test_error_codes_are_crypto_invalid() -> None:
    with pytest.raises(CryptoInvalid) as e:
        enc.Reader(b"XXXX", b"RTC1")
    assert e.value.code == "crypto_encoding"
    assert e.value.http_status == 422


@settings(max_examples=60, deadline=None)
@given(
    header=st.builds(
        Header, ids, ids, ids, b16, st.none() | b16, ids, b16, u32s,
        st.sampled_from(list(Visibility)), u64s, ctypes,
    ),
    nonce=st.binary(min_size=12, max_size=12),
    ct=st.binary(min_size=16, max_size=300),
    sig=st.binary(min_size=64, max_size=64),
)  # fmt: skip
def test_envelope_round_trip(header: Header, nonce: bytes, ct: bytes, sig: bytes) -> None:
    env = Envelope(header, nonce, ct, sig)
    blob = env.encode()
    assert Envelope.decode(blob) == env
    assert Envelope.decode(blob).encode() == blob


@settings(max_examples=60, deadline=None)
@given(
    ids, st.sampled_from(list(Role)), ids, b32, ed_pks, u64s, u64s, u64s,
    st.lists(ids, max_size=5), ids, b16, st.binary(min_size=64, max_size=64),
)  # fmt: skip
def test_certificate_round_trip(
    firm: str, role: Role, user: str, x: bytes, ed: bytes, serial: int, iat: int, exp: int,
    scopes: list[str], issuer: str, ikid: bytes, sig: bytes,
) -> None:  # fmt: skip
    flags = Flag(0) if role is Role.CLIENT else Flag.CUSTODIAN
    body = CertBody(firm, role, user, x, ed, serial, iat, exp, flags, tuple(sorted(set(scopes),
                    key=lambda s: s.encode())), issuer, ikid)  # fmt: skip
    cert = Certificate(body, sig)
    assert Certificate.decode(cert.encode()) == cert


@settings(max_examples=60, deadline=None)
@given(
    ids, ids, st.integers(1, 2**32 - 1), b32, u32s,
    st.lists(st.tuples(ids, b16, st.sampled_from([Role.CLIENT, Role.BOT])), max_size=6,
             unique_by=lambda t: (t[0], t[1])),
    st.booleans(), ids, b16, u64s, b32,
)  # fmt: skip
def test_manifest_round_trip(
    firm: str, matter: str, epoch: int, prev: bytes, fekv: int,
    members: list[tuple[str, bytes, Role]], share: bool, creator: str, ckid: bytes, ts: int,
    commit: bytes,
) -> None:  # fmt: skip
    body = ManifestBody(firm, matter, epoch, prev, fekv, tuple(Member(*m) for m in members), share,
                        creator, ckid, ts, commit)  # fmt: skip
    assert ManifestBody.decode(body.encode()) == body


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=50),
    st.text(max_size=300),
    st.lists(st.builds(AttachmentDescriptor, b16, b32, b32, u64s, st.text(max_size=20),
                       st.text(max_size=20)), max_size=3),
)  # fmt: skip
def test_body_round_trip(subject: str, text: str, atts: list[AttachmentDescriptor]) -> None:
    body = Body(subject, text, tuple(atts))
    assert Body.decode(body.encode()) == body


@settings(max_examples=40, deadline=None)
@given(ids, ids, u32s, st.sampled_from(list(WrapKind)), ids, b16)
def test_wrap_info_round_trip(
    firm: str, matter: str, epoch: int, kind: WrapKind, rcpt: str, kid: bytes
) -> None:
    info = WrapInfo(firm, matter, epoch, kind, rcpt, kid)
    assert WrapInfo.decode(info.encode()) == info


def _cert_blob() -> bytes:
    k = IdentityKey.generate()
    frk = FirmRootKey.generate()
    body = CertBody("f", Role.STAFF, "u", k.public.x_pk, k.public.ed_pk, 1, 2, 0,
                    Flag.CERTIFY_CLIENTS, ("a", "b"), "#frk", frk.kid)  # fmt: skip
    return Certificate(body, frk.sign(body.encode())).encode()


NON_CANONICAL: dict[str, Callable[[bytes], bytes]] = {
    "wrong tag": lambda b: b"RTCY" + b[4:],
    "trailing byte": lambda b: b + b"\x00",
    "truncated": lambda b: b[:-1],
    "empty": lambda b: b"",
    "only tag": lambda b: b[:4],
    "length past end": lambda b: b[:4] + b"\xff\xff" + b[6:],
}


@pytest.mark.parametrize("name", list(NON_CANONICAL))
def test_non_canonical_certificate_rejected(name: str) -> None:
    blob = NON_CANONICAL[name](_cert_blob())
    with pytest.raises(EncodingInvalid):
        Certificate.decode(blob)


def _tbs_fields(tbs: bytes) -> list[bytes]:
    r = enc.Reader(tbs, tbs[:4])
    out = []
    while True:
        try:
            out.append(r.raw())
        except EncodingInvalid:
            return out


def _rebuild(tag: bytes, fields: list[bytes]) -> bytes:
    return enc.record(tag, *(enc.field(f) for f in fields))


def _cert_tbs(blob: bytes) -> bytes:
    return Certificate.decode(blob).body.encode()


@pytest.mark.parametrize(
    ("index", "value", "why"),
    [
        (1, b"\x00\x01", "role of 2 bytes"),
        (1, b"\x07", "unknown role"),
        (5, b"\x00" * 7, "u64 of 7 bytes"),
        (8, b"\x00\x00\x00\x04", "unknown flag bit"),
        (9, enc.list_([b"b", b"a"]), "unsorted scopes"),
        (9, enc.list_([b"a", b"a"]), "duplicate scopes"),
        (9, b"\x00\x05ab", "list item past end"),
        (0, b"", "empty id"),
        (2, b"\xff\xfe", "invalid UTF-8 id"),
        (11, b"\x00" * 15, "kid of 15 bytes"),
    ],
)
def test_non_canonical_fields_rejected(index: int, value: bytes, why: str) -> None:
    fields = _tbs_fields(_cert_tbs(_cert_blob()))
    assert len(fields) == 12
    fields[index] = value
    with pytest.raises(EncodingInvalid):
        CertBody.decode(_rebuild(b"RTC1", fields))


def test_missing_and_extra_fields_rejected() -> None:
    fields = _tbs_fields(_cert_tbs(_cert_blob()))
    with pytest.raises(EncodingInvalid):
        CertBody.decode(_rebuild(b"RTC1", fields[:-1]))
    with pytest.raises(EncodingInvalid):
        CertBody.decode(_rebuild(b"RTC1", [*fields, b""]))


def test_bool_and_visibility_ranges() -> None:
    r = enc.Reader(b"TEST" + enc.field(b"\x02"), b"TEST")
    with pytest.raises(EncodingInvalid):
        r.bool_()
    h = Header("f", "m", "t", os.urandom(16), None, "s", os.urandom(16), 1, Visibility.PORTAL, 1,
               "rtp1/body")  # fmt: skip
    fields = _tbs_fields(h.aad())
    fields[9] = b"\x02"
    with pytest.raises(EncodingInvalid):
        Header.decode(_rebuild(b"RTM1", fields))
    fields[9] = b"\x00"
    fields[5] = b"\x01" * 15  # parent neither absent nor 16 bytes
    with pytest.raises(EncodingInvalid):
        Header.decode(_rebuild(b"RTM1", fields))


def test_integer_and_id_bounds_on_encode() -> None:
    with pytest.raises(EncodingInvalid):
        enc.u32(2**32)
    with pytest.raises(EncodingInvalid):
        enc.u8(-1)
    with pytest.raises(EncodingInvalid):
        enc.id_("")
    with pytest.raises(EncodingInvalid):
        enc.id_("x" * 256)
    with pytest.raises(EncodingInvalid):
        enc.ascii_("has space")
    with pytest.raises(EncodingInvalid):
        enc.field(b"x" * 65536)
    for lone_surrogate in ("\ud800", "a\udfffb"):  # not Unicode text: a clear rtp1 error
        with pytest.raises(EncodingInvalid):
            enc.id_(lone_surrogate)
        with pytest.raises(EncodingInvalid):
            enc.text(lone_surrogate)


@pytest.mark.parametrize(
    "bad_id",
    ["\ufeffclient-1", "\ufeff", "client\x00-1", "a\nb", "tab\there", "del\x7f", "c1\x85"],
)
def test_ids_never_silently_change(bad_id: str) -> None:
    """One rule with static/crypto/encoding.js: a leading BOM or a control character in an
    id is refused on encode and on decode, so "\ufeffclient-1" is never filed as client-1."""
    with pytest.raises(EncodingInvalid):
        enc.id_(bad_id)
    raw = bad_id.encode()
    blob = b"RTKT" + enc.field(raw)
    with pytest.raises(EncodingInvalid):
        enc.Reader(blob, b"RTKT").id_()
    with pytest.raises(EncodingInvalid):  # inside a real record too (a wrap's recipient)
        WrapInfo.decode(_rebuild(b"RTW1", [b"f", b"m", enc.u32(1), enc.u8(1), raw, bytes(16)]))


def test_text_keeps_a_leading_bom_and_inner_bom_ids_are_fine() -> None:
    body = Body("\ufeffsubject", "\ufefftext")
    assert Body.decode(body.encode()) == body  # text is never changed either
    assert enc.Reader(b"RTKT" + enc.field("a\ufeffb".encode()), b"RTKT").id_() == "a\ufeffb"


def test_fingerprint_text_format() -> None:
    fp = FirmRootKey.generate().public
    text = fp.fingerprint_text
    groups = text.split(" ")
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)
    assert set(text.replace(" ", "")) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert fingerprint_text(bytes(32)) == "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA"
    assert fp.kid == fp.fingerprint[:16]


def test_key_file_round_trip_and_strict() -> None:
    k = IdentityKey.generate()
    blob = k.key_file("firm", "bot-1")
    assert IdentityKey.from_key_file(blob) == ("firm", "bot-1", k)
    with pytest.raises(EncodingInvalid):
        IdentityKey.from_key_file(blob + b"\x00")


def test_sorted_list_refuses_duplicates_on_encode() -> None:
    """Like JS: a duplicate scope is an error, not silently dropped from what gets signed."""
    assert enc.sorted_list([b"b", b"a"]) == enc.field(b"a") + enc.field(b"b")
    with pytest.raises(EncodingInvalid):
        enc.sorted_list([b"a", b"b", b"a"])
