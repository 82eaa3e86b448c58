"""``rtportal firm-keys init``: an owner-only root key file, never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtportal.cli import main
from rtportal.crypto.keys import fingerprint_text
from rtportal.sdk.keyfile import read_key_file


def test_init_writes_a_private_key_file_and_prints_its_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frk.key"
    assert main(["firm-keys", "init", "--firm", "acme", "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    firm, frk = read_key_file(out, firm="acme")
    assert firm == "acme"
    printed = capsys.readouterr().out
    assert f"fingerprint: {fingerprint_text(frk.public.fingerprint)}" in printed
    before = out.read_bytes()
    assert main(["firm-keys", "init", "--firm", "acme", "--out", str(out)]) == 1
    assert out.read_bytes() == before
    assert "never overwritten" in capsys.readouterr().err
    with pytest.raises(Exception, match="not 'other'"):
        read_key_file(out, firm="other")
