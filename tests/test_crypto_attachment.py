"""Streamed attachments: sizes around chunk seams, incremental APIs, files, every tampering."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtportal.crypto import attachment as att
from rtportal.crypto.errors import AttachmentInvalid
from rtportal.crypto.rng import Rng

C = att.CHUNK
SIZES = [0, 1, C - 1, C, C + 1, 2 * C, 2 * C + 1]


def keys() -> tuple[bytes, bytes]:
    return att.new_attachment()


def sha(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()


def fixed(att_id: bytes, fk: bytes) -> Rng:
    """An rng that hands the encryptor this pair again (tests only: reuse is the bug)."""
    return lambda n: att_id if n == 16 else fk


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_length(size: int) -> None:
    data = os.urandom(size)
    att_id, fk, blob = att.encrypt_bytes(data)
    assert len(blob) == att.blob_length(size)
    assert blob[:21] == b"RTA1\x01" + att_id
    assert att.decrypt_bytes(fk, att_id, blob, ct_sha256=sha(blob)) == data


def test_empty_file_is_one_empty_last_chunk() -> None:
    assert len(att.encrypt_bytes(b"")[2]) == 21 + 16


@settings(max_examples=40, deadline=None)
@given(
    size=st.sampled_from(SIZES) | st.integers(0, 3 * C + 7),
    pieces=st.lists(st.integers(1, 3 * C), min_size=1, max_size=6),
)
def test_incremental_any_piece_sizes(size: int, pieces: list[int]) -> None:
    """decrypt(encrypt(x)) == x whatever the sizes fed to either side."""
    data = os.urandom(size)
    e = att.AttachmentEncryptor()
    att_id, fk = e.att_id, e.fk
    out = [e.header]
    pos, i = 0, 0
    while pos < size:
        n = pieces[i % len(pieces)]
        out.append(e.update(data[pos : pos + n]))
        pos, i = pos + n, i + 1
    out.append(e.finalize())
    blob = b"".join(out)
    assert blob == att.encrypt_bytes(data, fixed(att_id, fk))[2]
    d = att.AttachmentDecryptor(fk, att_id, ct_sha256=e.ct_sha256, size=size)
    got, pos, i = [], 0, 0
    while pos < len(blob):
        n = pieces[(i + 1) % len(pieces)]
        got.append(d.update(blob[pos : pos + n]))
        pos, i = pos + n, i + 1
    got.append(d.finalize())
    assert b"".join(got) == data


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    body = blob[21:]
    return blob[:21], [body[i : i + att.CT_CHUNK] for i in range(0, len(body), att.CT_CHUNK)]


def _three_chunk() -> tuple[bytes, bytes, bytes]:
    return att.encrypt_bytes(os.urandom(2 * C + 100))


def tampered() -> tuple[bytes, bytes, dict[str, bytes]]:
    """``(att_id, fk, {case: blob})``: one attachment, tampered in each way."""
    att_id, fk, blob = _three_chunk()
    head, ch = _chunks(blob)
    other_id = os.urandom(16)
    other = att.encrypt_bytes(os.urandom(2 * C + 100), fixed(other_id, fk))[2]
    return (
        att_id,
        fk,
        {
            "truncated at a chunk seam": head + ch[0] + ch[1],
            "last chunk dropped to one": head + ch[0],
            "truncated mid chunk": blob[:-5],
            "reordered": head + ch[1] + ch[0] + ch[2],
            "extended by a chunk": blob + ch[2],
            "extended by a non-last chunk": head + ch[0] + ch[1] + ch[1] + ch[2],
            "trailing byte": blob + b"\x00",
            "re-headed (other att_id)": att.header(other_id) + blob[21:],
            "bad version": b"RTA1\x02" + att_id + blob[21:],
            "chunk from another attachment": head + _chunks(other)[1][0] + ch[1] + ch[2],
            "bit flip in tag": blob[:-1] + bytes([blob[-1] ^ 1]),
            "header only": head,
            "short header": head[:10],
        },
    )


CASES = list(tampered()[2])


@pytest.mark.parametrize("case", CASES)
def test_tampering_rejected(case: str) -> None:
    att_id, fk, cases = tampered()
    with pytest.raises(AttachmentInvalid):  # the blob's own hash: the structure alone refuses it
        att.decrypt_bytes(fk, att_id, cases[case], ct_sha256=sha(cases[case]))


def test_swapped_blob_with_same_id_fails_hash_check() -> None:
    """A blob re-encrypted by someone holding FK still fails the descriptor's hash."""
    att_id, fk, good = att.encrypt_bytes(b"original")
    swapped = att.encrypt_bytes(b"replaced", fixed(att_id, fk))[2]
    with pytest.raises(AttachmentInvalid):
        att.decrypt_bytes(fk, att_id, swapped, ct_sha256=sha(good))


