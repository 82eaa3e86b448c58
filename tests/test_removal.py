"""Removal from a matter ends a send-only socket's writes at once, on every worker.

A websocket that never subscribed but sent to a matter remembers its
access (no membership query per send). Removing the member must close it
(4011 access removed) before another send is acked, whichever worker it is on
(``rtportal.access.removal.remove_member``), and, should the control
message be lost, the hub's membership re-check must close it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal.app import create_app
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsjson import HELLO

TIMEOUT = 20.0


@contextlib.asynccontextmanager
async def workers(settings: Settings, n: int) -> AsyncIterator[list[RunningServer]]:
    """``n`` uvicorn workers sharing the database and the broker (named bus or Redis)."""
    url = settings.broker_url
    if url == "memory://":
        url = f"memory://removal-{uuid.uuid4().hex}"
    shared = dataclasses.replace(settings, broker_url=url)
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(running_server(create_app(shared))) for _ in range(n)
        ]


async def sender(server: RunningServer, token: str) -> ClientConnection:
    ws = await connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {token}"},
        proxy=None,
        open_timeout=TIMEOUT,
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "hello"
    await ws.send(HELLO)
    return ws


async def send(ws: ClientConnection, ref: str, request_id: str) -> None:
    frame = {
        "type": "send",
        "id": request_id,
        "matter": ref,
        "client_id": request_id,
        "kind": "message",
        "audience": "portal",
        "payload": {"thread": request_id},
    }
    await ws.send(json.dumps(frame))


async def frames_until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame the server sent before closing, and the close code."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                seen.append(json.loads(await ws.recv()))

    await asyncio.wait_for(read(), TIMEOUT)
    return seen, ws.close_code


async def acked(ws: ClientConnection, ref: str, request_id: str) -> None:
    await send(ws, ref, request_id)
    answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert answer["type"] == "ack" and answer["id"] == request_id, answer


def hub_of(server: RunningServer) -> Hub:
    hub: Hub = server.app.state.hub
    return hub


async def test_removal_closes_a_send_only_socket_before_another_send_is_acked(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    second = await kit.add_matter(title="Second")
    async with workers(settings, 1) as (server,):
        ws = await sender(server, kit.tokens["contact"])
        elsewhere = await sender(server, kit.tokens["contact"])
        try:
            await acked(ws, kit.ref, "before")  # access now remembered by the socket
            await acked(elsewhere, second.reference, "other-matter")
            await kit.remove_member(kit.contact, hub=hub_of(server))
            await send(ws, kit.ref, "after")
            frames, code = await frames_until_closed(ws)
            assert code == 4011
            assert not [f for f in frames if f.get("type") == "ack"], frames
            # Only the connections holding that matter close.
            await acked(elsewhere, second.reference, "still-there")
        finally:
            await ws.close()
            await elsewhere.close()


async def test_removal_closes_send_only_sockets_on_every_worker(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """Two workers on one broker: a named in-process bus, or Redis when configured.

    The other worker acts when the control message arrives (milliseconds):
    a send it is already committing then may still be acked, so this test
    waits for the close rather than racing a send against it.
    """
    kit: FirmKit = await make_firm()
    async with workers(settings, 2) as (a, b):
        on_b = await sender(b, kit.tokens["contact"])
        subscribed_a = await sender(a, kit.tokens["contact"])
        try:
            await acked(on_b, kit.ref, "before")
            await subscribed_a.send(
                json.dumps(
                    {"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref, "after": 0}]}
                )
            )
            frame = json.loads(await asyncio.wait_for(subscribed_a.recv(), TIMEOUT))
            assert frame["type"] == "subscribed", frame
            # Worker a removes; worker b hears it on the broker and closes
            # its send-only socket (a's subscribed one closes at once).
            await kit.remove_member(kit.contact, hub=hub_of(a))
            assert (await frames_until_closed(subscribed_a))[1] == 4011
            frames, code = await frames_until_closed(on_b)
            assert code == 4011 and frames == [], frames
        finally:
            await on_b.close()
            await subscribed_a.close()


async def test_a_lost_removal_message_is_caught_by_the_recheck_for_send_only_sockets(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """The membership ends in the database only (its control message lost)."""
    kit: FirmKit = await make_firm()
    async with workers(settings, 1) as (server,):
        ws = await sender(server, kit.tokens["contact"])
        try:
            await acked(ws, kit.ref, "before")
            await kit.remove_member(kit.contact)  # no hub: nothing on the broker
            # Within 5 safety polls (0.5 s each in the test settings).
            assert (await frames_until_closed(ws))[1] == 4011
        finally:
            await ws.close()
