"""HTTP hardening on the real app: security headers on every kind of
response, and only the files a page needs served from ``static/``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rtportal.app import create_app
from rtportal.http.static import PortalStatic
from rtportal.settings import Settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


async def _client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
async def https_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of a deployment whose public URL is https."""
    https = dataclasses.replace(settings, public_url="https://portal.example")
    async for client in _client(create_app(https)):
        yield client


async def _responses(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """A page, a static file it loads, an API answer and two errors."""
    page = await client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    asset = re.search(r'(?:src|href)="(/[^"]+\.(?:js|css))"', page.text)
    assert asset is not None, "the page loads no same-origin script or style"
    static = await client.get(asset.group(1))
    assert static.status_code == 200
    api = await client.get("/healthz")
    assert api.status_code == 200
    unauthenticated = await client.get("/api/v1/me")
    assert unauthenticated.status_code == 401
    missing = await client.get("/no/such/file.js")
    assert missing.status_code == 404
    return {
        "page": page,
        "static": static,
        "api": api,
        "api error": unauthenticated,
        "static error": missing,
    }


def _check(response: httpx.Response, hsts: bool) -> None:
    headers = response.headers
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    policy = headers["permissions-policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy
    if hsts:
        assert headers["strict-transport-security"] == "max-age=31536000"
    else:
        assert "strict-transport-security" not in headers


async def test_every_response_carries_the_security_headers(http: httpx.AsyncClient) -> None:
    for response in (await _responses(http)).values():
        _check(response, hsts=False)  # the public URL is http: no HSTS


async def test_hsts_only_when_the_public_url_is_https(https_http: httpx.AsyncClient) -> None:
    for response in (await _responses(https_http)).values():
        _check(response, hsts=True)


# What the crypto library keeps for its developers: never served.
DEVELOPER_FILES = (
    "/crypto/browser/browser.html",
    "/crypto/browser/browser_check.js",
    "/crypto/README.md",
    "/crypto/package.json",
    "/crypto/test/helpers.mjs",
    "/crypto/test/stream.test.mjs",
    "/crypto/tools/verify.mjs",
    "/crypto/tools/generate.mjs",
    "/vendor/README.md",
    "/vendor/LICENSE.hash-wasm",
)


async def test_crypto_test_and_tool_files_are_not_served(http: httpx.AsyncClient) -> None:
    for path in DEVELOPER_FILES:
        assert (await http.get(path)).status_code == 404, path
    # The library itself is what pages import: still served.
    library = await http.get("/crypto/index.js")
    assert library.status_code == 200
    assert "javascript" in library.headers["content-type"]


async def test_the_allow_list_holds_for_any_layout(tmp_path: Path) -> None:
    """The rule names kinds of files and tooling folders, not today's paths."""
    files = {
        "index.html": 200,
        "lib/a.js": 200,
        "lib/a.css": 200,
        "lib/sub/index.html": 200,
        "lib/test/a.js": 404,
        "lib/tests/a.js": 404,
        "lib/tools/a.js": 404,
        "lib/browser/check.html": 404,
        "lib/node_modules/x/index.js": 404,
        "lib/a.test.mjs": 404,
        "lib/package.json": 404,
        "lib/README.md": 404,
        "lib/.hidden.js": 404,
        "lib/.git/config.js": 404,
        "lib/gen.py": 404,
        "lib/keys.pem": 404,
    }
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    app = Starlette(routes=[Mount("/", app=PortalStatic(directory=tmp_path, html=True))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        got = {name: (await client.get("/" + name)).status_code for name in files}
        assert got == files
        assert (await client.get("/lib/sub/")).status_code == 200
        assert (await client.get("/lib/test/")).status_code == 404
