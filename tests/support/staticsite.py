"""The repository's static files served read-only to a real Chromium, without the app.

For tests of the browser library and the staff key modules on their own
(tests/test_crypto_js.py, tests/test_staff_frk_browser.py): ``served_repository``
serves the repository on a free loopback port (ES modules need a JavaScript MIME
type; WebCrypto needs a secure context, which 127.0.0.1 is), and
``chromium_page`` opens a page of it in Debian's Chromium through Playwright,
collecting uncaught page errors.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent.parent


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the repository read-only; ES modules need a JavaScript MIME type."""

    extensions_map = {  # noqa: RUF012 - the base class declares it as a class attribute
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(REPO), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@contextmanager
def served_repository() -> Iterator[str]:
    """The repository over HTTP for the block: yields its base URL (no trailing slash)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StaticHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def chromium_page(path: str) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page on ``path`` of the served repository, and its page errors."""
    chromium = shutil.which("chromium")
    if chromium is None:
        service_unavailable("chromium")
    try:
        from playwright import sync_api
    except ImportError:
        service_unavailable("playwright (python package, test extra)")
    with served_repository() as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            # a context of its own (not new_page's): a test may open a second tab in it
            page = browser.new_context().new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}{path}")
            yield page, errors
        finally:
            browser.close()
