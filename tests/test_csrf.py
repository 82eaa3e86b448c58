"""Every cookie-authenticated write needs the session's X-CSRF-Token (docs/access.md)."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from rtportal.access import csrf
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Writes that need no session (there is none to protect): sign-in and the
# links that lead to one. Every other unsafe route is checked below.
PUBLIC_WRITES = {
    ("POST", "/api/v1/prelogin"),
    ("POST", "/api/v1/signin"),
    ("POST", "/api/v1/session"),
    ("POST", "/api/v1/setup/open"),
    ("POST", "/api/v1/setup/accept"),
    ("POST", "/api/v1/invites/open"),
    ("POST", "/api/v1/invites/accept"),
    ("POST", "/api/v1/invites/passcode"),
}


def unsafe_routes(app: Starlette) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or route.methods is None:
            continue  # the catch-all and the static files
        for method in sorted(route.methods & set(UNSAFE)):
            if (method, route.path) not in PUBLIC_WRITES and route.path.startswith("/api/"):
                found.append((method, route.path))
    return found


def concrete(path: str, kit: FirmKit) -> str:
    """The path with its parameters filled from ``kit``'s objects."""
    values = {"ref": kit.ref, "user_id": str(kit.staff.id)}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


@pytest.fixture
async def cookie(http: httpx.AsyncClient, make_firm: MakeFirm) -> tuple[FirmKit, str]:
    """An org admin's browser session (cookie set on ``http``) and its CSRF token."""
    kit = await make_firm()
    r = await http.post("/api/v1/session", headers=kit.auth("admin"))
    assert r.status_code == 201, r.text
    return kit, r.json()["csrf_token"]


async def test_every_unsafe_cookie_route_needs_the_csrf_token(
    app: Starlette, http: httpx.AsyncClient, cookie: tuple[FirmKit, str]
) -> None:
    kit, token = cookie
    routes = unsafe_routes(app)
    assert len(routes) >= 6, routes
    wrong = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    checked = 0
    for method, path in routes:
        url = concrete(path, kit)
        for presented in (None, "", wrong, "x" * 4000):
            headers = {"Origin": TEST_ORIGIN, "Content-Type": "application/json"}
            if presented is not None:
                headers[csrf.HEADER] = presented
            r = await http.request(method, url, headers=headers, content=b"{}")
            assert r.status_code == 403, (method, path, presented, r.text)
            assert r.json()["error"]["code"] == "csrf_failed", (method, path, r.text)
            checked += 1
    print(f"csrf: {len(routes)} unsafe routes x 4 bad tokens = {checked} refusals")
    # The session is still there, and the right token works.
    me = await http.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["csrf_token"] == token
    ok = await http.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "payload": {"thread": "t"}},
        headers={"Origin": TEST_ORIGIN, csrf.HEADER: token},
    )
    assert ok.status_code == 201, ok.text


async def test_another_sessions_token_does_not_do(
    http: httpx.AsyncClient, cookie: tuple[FirmKit, str]
) -> None:
    kit, token = cookie
    other = await http.post("/api/v1/session", headers=kit.auth("admin"))
    other_token = other.json()["csrf_token"]
    assert other_token != token
    # The client now holds the second session's cookie; the first one's token fails.
    r = await http.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "payload": {"thread": "t"}},
        headers={"Origin": TEST_ORIGIN, csrf.HEADER: token},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"


async def test_bearer_writes_need_no_csrf_token(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    r = await http.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "payload": {"thread": "t"}},
        headers=kit.auth("staff"),
    )
    assert r.status_code == 201, r.text
