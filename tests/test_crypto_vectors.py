"""Golden vectors: generation is deterministic, verification passes and can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.crypto.vectors import FILES, generate, main
from tests.support.crypto.vectors_verify import verify_dir

GOLDEN = Path(__file__).parent / "vectors" / "py"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    generate(out)
    return out


def test_generated_vectors_verify_strictly(fresh: Path) -> None:
    report = verify_dir(fresh, strict_codes=True)
    assert report.failures == []
    assert report.passed >= 95
    assert (fresh / "att-5242880.bin").stat().st_size == 5 * 1024 * 1024 + 21 + 16 * 80


def test_committed_golden_vectors_are_current_and_verify(tmp_path: Path) -> None:
    """The committed files are exactly what the generator writes (no silent format drift)."""
    generate(tmp_path, blob_files=False)
    for name in FILES:
        assert (GOLDEN / name).read_bytes() == (tmp_path / name).read_bytes(), name
    report = verify_dir(GOLDEN, strict_codes=True)
    assert report.failures == [] and report.passed >= 95


def test_every_file_has_ok_and_reject_cases(fresh: Path) -> None:
    for name in FILES:
        doc = json.loads((fresh / name).read_text())
        assert doc["rtp1_vectors"] == 1 and doc["file"] == name and doc["generator"] == "python"
        expects = {c.get("expect", "ok") for c in doc["cases"]}
        assert "ok" in expects
        if name != "keys.json":
            assert "reject" in expects, name


def _edit(src: Path, dst: Path, file: str, case_name: str, key: str, value: object) -> None:
    import shutil

    shutil.copytree(src, dst)
    doc = json.loads((dst / file).read_text())
    (case,) = [c for c in doc["cases"] if c["name"] == case_name]
    case[key] = value(case[key]) if callable(value) else value
    (dst / file).write_text(json.dumps(doc))


def _flip_hex(s: str) -> str:
    return ("1" if s[0] != "1" else "2") + s[1:]


@pytest.mark.parametrize(
    ("file", "case", "key", "value"),
    [
        ("envelopes.json", "client-message", "sig", _flip_hex),
        ("envelopes.json", "client-message", "plaintext", _flip_hex),
        ("envelopes.json", "reject-replay", "expect", "ok"),
        ("wraps.json", "mek-e1-client-1", "ct", _flip_hex),
        ("manifests.json", "epoch-2", "prev_hash", _flip_hex),
        ("certs.json", "cert-staff-1", "flags", 0),
        ("keys.json", "frk", "fingerprint_text", "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA"),
        ("attachments.json", "att-65536", "blob_sha256", _flip_hex),
        ("backups.json", "backup-default-params", "login_secret", _flip_hex),
        ("recovery.json", "recovery-client-1", "proof", _flip_hex),
        ("attachments.json", "reject-reordered-65541", "expect", "ok"),
    ],
)
def test_tampered_vectors_fail(
    tmp_path: Path, file: str, case: str, key: str, value: object
) -> None:
    dst = tmp_path / "t"
    _edit(GOLDEN, dst, file, case, key, value)
    heavy = {"backups.json", "attachments.json"} - {file}  # Argon2 and 5 MiB: only when targeted
    report = verify_dir(dst, skip=heavy)
    assert report.failures, f"{file}:{case}:{key} tampering went unnoticed"
    assert any(case in f for f in report.failures)


def test_missing_file_fails(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(GOLDEN, tmp_path / "t")
    (tmp_path / "t" / "wraps.json").unlink()
    assert main(["verify", str(tmp_path / "t")]) == 1
    assert main(["verify", str(tmp_path / "empty")]) == 1


def test_cli_generate_and_verify(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "tests.support.crypto.vectors"]
    g = subprocess.run([*cmd, "generate", str(out), "--seed", "ff" * 32, "--no-blob-files"],
                       capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert g.returncode == 0, g.stderr
    v = subprocess.run([*cmd, "verify", str(out), "--strict-codes"],
                       capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert v.returncode == 0, v.stdout + v.stderr
    assert " 0 failed" in v.stdout
    # another seed, other bytes
    assert (out / "keys.json").read_text() != (GOLDEN / "keys.json").read_text()


def test_vector_hex_is_strict_lowercase() -> None:
    from tests.support.crypto.vectors_verify import VectorMismatch, u

    assert u("00ff10") == b"\x00\xff\x10"
    for bad in ("00FF", "0", "zz", "00 ff", " 00", "0x00"):
        with pytest.raises(VectorMismatch):
            u(bad)
