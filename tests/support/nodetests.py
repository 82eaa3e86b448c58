"""Run a folder of the web client's ``.mjs`` tests under Node's test runner.

Node missing is a failure when CI=true (``service_unavailable``). The
``minimum`` count guards against a runner that found nothing to run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.procs import service_unavailable

__all__ = ["run_node_tests"]

REPO = Path(__file__).resolve().parent.parent.parent


def run_node_tests(folder: str, minimum: int, timeout: float = 240) -> None:
    """``node --test <folder>`` from the repository root: all passed, at least ``minimum``."""
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 20+)")
    assert node is not None
    p = subprocess.run(
        [node, "--test", folder], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    explain = f"exit {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-4000:]}"
    assert p.returncode == 0, explain
    assert "# fail 0" in p.stdout, explain
    passed = [ln for ln in p.stdout.splitlines() if ln.startswith("# pass ")]
    assert passed and int(passed[-1].split()[-1]) >= minimum, explain