def test_decryptor_is_poisoned_after_failure() -> None:
    att_id, fk, blob = att.encrypt_bytes(os.urandom(3 * C))
    d = att.AttachmentDecryptor(fk, att_id, ct_sha256=sha(blob))
    with pytest.raises(AttachmentInvalid):
        d.update(blob[:21] + bytes([blob[21] ^ 1]) + blob[22 : 21 + 2 * att.CT_CHUNK])
    with pytest.raises(AttachmentInvalid):
        d.finalize()


def test_size_mismatch_rejected() -> None:
    att_id, fk, blob = att.encrypt_bytes(b"12345")
    for wrong in (4, 6):
        d = att.AttachmentDecryptor(fk, att_id, ct_sha256=sha(blob), size=wrong)
        assert d.update(blob) == b""  # the only chunk is the last: held until finalize
        with pytest.raises(AttachmentInvalid):
            d.finalize()
    big = att.encrypt_bytes(os.urandom(2 * C + 1), fixed(att_id, fk))[2]
    with pytest.raises(AttachmentInvalid):  # caught as soon as a chunk exceeds it
        att.AttachmentDecryptor(fk, att_id, ct_sha256=sha(big), size=C - 1).update(big)


def test_five_mib_file_streamed_without_holding_it_twice(tmp_path: Path) -> None:
    size = 5 * 1024 * 1024
    src, enc, out = tmp_path / "a.bin", tmp_path / "a.rta", tmp_path / "a.out"
    with src.open("wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))
    tracemalloc.start()
    sealed = att.encrypt_file(src, enc)
    n = sealed.size
    written = att.decrypt_file(enc, out, sealed.fk, sealed.att_id, ct_sha256=sealed.ct_sha256,
                               size=n)  # fmt: skip
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == written == size
    assert enc.stat().st_size == att.blob_length(size)
    assert src.read_bytes() == out.read_bytes()
    assert peak < 1 << 20, f"peak Python allocation {peak} bytes for a 5 MiB file"


def test_failed_file_decrypt_leaves_nothing(tmp_path: Path) -> None:
    src, enc, out = tmp_path / "a.bin", tmp_path / "a.rta", tmp_path / "a.out"
    src.write_bytes(os.urandom(3 * C))
    sealed = att.encrypt_file(src, enc)
    enc.write_bytes(enc.read_bytes()[: -att.CT_CHUNK])  # truncated at a seam
    with pytest.raises(AttachmentInvalid):
        att.decrypt_file(enc, out, sealed.fk, sealed.att_id, ct_sha256=sealed.ct_sha256)
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {"a.bin", "a.rta"}


def test_empty_last_chunk_after_data_rejected() -> None:
    """Never produced by the encryptor (a 65536-byte file is one last chunk): non-canonical."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from rtportal.crypto.kdf import attachment_chunk_key

    att_id, fk = keys()
    data = os.urandom(C)
    aead = AESGCM(attachment_chunk_key(fk, att_id))
    head = att.header(att_id)
    first = aead.encrypt((0).to_bytes(11, "big") + b"\x00", data, head)
    empty_last = aead.encrypt((1).to_bytes(11, "big") + b"\x01", b"", head)
    blob = head + first + empty_last
    with pytest.raises(AttachmentInvalid):
        att.decrypt_bytes(fk, att_id, blob, ct_sha256=sha(blob))
    canonical = att.encrypt_bytes(data, fixed(att_id, fk))[2]
    assert att.decrypt_bytes(fk, att_id, canonical, ct_sha256=sha(canonical)) == data
