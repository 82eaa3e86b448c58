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

C = att.CHUNK
SIZES = [0, 1, C - 1, C, C + 1, 2 * C, 2 * C + 1]


def keys() -> tuple[bytes, bytes]:
    return att.new_attachment()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_length(size: int) -> None:
    att_id, fk = keys()
    data = os.urandom(size)
    blob = att.encrypt_bytes(fk, att_id, data)
    assert len(blob) == att.blob_length(size)
    assert blob[:21] == b"RTA1\x01" + att_id
    assert att.decrypt_bytes(fk, att_id, blob, ct_sha256=hashlib.sha256(blob).digest()) == data


def test_empty_file_is_one_empty_last_chunk() -> None:
    att_id, fk = keys()
    assert len(att.encrypt_bytes(fk, att_id, b"")) == 21 + 16


@settings(max_examples=40, deadline=None)
@given(
    size=st.sampled_from(SIZES) | st.integers(0, 3 * C + 7),
    pieces=st.lists(st.integers(1, 3 * C), min_size=1, max_size=6),
)
def test_incremental_any_piece_sizes(size: int, pieces: list[int]) -> None:
    """decrypt(encrypt(x)) == x whatever the sizes fed to either side."""
    att_id, fk = keys()
    data = os.urandom(size)
    e = att.AttachmentEncryptor(fk, att_id)
    out = [e.header]
    pos, i = 0, 0
    while pos < size:
        n = pieces[i % len(pieces)]
        out.append(e.update(data[pos : pos + n]))
        pos, i = pos + n, i + 1
    out.append(e.finalize())
    blob = b"".join(out)
    assert blob == att.encrypt_bytes(fk, att_id, data)
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
    att_id, fk = keys()
    return att_id, fk, att.encrypt_bytes(fk, att_id, os.urandom(2 * C + 100))


def tampered() -> tuple[bytes, bytes, dict[str, bytes]]:
    """``(att_id, fk, {case: blob})``: one attachment, tampered in each way."""
    att_id, fk, blob = _three_chunk()
    head, ch = _chunks(blob)
    other_id = os.urandom(16)
    other = att.encrypt_bytes(fk, other_id, os.urandom(2 * C + 100))
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
    with pytest.raises(AttachmentInvalid):
        att.decrypt_bytes(fk, att_id, cases[case])


def test_swapped_blob_with_same_id_fails_hash_check() -> None:
    """A blob re-encrypted by someone holding FK still fails the descriptor's hash."""
    att_id, fk = keys()
    good = att.encrypt_bytes(fk, att_id, b"original")
    swapped = att.encrypt_bytes(fk, att_id, b"replaced")
    with pytest.raises(AttachmentInvalid):
        att.decrypt_bytes(fk, att_id, swapped, ct_sha256=hashlib.sha256(good).digest())


def test_decryptor_is_poisoned_after_failure() -> None:
    att_id, fk = keys()
    blob = att.encrypt_bytes(fk, att_id, os.urandom(3 * C))
    d = att.AttachmentDecryptor(fk, att_id)
    with pytest.raises(AttachmentInvalid):
        d.update(blob[:21] + bytes([blob[21] ^ 1]) + blob[22 : 21 + 2 * att.CT_CHUNK])
    with pytest.raises(AttachmentInvalid):
        d.finalize()


def test_size_mismatch_rejected() -> None:
    att_id, fk = keys()
    blob = att.encrypt_bytes(fk, att_id, b"12345")
    for wrong in (4, 6):
        d = att.AttachmentDecryptor(fk, att_id, size=wrong)
        assert d.update(blob) == b""  # the only chunk is the last: held until finalize
        with pytest.raises(AttachmentInvalid):
            d.finalize()
    big = att.encrypt_bytes(fk, att_id, os.urandom(2 * C + 1))
    with pytest.raises(AttachmentInvalid):  # caught as soon as a chunk exceeds it
        att.AttachmentDecryptor(fk, att_id, size=C - 1).update(big)


def test_five_mib_file_streamed_without_holding_it_twice(tmp_path: Path) -> None:
    size = 5 * 1024 * 1024
    src, enc, out = tmp_path / "a.bin", tmp_path / "a.rta", tmp_path / "a.out"
    with src.open("wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))
    att_id, fk = keys()
    tracemalloc.start()
    digest, n = att.encrypt_file(src, enc, fk, att_id)
    written = att.decrypt_file(enc, out, fk, att_id, ct_sha256=digest, size=n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == written == size
    assert enc.stat().st_size == att.blob_length(size)
    assert src.read_bytes() == out.read_bytes()
    assert peak < 1 << 20, f"peak Python allocation {peak} bytes for a 5 MiB file"


def test_failed_file_decrypt_leaves_nothing(tmp_path: Path) -> None:
    att_id, fk = keys()
    src, enc, out = tmp_path / "a.bin", tmp_path / "a.rta", tmp_path / "a.out"
    src.write_bytes(os.urandom(3 * C))
    digest, _ = att.encrypt_file(src, enc, fk, att_id)
    enc.write_bytes(enc.read_bytes()[: -att.CT_CHUNK])  # truncated at a seam
    with pytest.raises(AttachmentInvalid):
        att.decrypt_file(enc, out, fk, att_id, ct_sha256=digest)
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
        att.decrypt_bytes(fk, att_id, blob)
    assert att.decrypt_bytes(fk, att_id, att.encrypt_bytes(fk, att_id, data)) == data
