"""The staff browser's key flows (static/staff/keyflows.js, epochflows.js) under
Node's test runner: what the org admin and staff browsers post verifies as a
client's library would verify it. Node missing is a failure when CI=true."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent


def test_staff_key_flows_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 20+)")
    assert node is not None
    p = subprocess.run(
        [node, "--test", "static/staff/test/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    explain = f"exit {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-4000:]}"
    assert p.returncode == 0, explain
    assert "# fail 0" in p.stdout, explain
    passed = [ln for ln in p.stdout.splitlines() if ln.startswith("# pass ")]
    assert passed and int(passed[-1].split()[-1]) >= 17, explain
