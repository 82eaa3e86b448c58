"""The JSON rule (``rtportal.jsonlimits``) against a real server, database and client.

A payload nested ~980 levels deep used to be acked and stored over the
websocket, and from then on every read of its matter failed (live
subscribers closed 1011, history 500, new subscribes ``internal``). Now it
is refused at every parser, and a payload already in the database that
breaks the rule is delivered as ``{"unreadable": true}`` without failing
its matter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text, update

from rtportal.db import Database
from rtportal.db.models import Event, Matter, utcnow
from rtportal.events.log import read_since
from rtportal.jsonlimits import MAX_PAYLOAD_DEPTH, stored_payload
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer
from tests.support.wsjson import connected, recv, recv_past, unseal

TIMEOUT = 20.0


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep: ``{"a": {"a": ... {} ...}}``."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    """The same as JSON text, built without recursion (json.dumps would hit its limit)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    return await make_firm()


async def stored_count(db: Database, matter_id: int) -> int:
    async with db.read() as session:
        return len(await read_since(session, matter_id, 0, 1000))


def send_text(fid: str, ref: str, payload_json: str) -> str:
    return (
        f'{{"type":"send","id":"{fid}","matter":"{ref}","kind":"message",'
        f'"audience":"portal","payload":{payload_json}}}'
    )


@pytest.fixture
async def http_client(uvicorn_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=TIMEOUT) as client:
        yield client


@pytest.mark.parametrize("depth", [MAX_PAYLOAD_DEPTH + 1, 500, 980])
async def test_a_deep_send_is_refused_over_the_websocket_and_nothing_is_stored(
    uvicorn_server: RunningServer, kit: FirmKit, db: Database, depth: int
) -> None:
    ws = await connected(uvicorn_server, kit.tokens["contact"])
    try:
        await ws.send(send_text("deep-1", kit.ref, nested_text(depth)))
        err = await recv(ws)
        assert (err["type"], err["code"]) == ("error", "bad_request")
        # The frame's id is echoed when the frame could be read (docs/protocol.md);
        # 980 levels may be deeper than the parser's stack: then the id is null.
        assert err["id"] == "deep-1" or (depth > 500 and err["id"] is None)
        assert "nested deeper than" in err["message"]
        # The connection is fine (how deep a payload may nest within the
        # limit is up to its kind's schema: a message's is flat).
        await ws.send(send_text("ok-1", kit.ref, json.dumps({"thread": "t"})))
        ack = await recv(ws)
        # A contact's ack names its event by token (protocol v2: never a seq).
        assert (ack["type"], ack["id"]) == ("ack", "ok-1") and "seq" not in ack, ack
        assert unseal(uvicorn_server, ack, kit.matter.id)["seq"] == 1
    finally:
        await ws.close()
    assert await stored_count(db, kit.matter.id) == 1


@pytest.mark.parametrize("depth", [MAX_PAYLOAD_DEPTH + 1, 500, 980])
async def test_a_deep_post_is_refused_over_http_and_nothing_is_stored(
    http_client: httpx.AsyncClient, kit: FirmKit, db: Database, depth: int
) -> None:
    body = f'{{"kind":"message","payload":{nested_text(depth)}}}'
    response = await http_client.post(
        f"/api/v1/matters/{kit.ref}/events",
        content=body,
        headers={**kit.auth("contact"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request" and "nested deeper than" in error["message"]
    ok = await http_client.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "client_id": "ok", "payload": {"thread": "t"}},
        headers=kit.auth("contact"),
    )
    assert ok.status_code == 201, ok.text
    assert await stored_count(db, kit.matter.id) == 1


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1])
async def test_an_integer_beyond_64_bits_is_refused_over_both(
    uvicorn_server: RunningServer,
    http_client: httpx.AsyncClient,
    kit: FirmKit,
    db: Database,
    number: int,
) -> None:
    """Every server frame and broker message is written by orjson, which
    cannot carry it (another worker would have received a float)."""
    ws = await connected(uvicorn_server, kit.tokens["contact"])
    try:
        await ws.send(send_text("big-1", kit.ref, json.dumps({"thread": "t", "sent_at": number})))
        err = await recv(ws)
        assert (err["type"], err["id"], err["code"]) == ("error", "big-1", "bad_request")
        await ws.send(
            send_text("edge-1", kit.ref, json.dumps({"thread": "t", "sent_at": 2**63 - 1}))
        )
        assert (await recv(ws))["type"] == "ack"
    finally:
        await ws.close()
    response = await http_client.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "client_id": "big", "payload": {"thread": "t", "sent_at": number}},
        headers=kit.auth("contact"),
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    assert await stored_count(db, kit.matter.id) == 1


