"""Everything one session receives: each HTTP body and each websocket frame, kept as text.

``record_http`` hooks a ``Client``'s HTTP session (the SDK's own calls
included); ``Live`` is a raw websocket of that session (its cookie, the
server's Origin, protocol v2) read by a background task into ``frames``,
with ``until`` to wait for a frame (no sleeps: a later frame is the barrier
that proves an earlier one never came).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from rtportal.sdk.client import Client
from tests.support.server import RunningServer
from tests.support.wsjson import HELLO, TIMEOUT

Frame = dict[str, Any]

__all__ = ["Frame", "Live", "is_", "record_http"]


def record_http(client: Client, into: list[str]) -> None:
    """Append every response body ``client`` gets from now on to ``into``."""

    async def hook(response: httpx.Response) -> None:
        await response.aread()
        into.append(f"{response.request.method} {response.request.url.path} -> "
                    f"{response.status_code} {response.text}")  # fmt: skip

    client.http._client.event_hooks["response"].append(hook)


def is_(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


class Live:
    """One websocket of a signed-in ``Client``; every frame it received, as received."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.texts: list[str] = []
        self.frames: list[Frame] = []
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, client: Client, name: str) -> Live:
        http = client.http
        origin = Origin(http.origin) if http.origin else None
        ws = await connect(
            http.ws_url, additional_headers=http._auth_headers(), origin=origin, proxy=None
        )
        live = cls(ws, name)
        await live.until(is_("hello"))
        await ws.send(HELLO)
        return live

    @classmethod
    async def bearer(cls, server: RunningServer, token: str, name: str) -> Live:
        """The same with an API token (``Authorization: Bearer``)."""
        ws = await connect(
            server.ws_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            origin=Origin(server.origin),
            proxy=None,
        )
        live = cls(ws, name)
        await live.until(is_("hello"))
        await ws.send(HELLO)
        return live

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                assert isinstance(text, str)
                async with self._arrived:
                    self.texts.append(text)
                    self.frames.append(json.loads(text))
                    self._arrived.notify_all()

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, match: Callable[[Frame], bool], start: int = 0) -> Frame:
        """The first frame from index ``start`` on that matches (waiting for it)."""

        def found() -> Frame | None:
            return next((f for f in self.frames[start:] if match(f)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), TIMEOUT)
        frame = found()
        assert frame is not None
        return frame

    async def request(self, **frame: Any) -> Frame:
        """Send a frame with an ``id``; its answer (``ack`` or ``error`` with that id)."""
        start = len(self.frames)
        await self.send(**frame)
        fid = frame["id"]
        return await self.until(lambda f: f.get("id") == fid and f.get("type") != "hello", start)

    async def subscribe(self, ref: str, after: int | str = 0) -> Frame:
        answer = await self.request(type="subscribe", id=f"sub-{ref}", subs=[{"matter": ref,
                                    "after": after}])  # fmt: skip
        return answer

    async def close(self) -> None:
        await self.ws.close()
        await self._task
