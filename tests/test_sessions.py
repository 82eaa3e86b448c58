"""Session lifetimes: single-use login links, idle and absolute ends, token families,
sign out everywhere, and the ``__Host-`` cookie over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal.access.sessions import (
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    hash_token,
    issue_login_link,
    live_sessions,
    session_id_of,
)
from rtportal.app import create_app
from rtportal.db.models import AuthToken, utcnow
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.csrf import csrf_header
from tests.support.server import RunningServer, running_server
from tests.support.wsjson import HELLO

TIMEOUT = 20.0


async def login_link(kit: FirmKit, kind: str = "contact", principal_id: int | None = None) -> str:
    async with kit.db.write() as session:
        return await issue_login_link(
            session, kit.settings, kind, kit.contact.id if principal_id is None else principal_id
        )


async def set_token(kit: FirmKit, token: str, **values: datetime | None) -> None:
    """Move a token's stored timestamps (instead of waiting for them to pass)."""
    async with kit.db.write() as session:
        await session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == hash_token(kit.settings.secret_key, token))
            .values(**values)
        )


async def stored(kit: FirmKit, token: str) -> AuthToken:
    async with kit.db.read() as session:
        row = (
            await session.execute(
                select(AuthToken).where(
                    AuthToken.token_hash == hash_token(kit.settings.secret_key, token)
                )
            )
        ).scalar_one()
    return row


