"""Logging out closes that session's websockets at once (4010), not the user's other devices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal.access.sessions import issue_token, session_id_of
from rtportal.app import create_app
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsjson import HELLO

TIMEOUT = 20.0


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings)) as srv:
        yield srv


async def _open(server: RunningServer, token: str) -> ClientConnection:
    ws = await connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {token}"},
        proxy=None,
        compression=None,
        open_timeout=TIMEOUT,
    )
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert hello["type"] == "hello"
    await ws.send(HELLO)
    return ws


async def _close_code(ws: ClientConnection) -> int | None:
    async def loop() -> int | None:
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    return await asyncio.wait_for(loop(), TIMEOUT)


async def test_logout_closes_only_that_sessions_websockets(
    server: RunningServer, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    phone_token = kit.tokens["contact"]
    async with kit.db.write() as session:
        laptop_token = await issue_token(
            session, kit.settings.secret_key, "contact", kit.contact.id, label="laptop", ttl=None
        )
    key = kit.settings.secret_key
    assert session_id_of(key, phone_token) != session_id_of(key, laptop_token)

    phone = await _open(server, phone_token)
    laptop = await _open(server, laptop_token)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            r = await http.delete(
                "/api/v1/session", headers={"Authorization": f"Bearer {phone_token}"}
            )
            assert r.status_code == 200, r.text
        assert await _close_code(phone) == 4010

        # The other device's session is untouched: it still answers a ping.
        await laptop.send(json.dumps({"type": "ping", "id": "p1"}))
        pong = json.loads(await asyncio.wait_for(laptop.recv(), TIMEOUT))
        assert pong == {"type": "pong", "id": "p1"}

        # And the logged-out token cannot come back.
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {phone_token}"})
            assert me.status_code == 401
            assert me.json()["error"]["code"] == "unauthenticated"
    finally:
        await phone.close()
        await laptop.close()


async def test_revoked_session_closes_even_without_a_control_message(
    server: RunningServer, make_firm: MakeFirm
) -> None:
    """A token revoked in the database alone (its ctl message lost) is found by the poll."""
    from rtportal.access.sessions import revoke_token

    kit: FirmKit = await make_firm()
    async with kit.db.write() as session:
        other_token = await issue_token(
            session,
            kit.settings.secret_key,
            "contact",
            kit.contact.id,
            label="other device",
            ttl=None,
        )
    revoked = await _open(server, kit.tokens["contact"])
    kept = await _open(server, other_token)
    try:
        async with kit.db.write() as session:  # no hub.close_principal at all
            assert await revoke_token(session, kit.settings.secret_key, kit.tokens["contact"])
        assert await _close_code(revoked) == 4010  # within 5 safety polls (0.5 s each)
        await kept.send(json.dumps({"type": "ping", "id": "p1"}))
        pong = json.loads(await asyncio.wait_for(kept.recv(), TIMEOUT))
        assert pong == {"type": "pong", "id": "p1"}
    finally:
        await revoked.close()
        await kept.close()


async def test_removal_from_a_matter_ends_that_matters_live_stream(
    server: RunningServer, make_firm: MakeFirm
) -> None:
    """A removed contact's subscribed websocket closes 4011; its other matter's socket stays."""
    kit: FirmKit = await make_firm()
    second = await kit.add_matter(title="Second")
    watching = await _open(server, kit.tokens["contact"])
    other = await _open(server, kit.tokens["contact"])
    try:
        for ws, ref in ((watching, kit.ref), (other, second.reference)):
            await ws.send(
                json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": ref, "after": 0}]})
            )
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert frame["type"] == "subscribed", frame
        await kit.remove_member(kit.contact)  # no control message: the hub's poll finds it
        assert await _close_code(watching) == 4011
        await other.send(json.dumps({"type": "ping", "id": "p1"}))
        pong = json.loads(await asyncio.wait_for(other.recv(), TIMEOUT))
        assert pong == {"type": "pong", "id": "p1"}
    finally:
        await watching.close()
        await other.close()
