"""The staff browser's key flows (static/staff/keyflows.js, epochflows.js) under
Node's test runner: what the org admin and staff browsers post verifies as a
client's library would verify it; and the reviewer's live count
(static/staff/reviewcount.js: its subscriptions, frames and re-reads). Node
missing is a failure when CI=true."""

from __future__ import annotations

from tests.support.nodetests import run_node_tests


def test_staff_key_flows_under_node() -> None:
    run_node_tests("static/staff/test/", minimum=22)