async def exchange(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """POST /api/v1/session with ``token``; the client's cookie jar is left empty."""
    response = await http.post("/api/v1/session", json={"token": token})
    http.cookies.clear()
    return response


def cookie_token(response: httpx.Response, name: str = SESSION_COOKIE) -> str:
    assert response.status_code == 201, response.text
    value = response.cookies.get(name)
    assert value, response.headers.get("set-cookie")
    return value


async def me_status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code


# -- login links ------------------------------------------------------------------


async def test_a_login_link_works_once(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    link = await login_link(kit)
    assert await me_status(http, link) == 401  # a login link is no bearer token
    first = await exchange(http, link)
    session_token = cookie_token(first)
    assert first.json()["principal"]["id"] == kit.contact.id
    second = await exchange(http, link)
    assert second.status_code == 401, second.text
    assert second.json()["error"]["code"] == "unauthenticated"
    assert await me_status(http, session_token) == 200
    assert (await stored(kit, link)).used_at is not None


async def test_concurrent_exchanges_of_one_link_make_at_most_one_session(
    app: Starlette, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    link = await login_link(kit)
    transport = httpx.ASGITransport(app=app)
    clients = [
        httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in range(4)
    ]
    try:
        answers = await asyncio.gather(
            *(c.post("/api/v1/session", json={"token": link}) for c in clients)
        )
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(a.status_code for a in answers) == [201, 401, 401, 401]
    async with kit.db.read() as session:
        made = (
            await session.execute(
                select(AuthToken).where(
                    AuthToken.parent_id == (await stored(kit, link)).id,
                )
            )
        ).all()
    assert len(made) == 1


async def test_an_expired_login_link_is_refused(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    link = await login_link(kit)
    row = await stored(kit, link)
    assert row.expires_at is not None and row.kind == "login"
    assert row.expires_at - row.created_at == timedelta(seconds=kit.settings.login_link_ttl)
    await set_token(kit, link, expires_at=utcnow() - timedelta(seconds=1))
    refused = await exchange(http, link)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"


# -- idle and absolute lifetime ---------------------------------------------------


async def test_a_session_idle_for_too_long_is_refused(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    session_token = cookie_token(await exchange(http, await login_link(kit)))
    row = await stored(kit, session_token)
    assert row.kind == "session" and row.idle_seconds == kit.settings.session_idle
    # Active a minute ago: still live; the request records the activity.
    await set_token(kit, session_token, last_seen_at=utcnow() - timedelta(seconds=90))
    assert await me_status(http, session_token) == 200
    seen = (await stored(kit, session_token)).last_seen_at
    assert seen is not None and utcnow() - seen < timedelta(seconds=30)
    # Idle past the timeout: refused, by HTTP and by the hub's re-check alike.
    idle = timedelta(seconds=kit.settings.session_idle + 1)
    await set_token(kit, session_token, last_seen_at=utcnow() - idle)
    assert await me_status(http, session_token) == 401
    sid = session_id_of(kit.settings.secret_key, session_token)
    async with kit.db.read() as session:
        assert await live_sessions(session, [sid]) == set()


async def test_a_session_ends_at_its_absolute_lifetime_and_exchange_cannot_extend_it(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    first = await exchange(http, await login_link(kit))
    origin = cookie_token(first)
    origin_row = await stored(kit, origin)
    assert origin_row.expires_at is not None
    lifetime = timedelta(seconds=kit.settings.session_lifetime)
    assert origin_row.expires_at - origin_row.created_at == lifetime
    # Pretend the session is 11 hours old: an exchange inherits its end.
    end = utcnow() + timedelta(hours=1)
    await set_token(kit, origin, expires_at=end)
    derived_response = await exchange(http, origin)
    derived = cookie_token(derived_response)
    derived_row = await stored(kit, derived)
    assert derived_row.expires_at == end and derived_row.parent_id == origin_row.id
    max_age = re.search(r"max-age=(\d+)", derived_response.headers["set-cookie"].lower())
    assert max_age is not None and 3500 < int(max_age.group(1)) <= 3600
    again = await stored(kit, cookie_token(await exchange(http, derived)))
    assert again.expires_at == end
    # Past the end: refused, however recently it was used.
    await set_token(kit, derived, expires_at=utcnow() - timedelta(seconds=1))
    assert await me_status(http, derived) == 401
    refused = await exchange(http, derived)
    assert refused.status_code == 401


# -- families: logout revokes what was exchanged from the session ----------------


@contextlib.asynccontextmanager
async def two_workers(settings: Settings) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two uvicorn workers on one database and one broker (a named in-process bus or Redis)."""
    broker_url = settings.broker_url
    if broker_url == "memory://":
        broker_url = f"memory://sessions-{uuid.uuid4().hex}"
    shared = dataclasses.replace(settings, broker_url=broker_url)
    async with (
        running_server(create_app(shared)) as a,
        running_server(create_app(shared)) as b,
    ):
        yield a, b


async def open_socket(
    server: RunningServer, token: str, *, cookie: bool = False
) -> ClientConnection:
    header = (
        ("Cookie", f"{SESSION_COOKIE}={token}") if cookie else ("Authorization", f"Bearer {token}")
    )
    ws = await connect(server.ws_url, additional_headers=[header], proxy=None, open_timeout=TIMEOUT)
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert hello["type"] == "hello", hello
    await ws.send(HELLO)
    return ws


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""

    async def drain() -> int | None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
        return ws.close_code

    return await asyncio.wait_for(drain(), TIMEOUT)


async def test_logout_of_the_origin_revokes_the_derived_session_and_its_socket(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with two_workers(settings) as (a, b):
        async with httpx.AsyncClient(base_url=a.base_url, trust_env=False) as http:
            origin = cookie_token(await exchange(http, await login_link(kit)))
            derived = cookie_token(await exchange(http, origin))
            grandchild = cookie_token(await exchange(http, derived))
            on_b = await open_socket(b, derived, cookie=True)
            deeper = await open_socket(a, grandchild)
            try:
                out = await http.delete(
                    "/api/v1/session", headers={"Authorization": f"Bearer {origin}"}
                )
                assert out.status_code == 200, out.text
                assert await closed_with(on_b) == 4010
                assert await closed_with(deeper) == 4010
            finally:
                await on_b.close()
                await deeper.close()
            for token in (origin, derived, grandchild):
                assert await me_status(http, token) == 401


async def test_sign_out_everywhere_closes_every_socket_on_every_worker(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with two_workers(settings) as (a, b):
        async with httpx.AsyncClient(base_url=a.base_url, trust_env=False) as http:
            phone = cookie_token(await exchange(http, await login_link(kit)))
            laptop = cookie_token(await exchange(http, await login_link(kit)))
            unused = await login_link(kit)
            sockets = [
                await open_socket(a, phone),
                await open_socket(b, phone),
                await open_socket(b, laptop, cookie=True),
                await open_socket(a, kit.tokens["contact"]),
            ]
            others = await open_socket(b, kit.tokens["staff"])  # another principal
            try:
                out = await http.delete(
                    "/api/v1/sessions",
                    headers={
                        "Cookie": f"{SESSION_COOKIE}={laptop}",
                        **csrf_header(settings.secret_key, laptop),
                    },
                )
                assert out.status_code == 200, out.text
                # Every token not yet revoked: the two sessions, the kit's API
                # token and the three login links (two used, one not).
                assert out.json()["revoked"] == 6
                assert f"{SESSION_COOKIE}=" in out.headers["set-cookie"]
                codes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
                assert codes == [4010] * 4
                await others.send(json.dumps({"type": "ping", "id": "p"}))
                pong = json.loads(await asyncio.wait_for(others.recv(), TIMEOUT))
                assert pong == {"type": "pong", "id": "p"}
            finally:
                for ws in [*sockets, others]:
                    await ws.close()
            for token in (phone, laptop, kit.tokens["contact"]):
                assert await me_status(http, token) == 401
            assert (await exchange(http, unused)).status_code == 401


# -- the cookie ----------------------------------------------------------------------


async def test_the_host_prefixed_cookie_over_https(app: Starlette, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as https:
        response = await https.post("/api/v1/session", json={"token": await login_link(kit)})
        https.cookies.clear()
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SECURE_SESSION_COOKIE}="), cookie
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "path", "httponly", "samesite"} <= attributes
        assert "domain" not in attributes and "path=/" in cookie.lower()
        token = cookie_token(response, SECURE_SESSION_COOKIE)
        ok = await https.get("/api/v1/me", headers={"Cookie": f"{SECURE_SESSION_COOKIE}={token}"})
        assert ok.status_code == 200
        # Over HTTPS a plain-named cookie is not read (it may have been planted).
        planted = await https.get("/api/v1/me", headers={"Cookie": f"{SESSION_COOKIE}={token}"})
        assert planted.status_code == 401
        out = await https.delete(
            "/api/v1/session",
            headers={
                "Cookie": f"{SECURE_SESSION_COOKIE}={token}",
                **csrf_header(app.state.settings.secret_key, token),
            },
        )
        assert out.headers["set-cookie"].startswith(f"{SECURE_SESSION_COOKIE}=")
    # Plain http (development on localhost): the plain name, not Secure.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        response = await plain.post("/api/v1/session", json={"token": await login_link(kit)})
        assert response.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
        assert "secure" not in response.headers["set-cookie"].lower()


async def until_seen_after(kit: FirmKit, token: str, moment: datetime) -> None:
    """Wait until the session's recorded activity is later than ``moment``."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        seen = (await stored(kit, token)).last_seen_at
        if seen is not None and seen > moment:
            return
        assert asyncio.get_running_loop().time() < deadline, "activity not recorded"
        await asyncio.sleep(0.05)  # reason: polling the row the touch task writes


async def test_a_ping_is_activity_so_an_open_page_that_only_reads_stays_signed_in(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """The page pings while open; a reader that never sends must not idle out."""
    kit = await make_firm()
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            token = cookie_token(await exchange(http, await login_link(kit)))
        ws = await open_socket(server, token, cookie=True)
        try:
            stale = utcnow() - timedelta(seconds=90)  # last active 90 s ago
            await set_token(kit, token, last_seen_at=stale)
            await ws.send(json.dumps({"type": "ping", "id": "p1"}))
            pong = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert pong == {"type": "pong", "id": "p1"}
            await until_seen_after(kit, token, stale + timedelta(seconds=60))
        finally:
            await ws.close()


async def test_the_websocket_picks_the_cookie_by_the_same_rule_as_http(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """Behind a trusted TLS proxy (X-Forwarded-Proto: https) the plain-named
    cookie, which a sibling subdomain could plant, authenticates nobody: not
    over HTTP, not over the websocket; the ``__Host-`` cookie does."""
    kit = await make_firm()
    assert not settings.public_url.startswith("https://")
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            token = cookie_token(await exchange(http, await login_link(kit)))
            for name, status in ((SESSION_COOKIE, 401), (SECURE_SESSION_COOKIE, 200)):
                me = await http.get(
                    "/api/v1/me",
                    headers={"Cookie": f"{name}={token}", "X-Forwarded-Proto": "https"},
                )
                assert me.status_code == status, (name, me.text)
        headers = {"Cookie": f"{SESSION_COOKIE}={token}", "X-Forwarded-Proto": "https"}
        ws = await connect(server.ws_url, additional_headers=headers, proxy=None)
        try:
            assert await closed_with(ws) == 4001
        finally:
            await ws.close()
        headers["Cookie"] = f"{SECURE_SESSION_COOKIE}={token}"
        ws = await connect(server.ws_url, additional_headers=headers, proxy=None)
        try:
            hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert hello["type"] == "hello", hello
            await ws.send(HELLO)
        finally:
            await ws.close()


async def test_websocket_activity_keeps_a_session_alive_and_idleness_closes_it(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with two_workers(settings) as (a, _):
        async with httpx.AsyncClient(base_url=a.base_url, trust_env=False) as http:
            token = cookie_token(await exchange(http, await login_link(kit)))
        ws = await open_socket(a, token, cookie=True)
        try:
            # Last active 90 s ago: a subscribe records the activity (once a minute).
            stale = utcnow() - timedelta(seconds=90)
            await set_token(kit, token, last_seen_at=stale)
            subscribe = {"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref, "after": 0}]}
            await ws.send(json.dumps(subscribe))
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert frame["type"] == "subscribed", frame

            await until_seen_after(kit, token, stale + timedelta(seconds=60))
            # Idle past the timeout: the hub's session re-check closes the socket.
            idle = timedelta(seconds=kit.settings.session_idle + 1)
            await set_token(kit, token, last_seen_at=utcnow() - idle)
            assert await closed_with(ws) == 4010
        finally:
            await ws.close()
