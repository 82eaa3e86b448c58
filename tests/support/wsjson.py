"""Small helpers for tests that speak protocol v2 as JSON over a real websocket client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.server import RunningServer

Frame = dict[str, Any]
TIMEOUT = 20.0
# The client's first frame: the protocol version it speaks (docs/protocol.md).
HELLO_FRAME: Frame = {"type": "hello", "id": "hello", "v": 2}
HELLO = json.dumps(HELLO_FRAME)


async def open_ws(
    server: RunningServer, token: str | None, *, origin: str | None = None
) -> ClientConnection:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await connect(
        server.ws_url,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        open_timeout=TIMEOUT,
    )


async def connected(server: RunningServer, token: str) -> ClientConnection:
    """A connection past its ``hello`` frame."""
    ws = await open_ws(server, token)
    hello = await recv(ws)
    assert hello["type"] == "hello"
    await ws.send(HELLO)
    return ws


def unseal(server: RunningServer, frame: Frame, matter_id: int) -> Frame:
    """A contact's ``event``/``ack`` with its cursor token read back into the seq
    (as only the server, holding the key, can); a staff frame as it is."""
    if "cursor" not in frame:
        return frame
    assert "seq" not in frame, frame  # a contact never sees a seq
    codec = server.app.state.runtime.frames.cursors
    return dict(frame, seq=codec.seq_of(frame["cursor"], matter_id))


async def recv(ws: ClientConnection) -> Frame:
    frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def recv_past(ws: ClientConnection, *types: str) -> Frame:
    """The next frame that is none of ``types``: a staff socket also gets frames
    whose time is not the test's (the reviewer's ``reviews`` count, pushed up to
    0.2 s after a client's message: rtportal.reviews.live)."""
    while True:
        frame = await recv(ws)
        if frame.get("type") not in types:
            return frame


async def until_closed(ws: ClientConnection) -> tuple[int | None, list[Frame]]:
    """Read until the server closes: its close code and every frame before it."""
    frames: list[Frame] = []

    async def loop() -> int | None:
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    return await asyncio.wait_for(loop(), TIMEOUT), frames