def core(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without the thread fields the server sets (docs/threads.md)."""
    return {k: v for k, v in payload.items() if k in ("sent_at", "unreadable")}


async def poison(db: Database, matter: Matter, seq: int, payload_text: str) -> None:
    """Write ``payload_text`` into event ``seq`` behind the server's back (as a
    ``phase``: SQLite's thread index, migration 0010, refuses malformed JSON in
    the item kinds' rows)."""
    async with db.write() as session:
        await session.execute(
            update(Event)
            .where(Event.matter_id == matter.id, Event.seq == seq)
            .values(payload=payload_text, kind="phase")
        )


async def post(client: httpx.AsyncClient, kit: FirmKit, n: int, server: RunningServer) -> int:
    """Post the contact's message ``n``; its seq, read from its token with the server's key."""
    response = await client.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "message", "client_id": f"c{n}", "payload": {"thread": "t", "sent_at": n}},
        headers=kit.auth("contact"),
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert "seq" not in answer  # a contact never sees a seq
    seq: int = unseal(server, answer, kit.matter.id)["seq"]
    return seq


BAD_STORED = [
    nested_text(980),  # too deep for every encoder
    nested_text(MAX_PAYLOAD_DEPTH + 1),  # over the rule
    '{"a":NaN}',  # not JSON
    '{"a":"\\ud800"}',  # a lone surrogate: decodes, cannot be encoded
    "[1,2]",  # not an object
    "not json",
]


@pytest.mark.parametrize(
    "bad", BAD_STORED, ids=["deep980", "deep33", "nan", "surrogate", "list", "text"]
)
async def test_a_bad_stored_payload_does_not_break_its_matter(
    uvicorn_server: RunningServer,
    http_client: httpx.AsyncClient,
    kit: FirmKit,
    db: Database,
    bad: str,
) -> None:
    assert await post(http_client, kit, 1, uvicorn_server) == 1
    assert await post(http_client, kit, 2, uvicorn_server) == 2
    await poison(db, kit.matter, 2, bad)
    # A live subscriber from before the next write: it receives the bad event
    # through the hub's gap fill (read from the database) and stays open.
    live = await connected(uvicorn_server, kit.tokens["staff"])
    try:
        await live.send(
            json.dumps({"type": "subscribe", "id": "s1", "subs": [{"matter": kit.ref, "after": 2}]})
        )
        subscribed = await recv(live)
        assert (subscribed["type"], subscribed["head"]) == ("subscribed", 2)
        # The bad event is not published: make the hub read it from the database.
        async with db.write() as session:
            await session.execute(
                text("UPDATE matters SET last_seq = last_seq + 1 WHERE id = :id"),
                {"id": kit.matter.id},
            )
            await session.execute(
                insert(Event).values(
                    matter_id=kit.matter.id,
                    seq=3,
                    kind="phase",
                    audience="portal",
                    actor_kind="staff",
                    actor_id=kit.staff.id,
                    actor_name="Sam Staff",
                    payload=bad,
                    created_at=utcnow(),
                )
            )
        assert await post(http_client, kit, 4, uvicorn_server) == 4
        got = [await recv_past(live, "reviews"), await recv_past(live, "reviews")]
        assert [(f["type"], f["seq"], core(f["payload"])) for f in got] == [
            ("event", 3, {"unreadable": True}),
            ("event", 4, {"sent_at": 4}),
        ]
        # A new subscriber's backlog holds every event, the bad ones as placeholders.
        fresh = await connected(uvicorn_server, kit.tokens["contact"])
        try:
            await fresh.send(
                json.dumps({"type": "subscribe", "id": "s2", "subs": [{"matter": kit.ref}]})
            )
            frames = [await recv(fresh) for _ in range(5)]
            codec = uvicorn_server.app.state.runtime.frames.cursors
            # A contact's head and events are tokens (read back with the server's key).
            head = codec.seq_of(frames[0]["head"], kit.matter.id)
            assert frames[0]["type"] == "subscribed" and head == 4
            mid = kit.matter.id
            unsealed = [unseal(uvicorn_server, f, mid) for f in frames[1:]]
            assert [(f["seq"], core(f["payload"])) for f in unsealed] == [
                (1, {"sent_at": 1}),
                (2, {"unreadable": True}),
                (3, {"unreadable": True}),
                (4, {"sent_at": 4}),
            ]
        finally:
            await fresh.close()
        # History answers too.
        response = await http_client.get(
            f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("contact")
        )
        assert response.status_code == 200, response.text
        events = [unseal(uvicorn_server, e, kit.matter.id) for e in response.json()["events"]]
        assert [(e["seq"], core(e["payload"])) for e in events] == [
            (1, {"sent_at": 1}),
            (2, {"unreadable": True}),
            (3, {"unreadable": True}),
            (4, {"sent_at": 4}),
        ]
        # The live subscriber was never closed: it still answers.
        await live.send('{"type":"ping","id":"p"}')
        assert (await recv_past(live, "reviews"))["type"] == "pong"
    finally:
        await live.close()


def test_stored_payload_keeps_what_the_rule_allows() -> None:
    big = 2**70  # beyond 64 bits: valid JSON the standard library keeps exact
    assert stored_payload(json.dumps({"n": big, "s": "é\u0001"})) == {"n": big, "s": "é\u0001"}
    assert stored_payload(json.dumps(nested(MAX_PAYLOAD_DEPTH))) == nested(MAX_PAYLOAD_DEPTH)
    assert stored_payload(nested_text(MAX_PAYLOAD_DEPTH + 1)) == {"unreadable": True}
