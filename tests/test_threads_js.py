"""The browser's thread and feed models (static/shared/threadmodel.js,
feedmodel.js) and their wiring (threadapi.js) under Node's test runner: every
folding rule of docs/threads.md as a page applies it (threads, replies,
notes, edits, deletes, tags, receipts, unread, typing; the staff feed's
filters and live prepend), and the endpoints and frames by their names.
Node missing is a failure when CI=true."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent


def test_thread_and_feed_models_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        service_unavailable("node (Node.js 20+)")
    assert node is not None
    p = subprocess.run(
        [node, "--test", "static/shared/test/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    explain = f"exit {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-4000:]}"
    assert p.returncode == 0, explain
    assert "# fail 0" in p.stdout, explain
    passed = [ln for ln in p.stdout.splitlines() if ln.startswith("# pass ")]
    # guard against a runner that found nothing to run
    assert passed and int(passed[-1].split()[-1]) >= 25, explain
