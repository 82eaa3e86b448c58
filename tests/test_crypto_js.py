"""The JavaScript rtp1 library (static/crypto/) proven against the Python one.

Runs Node's built-in test runner over static/crypto/test/, then checks golden
vectors in both directions: Python generates and JavaScript verifies and
decrypts; JavaScript generates and Python verifies and decrypts; and the
committed golden directories (tests/vectors/py, tests/vectors/js) are verified
by the other language. Node missing is a failure when CI=true.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import service_unavailable
from tests.support.staticsite import chromium_page

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "static" / "crypto"
GEN_JS = STATIC / "tools" / "gen_vectors.mjs"
VERIFY_JS = STATIC / "tools" / "verify_vectors.mjs"
PY_GOLDEN = REPO / "tests" / "vectors" / "py"
JS_GOLDEN = REPO / "tests" / "vectors" / "js"
TIMEOUT = 240


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        service_unavailable("node (Node.js 20+)")
    assert exe is not None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    major = int(out.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        service_unavailable(f"node >= 20 (found {out.stdout.strip()})")
    return exe


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)


def py_vectors(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tests.support.crypto.vectors ARGS`` (the Python side's stable CLI)."""
    return run([sys.executable, "-m", "tests.support.crypto.vectors", *args])


def explain(p: subprocess.CompletedProcess[str]) -> str:
    out, err = p.stdout[-6000:], p.stderr[-6000:]
    return f"exit {p.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"


def test_node_test_runner_passes(node: str) -> None:
    p = run([node, "--test", "static/crypto/test/"])
    assert p.returncode == 0, explain(p)
    assert "# fail 0" in p.stdout, explain(p)
    # guard against a runner that found nothing to run
    passed = [ln for ln in p.stdout.splitlines() if ln.startswith("# pass ")]
    assert passed and int(passed[-1].split()[-1]) > 20, explain(p)


def test_python_vectors_verified_by_js(node: str, tmp_path: Path) -> None:
    out = tmp_path / "py"
    p = py_vectors("generate", str(out))
    assert p.returncode == 0, explain(p)
    v = run([node, str(VERIFY_JS), str(out)])
    assert v.returncode == 0, explain(v)


def test_js_vectors_verified_by_python(node: str, tmp_path: Path) -> None:
    out = tmp_path / "js"
    g = run([node, str(GEN_JS), str(out)])
    assert g.returncode == 0, explain(g)
    v = py_vectors("verify", str(out), "--strict-codes")
    assert v.returncode == 0, explain(v)


def test_committed_python_golden_vectors_verified_by_js(node: str) -> None:
    assert any(PY_GOLDEN.glob("*.json")), f"no golden vectors in {PY_GOLDEN}"
    v = run([node, str(VERIFY_JS), str(PY_GOLDEN)])
    assert v.returncode == 0, explain(v)


def test_committed_js_golden_vectors_verified_by_python(node: str) -> None:
    assert any(JS_GOLDEN.glob("*.json")), f"no golden vectors in {JS_GOLDEN}"
    v = py_vectors("verify", str(JS_GOLDEN), "--strict-codes")
    assert v.returncode == 0, explain(v)


def _tamper_first_sig(src: Path, dst: Path) -> str:
    """Copy a vector directory and flip one hex digit of the first envelope signature."""
    shutil.copytree(src, dst)
    target = dst / "envelopes.json"
    text = target.read_text(encoding="utf-8")
    m = re.search(r'"sig": ?"([0-9a-f])', text)
    assert m is not None, "no sig field in envelopes.json"
    j = m.start(1)
    target.write_text(text[:j] + ("1" if text[j] != "1" else "2") + text[j + 1 :], encoding="utf-8")
    return "envelopes.json"


def test_js_verifier_rejects_a_tampered_vector(node: str, tmp_path: Path) -> None:
    """The JS verifier can fail: one hex digit of a signature changed in Python's vectors."""
    name = _tamper_first_sig(PY_GOLDEN, tmp_path / "tampered")
    v = run([node, str(VERIFY_JS), str(tmp_path / "tampered")])
    assert v.returncode != 0, "JS verifier accepted a vector with a corrupted signature"
    assert f"FAIL {name}" in v.stdout, explain(v)


def test_python_verifier_rejects_a_tampered_js_vector(node: str, tmp_path: Path) -> None:
    """And the Python verifier catches the same corruption in JS's vectors."""
    name = _tamper_first_sig(JS_GOLDEN, tmp_path / "tampered")
    v = py_vectors("verify", str(tmp_path / "tampered"))
    assert v.returncode != 0, "Python verifier accepted a JS vector with a corrupted signature"
    assert f"FAIL {name}" in v.stdout, explain(v)


def test_library_runs_in_chromium() -> None:
    """Headless Chromium: standards KATs, Python's golden vectors, a streamed attachment."""
    with chromium_page("/static/crypto/browser/browser.html") as (page, errors):
        page.wait_for_function("window.__rtp1Result !== undefined", timeout=180_000)
        result = page.evaluate("window.__rtp1Result")
    detail = "\n".join(result["lines"][-40:] + errors)
    assert result["failures"] == 0, detail
    assert result["passed"] > 100, detail
    assert "Chrome" in result["userAgent"]


def test_vendored_argon2_hash_pinned() -> None:
    data = (REPO / "static" / "vendor" / "argon2.umd.min.js").read_bytes()
    readme = (REPO / "static" / "vendor" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(data).hexdigest() in readme
