"""``rtportal firm-keys init``: an owner-only root key file, never overwritten."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rtportal.cli import main
from rtportal.crypto.keys import fingerprint_text
from rtportal.errors import BadRequest
from rtportal.sdk.keyfile import init_key_file, read_key_file
from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent


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


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 20+)")
    assert node is not None
    return node


def test_one_key_file_format_for_the_browser_and_the_cli(tmp_path: Path) -> None:
    """A file the org admin's browser downloads works with ``firm-keys approve``, and a
    file ``firm-keys init`` writes loads in the browser (static/staff/keyflows.js)."""
    seed = bytes(range(32))
    script = (
        "import { frkKeyFileText, newFirmRoot, readFrkKeyFile } from './static/staff/keyflows.js';"
        "import { readFileSync } from 'node:fs';"
        "const seed = Uint8Array.from(Array.from({ length: 32 }, (_, i) => i));"
        "const { frk } = await newFirmRoot(() => seed);"
        "process.stdout.write(JSON.stringify({ text: frkKeyFileText('acme', frk, seed),"
        " back: (await readFrkKeyFile(readFileSync(process.argv[1], 'utf8'))).frk.text }));"
    )
    made = tmp_path / "cli.key"
    init_key_file(made, "acme")
    p = subprocess.run(
        [_node(), "--input-type=module", "-e", script, str(made)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # the CLI's file, read by the browser: the same fingerprint
    assert out["back"] == read_key_file(made)[1].public.fingerprint_text
    # the browser's file, read by the CLI: the same key
    browser = tmp_path / "browser.key"
    browser.write_text(out["text"])
    firm, frk = read_key_file(browser, firm="acme")
    assert (firm, frk.ed_sk) == ("acme", seed)
    # a file whose fingerprint line does not match its seed is refused
    browser.write_text(out["text"].replace("seed: AAEC", "seed: BAEC"))
    with pytest.raises(BadRequest):
        read_key_file(browser)
