"""Frames that cost no write token stay cheap for the server (docs/protocol.md).

A ping padded past ``max_control_frame_bytes`` closes the connection 1009;
a subscribe to many matters the client may not see is answered per matter
but logged as at most one ``subscribe_denied`` line per connection per
interval, with the count of the lines left out.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed

from rtportal.app import create_app
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.wsjson import connected

_DENIED = 50


async def test_a_padded_ping_closes_1009(settings: Settings, make_firm: MakeFirm) -> None:
    kit: FirmKit = await make_firm()
    async with running_server(create_app(settings)) as server:
        ws = await connected(server, kit.tokens["contact"])
        pad = ",".join(["1.5e300"] * 20_000)
        await ws.send('{"type":"ping","id":"p","pad":[' + pad + "]}")
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # before the close, at most an error frame
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_denied_subscribes_are_logged_once_per_interval(
    settings: Settings, make_firm: MakeFirm, caplog: pytest.LogCaptureFixture
) -> None:
    kit: FirmKit = await make_firm()
    caplog.set_level(logging.WARNING, logger="rtportal.ws")
    async with running_server(create_app(settings)) as server:
        ws = await connected(server, kit.tokens["contact"])
        subs = [{"matter": f"ZZZZ{i:04d}"} for i in range(_DENIED)]
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": subs}))
        codes = [json.loads(await ws.recv())["code"] for _ in range(_DENIED)]
        assert codes == ["not_found"] * _DENIED
        await ws.close()
    lines = [r for r in caplog.records if r.getMessage() == "subscribe_denied"]
    assert len(lines) == 1
