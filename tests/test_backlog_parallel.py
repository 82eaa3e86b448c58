"""Several subscriptions' backlogs at once stay paced: never a 4008.

docs/protocol.md: "A backlog never causes a 4008: it is paced". Eight
matters' backlogs are requested in one subscribe by a client with a small
receive buffer that does not read for a moment; every page must still be
delivered, none may push the connection over ``ws_send_buffer_max``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import secrets
import socket

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rtportal.app import create_app
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.wsjson import HELLO

_MATTERS = 8
_PER_MATTER = 3


async def test_parallel_backlogs_are_paced_not_closed_4008(
    settings: Settings, make_firm: MakeFirm
) -> None:
    settings = dataclasses.replace(settings, ws_send_buffer_max=1024 * 1024, write_burst=1000)
    kit: FirmKit = await make_firm()
    refs = [kit.ref] + [
        (await kit.add_matter(title=f"m{i}")).reference for i in range(_MATTERS - 1)
    ]
    app = create_app(settings)
    async with running_server(app) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            blob = base64.urlsafe_b64encode(secrets.token_bytes(200_000)).rstrip(b"=").decode()
            for ref in refs:
                for i in range(_PER_MATTER):
                    r = await http.post(
                        f"/api/v1/matters/{ref}/events",
                        headers=kit.auth("staff"),
                        json={
                            "kind": "message",
                            "client_id": f"{ref}-{i}",
                            "payload": {"thread": f"t{i}", "to": [kit.contact.id]},
                            "blob": blob,
                        },
                    )
                    assert r.status_code == 201, r.text
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect((server.host, server.port))
        sock.setblocking(False)
        ws = await connect(
            server.ws_url,
            sock=sock,
            additional_headers=kit.auth("contact"),
            proxy=None,
            compression=None,
            max_size=None,
            max_queue=1,
        )
        try:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(HELLO)
            subs = [{"matter": r, "after": 0} for r in refs]
            await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": subs}))
            # A slow client: reads nothing for a moment while the pages are read.
            await asyncio.sleep(2.0)
            events = 0
            code: int | None = None
            try:
                while events < _PER_MATTER * len(refs):
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    events += frame["type"] == "event"
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            assert code is None, f"closed {code} after {events} events"
            assert events == _PER_MATTER * len(refs)
        finally:
            await ws.close()
