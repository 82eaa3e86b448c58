"""The browser's thread and feed models (static/shared/threadmodel.js,
feedmodel.js) and their wiring (threadapi.js) under Node's test runner: every
folding rule of docs/threads.md as a page applies it (threads, replies,
notes, edits, deletes, tags, receipts, unread, typing; the staff feed's
filters and live prepend), the endpoints and frames by their names, and
attachments (attachfile.js: RTA1 from a File, the upload request, decryption).
Node missing is a failure when CI=true."""

from __future__ import annotations

from tests.support.nodetests import run_node_tests


def test_thread_and_feed_models_under_node() -> None:
    run_node_tests("static/shared/test/", minimum=38)
