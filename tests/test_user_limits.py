"""Per-user limits, as docs/protocol.md and docs/api.md describe them, on
real servers (both websocket transports), a real client and the test database.

* ``hello`` advertises the limits the server enforces: ``max_in_flight``
  (requests executing at which reading pauses), ``write_rate`` and
  ``write_burst`` (the user's token bucket);
* a send beyond the bucket is answered ``rate_limited`` with
  ``details.retry_after`` and nothing is stored; the bucket is the user's,
  shared by their websockets and their HTTP POSTs (429 with Retry-After);
  other users are not affected;
* pipelining beyond ``max_in_flight`` is never refused: it waits;
* a user's connection beyond ``max_connections_per_user`` is closed with
  4029 ``too_many_connections`` after the upgrade; closing one makes room.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from rtportal.app import create_app
from rtportal.limits import UserLimits
from rtportal.principal import Principal
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsclient import wait_until
from tests.test_ws_endpoint import (
    RECIPIENTS,
    TRANSPORTS,
    close_code,
    connected,
    open_ws,
    recv,
    send_frame,
    stored,
)

TIMEOUT = 20.0
Serve = Callable[[Starlette], AbstractAsyncContextManager[RunningServer]]
Json = dict[str, Any]

BURST = 5
RATE = 0.2  # tokens per second: no refill worth one token while a test runs
MAX_CONNECTIONS = 2


@pytest.fixture(params=list(TRANSPORTS))
def serve(request: pytest.FixtureRequest) -> Serve:
    return functools.partial(running_server, ws=TRANSPORTS[request.param])


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        write_burst=BURST,
        write_rate=RATE,
        max_connections_per_user=MAX_CONNECTIONS,
    )


@pytest.fixture
async def server(serve: Serve, limited: Settings) -> AsyncIterator[RunningServer]:
    async with serve(create_app(limited)) as srv:
        yield srv


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    made = await make_firm()
    RECIPIENTS[made.ref] = [made.contact.id]  # the client a thread is addressed to
    return made


async def _answers(ws: Any, ids: list[str]) -> dict[str, Json]:
    """The ack or error of each of ``ids`` (event frames skipped)."""
    out: dict[str, Json] = {}
    while len(out) < len(ids):
        frame = await recv(ws, TIMEOUT)
        if frame["type"] in ("ack", "error"):
            out[frame["id"]] = frame
    return out


async def test_hello_advertises_the_enforced_limits(
    server: RunningServer, kit: FirmKit, limited: Settings
) -> None:
    ws = await open_ws(server, kit.tokens["staff"])
    try:
        hello = await recv(ws)
        limits = hello["limits"]
        assert limits["write_rate"] == RATE
        assert limits["write_burst"] == BURST
        assert limits["max_in_flight"] == 16
        assert "max_inflight_sends" not in limits
    finally:
        await ws.close()


async def test_sends_beyond_the_write_burst_are_rate_limited(
    server: RunningServer, kit: FirmKit
) -> None:
    ws = await connected(server, kit.tokens["staff"])
    try:
        ids = [f"r-{n}" for n in range(BURST + 2)]
        for fid in ids:
            await ws.send(send_frame(fid, kit.ref, blob=None))
        answers = await _answers(ws, ids)
        assert [answers[f]["type"] for f in ids] == ["ack"] * BURST + ["error"] * 2
        refused = answers[ids[-1]]
        assert refused["code"] == "rate_limited"
        assert 0 < refused["details"]["retry_after"] <= 1 / RATE
        # Refused means not written.
        assert [e.client_id for e in await stored(kit.db, kit.matter.id)] == ids[:BURST]
        # The connection stays usable.
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert (await recv(ws))["type"] == "pong"
    finally:
        await ws.close()


async def test_the_bucket_is_the_users_across_connections_and_http(
    server: RunningServer, kit: FirmKit
) -> None:
    first = await connected(server, kit.tokens["staff"])
    second = await connected(server, kit.tokens["staff"])
    try:
        for ws, ids in ((first, ["a-0", "a-1", "a-2"]), (second, ["b-0", "b-1"])):
            for fid in ids:
                await ws.send(send_frame(fid, kit.ref, blob=None))
            assert {a["type"] for a in (await _answers(ws, ids)).values()} == {"ack"}
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            url = f"/api/v1/matters/{kit.ref}/events"
            body = {"kind": "message", "client_id": "h", "payload": {"thread": "h"}}
            refused = await http.post(url, json=body, headers=kit.auth("staff"))
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1
            # Another user's bucket is their own.
            other = await http.post(url, json=body, headers=kit.auth("contact"))
            assert other.status_code == 201
        await second.send(send_frame("b-2", kit.ref, blob=None))
        assert (await _answers(second, ["b-2"]))["b-2"]["code"] == "rate_limited"
    finally:
        await first.close()
        await second.close()


async def test_pipelining_beyond_max_in_flight_waits_and_is_never_refused(
    serve: Serve, settings: Settings, kit: FirmKit
) -> None:
    roomy = dataclasses.replace(settings, write_burst=1000)
    async with serve(create_app(roomy)) as server:
        ws = await connected(server, kit.tokens["staff"])
        try:
            ids = [f"p-{n:03}" for n in range(100)]
            for fid in ids:
                await ws.send(send_frame(fid, kit.ref, blob=None))
            answers = await _answers(ws, ids)
            assert [answers[f]["type"] for f in ids] == ["ack"] * len(ids)
        finally:
            await ws.close()


async def test_connections_beyond_the_users_cap_are_closed_4029(
    server: RunningServer, kit: FirmKit
) -> None:
    kept = [await connected(server, kit.tokens["staff"]) for _ in range(MAX_CONNECTIONS)]
    contact = await connected(server, kit.tokens["contact"])  # another user: room of their own
    try:
        extra = await open_ws(server, kit.tokens["staff"])
        code, frames = await close_code(extra, TIMEOUT)
        assert (code, frames) == (4029, [])
        assert extra.close_reason == "too_many_connections"
        await kept.pop().close()
        runtime = server.app.state.runtime
        await wait_until(
            lambda: runtime.limits.open_connections(kit.staff) < MAX_CONNECTIONS,
            TIMEOUT,
            "the closed connection to be uncounted",
        )
        kept.append(await connected(server, kit.tokens["staff"]))
    finally:
        for ws in (*kept, contact):
            await ws.close()


def test_the_bucket_refills_at_the_rate(settings: Settings) -> None:
    now = [0.0]
    limits = UserLimits(
        dataclasses.replace(settings, write_burst=2, write_rate=4.0), lambda: now[0]
    )
    ada = Principal("staff", 1, 1, "Ada")
    assert [limits.take_write(ada) for _ in range(3)] == [0.0, 0.0, 0.25]
    now[0] = 0.25  # one token back
    assert limits.take_write(ada) == 0.0
    assert limits.take_write(ada) == pytest.approx(0.25)
