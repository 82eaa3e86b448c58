"""Read marks, receipts, unread frames and typing live, over real websockets against a real
uvicorn server, on both transports (``native`` and the portable ``asgi`` endpoint).

Five connections on one matter: two staff members, the client ``a`` (two
connections; sees the matter's applicants) and the client ``b``
(applicants hidden). Negative checks ("``b`` never got it") use a barrier:
a later frame published after the one that must not arrive, read on the
same connection; every frame read before the barrier is inspected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from rtportal.app import create_app
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS
from tests.conftest import MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.threadworld import Applicants
from tests.support.wsjson import TIMEOUT, connected

Frame = dict[str, Any]
Serve = Callable[[Starlette], AbstractAsyncContextManager[RunningServer]]
TRANSPORTS = {"native": UVICORN_WS, "asgi": "websockets-sansio"}


@pytest.fixture(params=list(TRANSPORTS))
async def server(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), ws=TRANSPORTS[request.param]) as srv:
        yield srv


@pytest.fixture
async def world(make_firm: MakeFirm) -> Applicants:
    """tA to [a]; tB to [b]; tAB to [a, b]; tI internal (items by the org admin)."""
    kit = await make_firm()
    w = await Applicants.make(kit)
    await w.item(kit.admin, "tA", to=(w.a.id,))
    await w.item(kit.admin, "tB", to=(w.b.id,))
    await w.item(kit.admin, "tB", to=(w.b.id,))
    await w.item(kit.admin, "tI", kind="note")
    await w.item(kit.admin, "tAB", to=(w.a.id, w.b.id))
    return w


class Conn:
    """One websocket, the frames it read (``seen``), and reading until a frame matches."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.seen: list[Frame] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, match: Callable[[Frame], bool]) -> list[Frame]:
        """Read until a frame matches; the frames read by this call, the match last."""
        start = len(self.seen)

        async def loop() -> None:
            while True:
                frame: Frame = json.loads(await self.ws.recv())
                self.seen.append(frame)
                if match(frame):
                    return

        await asyncio.wait_for(loop(), TIMEOUT)
        return self.seen[start:]


def is_(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def tok(server: RunningServer, world: Applicants, seq: int) -> str:
    """A contact's cursor of ``seq`` (protocol v2: a contact never sends or sees a seq),
    made with the server's key as only the server can."""
    return str(server.app.state.runtime.frames.cursors.event_token(world.kit.matter.id, seq))


async def open_conn(
    server: RunningServer, token: str, ref: str, head: int | str, name: str
) -> Conn:
    conn = Conn(await connected(server, token), name)
    await conn.send(type="subscribe", id="s", subs=[{"matter": ref, "after": head}])
    await conn.until(is_("subscribed"))
    return conn


@pytest.fixture
async def conns(server: RunningServer, world: Applicants) -> AsyncIterator[dict[str, Conn]]:
    kit = world.kit
    head = max(max(s) for s in world.seqs.values())
    at = tok(server, world, head)
    made = {
        "s1": await open_conn(server, kit.tokens["staff"], kit.ref, head, "s1"),
        "s2": await open_conn(server, kit.tokens["admin"], kit.ref, head, "s2"),
        "a1": await open_conn(server, kit.tokens["contact"], kit.ref, at, "a1"),
        "a2": await open_conn(server, kit.tokens["contact"], kit.ref, at, "a2"),
        "b": await open_conn(server, world.b_token, kit.ref, at, "b"),
    }
    yield made
    for conn in made.values():
        await conn.ws.close()


def none_of(frames: list[Frame], match: Callable[[Frame], bool]) -> None:
    assert not [f for f in frames if match(f)], frames


# --- typing ------------------------------------------------------------------------------


async def test_typing_reaches_those_who_see_the_thread_and_never_the_typist(
    world: Applicants, conns: dict[str, Conn]
) -> None:
    kit, ref = world.kit, world.kit.ref
    s1, s2, a1, a2, b = (conns[k] for k in ("s1", "s2", "a1", "a2", "b"))
    cid_a, cid_b = f"c{world.a.id}", f"c{world.b.id}"
    # a types in tA (addressed to a only): staff see it; b does not; a's connections do not.
    await a1.send(type="typing", matter=ref, thread="tA")
    [typed] = (await s1.until(is_("typing", thread="tA")))[-1:]
    assert typed == {
        "type": "typing",
        "matter": ref,
        "thread": "tA",
        "who": cid_a,
        "name": "Cleo Client",
    }
    await s2.until(is_("typing", thread="tA", who=cid_a))
    # Barrier: staff typing in tB, which every client here sees (b's thread; a sees applicants).
    await s1.send(type="typing", matter=ref, thread="tB")
    s_id = f"s{kit.staff.id}"
    for conn in (a1, a2, b):
        before = await conn.until(is_("typing", thread="tB", who=s_id))
        none_of(before, is_("typing", thread="tA"))
        assert before[-1] == {
            "type": "typing",
            "matter": ref,
            "thread": "tB",
            "who": s_id,
            "name": "Sam Staff",
        }
    await s2.until(is_("typing", thread="tB", who=s_id))
    # Internal typing (a note's composer in a client thread) and typing in an internal thread:
    # staff only, marked internal.
    await s1.send(type="typing", matter=ref, thread="tAB", internal=True)
    await s2.send(type="typing", matter=ref, thread="tI")
    internal = (await s2.until(is_("typing", thread="tAB")))[-1]
    assert internal["internal"] is True and internal["who"] == s_id
    assert (await s1.until(is_("typing", thread="tI")))[-1]["internal"] is True
    # Barrier: the org admin types (not internal) in tAB, which a and b both see.
    admin_id = f"s{kit.admin.id}"
    await s2.send(type="typing", matter=ref, thread="tAB")
    for conn in (a1, a2, b):
        before = await conn.until(is_("typing", thread="tAB", who=admin_id))
        none_of(before, lambda f: f.get("internal") is not None or f.get("thread") == "tI")
    # b types in tAB: a sees it (b is addressed there); b's own connection does not.
    await b.send(type="typing", matter=ref, thread="tAB")
    for conn in (a1, a2, s1, s2):
        await conn.until(is_("typing", thread="tAB", who=cid_b))
    # No frame ever went back to the typist's own connections.
    for conn, me in ((a1, cid_a), (a2, cid_a), (b, cid_b), (s1, s_id), (s2, admin_id)):
        none_of(conn.seen, is_("typing", who=me))


async def test_typing_is_rate_limited_per_connection_and_thread(
    world: Applicants, conns: dict[str, Conn]
) -> None:
    ref = world.kit.ref
    s1, a1, b = conns["s1"], conns["a1"], conns["b"]
    cid_a = f"c{world.a.id}"
    for _ in range(6):
        await a1.send(type="typing", matter=ref, thread="tAB")
    await a1.send(type="ping", id="p1")
    await a1.until(is_("pong", id="p1"))  # every typing frame above was taken (or dropped)
    await s1.until(is_("typing", thread="tAB", who=cid_a))
    # Barrier: b types in tB after the burst was handled; staff see it after the burst's relay.
    await b.send(type="typing", matter=ref, thread="tB")
    await s1.until(is_("typing", thread="tB"))
    assert len([f for f in s1.seen if is_("typing", thread="tAB", who=cid_a)(f)]) == 1
    none_of(a1.seen, is_("error"))  # dropped silently, never an error


async def test_typing_and_read_frames_are_refused_where_the_sender_may_not_see(
    world: Applicants, conns: dict[str, Conn], make_firm: MakeFirm
) -> None:
    other = await make_firm()
    ref = world.kit.ref
    a1, b = conns["a1"], conns["b"]
    refused: list[tuple[Conn, Frame]] = [
        (b, {"type": "typing", "id": "y1", "matter": ref, "thread": "tA"}),
        (b, {"type": "typing", "id": "y2", "matter": ref, "thread": "tI"}),
        (a1, {"type": "typing", "id": "y3", "matter": other.ref, "thread": "tA"}),
        (a1, {"type": "typing", "id": "y4", "matter": "ZZZZ9999", "thread": "tA"}),
        (a1, {"type": "typing", "id": "y5", "matter": ref, "thread": "nope"}),
        (b, {"type": "read", "id": "r1", "matter": ref, "thread": "tA", "upto": 1}),
        (a1, {"type": "read", "id": "r2", "matter": ref, "thread": "tI", "upto": 1}),
        (a1, {"type": "read", "id": "r3", "matter": other.ref, "thread": "tA", "upto": 1}),
    ]
    # A cursor is parsed once the matter is known: a bad one is invalid_cursor, after access.
    for fid, upto in (("c1", "1"), ("c2", -1), ("c3", 10**9)):
        await a1.send(type="read", id=fid, matter=ref, thread="tA", upto=upto)
        err = (await a1.until(is_("error", id=fid)))[-1]
        assert (err["code"], err["matter"]) == ("invalid_cursor", ref), err
    for conn, frame in refused:
        await conn.send(**frame)
        err = (await conn.until(is_("error", id=frame["id"])))[-1]
        assert (err["code"], err["matter"]) == ("not_found", frame["matter"]), err
        assert set(err) == {"type", "id", "code", "message", "matter"}, err
    # Nothing of it reached anyone: the staff connection's next frame is a barrier.
    s1 = conns["s1"]
    await b.send(type="typing", matter=ref, thread="tB")
    before = await s1.until(is_("typing", thread="tB"))
    none_of(before, lambda f: f.get("type") in ("receipt", "unread") or f.get("thread") == "tA")


# --- read marks, receipts, unread ------------------------------------------------------


async def test_a_read_mark_is_acked_tells_the_readers_other_connections_and_sends_receipts(
    server: RunningServer, world: Applicants, conns: dict[str, Conn]
) -> None:
    kit, ref = world.kit, world.kit.ref
    s1, s2, a1, a2, b = (conns[k] for k in ("s1", "s2", "a1", "a2", "b"))
    cid_a, cid_b, s_id = f"c{world.a.id}", f"c{world.b.id}", f"s{kit.staff.id}"
    ta, tb, tab = world.seqs["tA"][0], world.seqs["tB"], world.seqs["tAB"][0]
    # A contact's marks are event cursors (tokens) in and out; staff's are seqs.
    c_ta, c_tb0, c_tab = (tok(server, world, s) for s in (ta, tb[0], tab))
    await a1.send(type="read", id="r1", matter=ref, thread="tA", upto=c_ta)
    ack = (await a1.until(is_("ack", id="r1")))[-1]
    assert ack == {
        "type": "ack",
        "id": "r1",
        "matter": ref,
        "thread": "tA",
        "upto": c_ta,
        "unread": 0,
        "matter_unread": 3,
    }
    unread = (await a2.until(is_("unread")))[-1]
    assert unread == {
        "type": "unread",
        "matter": ref,
        "thread": "tA",
        "unread": 0,
        "matter_unread": 3,
    }
    receipt = {
        "type": "receipt",
        "matter": ref,
        "thread": "tA",
        "reader": cid_a,
        "name": "Cleo Client",
        "upto": ta,
    }
    for conn in (s1, s2):
        assert (await conn.until(is_("receipt", reader=cid_a)))[-1] == receipt
    # Staff read b's thread: b sees the receipt, and so does a (who sees the applicants).
    await s1.send(type="read", id="r2", matter=ref, thread="tB", upto=tb[0])
    assert (await s1.until(is_("ack", id="r2")))[-1]["unread"] == 1
    for conn in (a1, a2, b, s2):
        before = await conn.until(is_("receipt", reader=s_id, thread="tB"))
        upto = tb[0] if conn is s2 else c_tb0
        assert before[-1]["name"] == "Sam Staff" and before[-1]["upto"] == upto
        if conn is b:
            none_of(before, is_("receipt", thread="tA"))  # tA is not b's
    none_of(s1.seen, is_("unread"))  # s1's only connection sent the read: the ack is its answer
    # A mark that does not move sends no receipt: the next receipt staff get is the next move.
    await a1.send(type="read", id="r3", matter=ref, thread="tA", upto=c_ta)
    await a1.until(is_("ack", id="r3"))
    await a2.until(is_("unread", thread="tA"))
    await a1.send(type="read", id="r4", matter=ref, thread="tAB", upto=c_tab)
    assert (await s2.until(is_("receipt", reader=cid_a)))[-1]["thread"] == "tAB"
    # b reads tAB: a learns it (b is addressed there), staff too.
    await b.send(type="read", id="r5", matter=ref, thread="tAB", upto=c_tab)
    await b.until(is_("ack", id="r5"))
    for conn in (a1, a2, s1, s2):
        await conn.until(is_("receipt", reader=cid_b, thread="tAB"))
    # The firm hides staff readers from clients: staff receipts stop reaching a and b.
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.patch(
            "/api/v1/firm", json={"hide_staff_receipts": True}, headers=kit.auth("admin")
        )
        assert r.status_code == 200, r.text
        await s1.send(type="read", id="r6", matter=ref, thread="tAB", upto=tab)
        await s2.until(is_("receipt", reader=s_id, thread="tAB"))
        # A mark over HTTP: every connection of the reader gets the unread frame, and the
        # receipt (b's own thread tB, a sees it) is the barrier for the hidden staff one.
        r = await http.post(
            f"/api/v1/matters/{ref}/threads/tB/read",
            json={"upto": tok(server, world, tb[1])},
            headers={"Authorization": f"Bearer {world.b_token}"},
        )
        assert r.status_code == 200 and r.json()["unread"] == 0, r.text
    for conn in (a1, a2):
        before = await conn.until(is_("receipt", reader=cid_b, thread="tB"))
        none_of(before, is_("receipt", reader=s_id, thread="tAB"))
    before = await b.until(is_("unread", thread="tB"))
    none_of(before, is_("receipt", reader=s_id, thread="tAB"))
    assert before[-1] == {
        "type": "unread",
        "matter": ref,
        "thread": "tB",
        "unread": 0,
        "matter_unread": 0,
    }


async def test_a_removed_client_gets_no_more_frames_of_the_matter(
    server: RunningServer, world: Applicants, conns: dict[str, Conn]
) -> None:
    kit, ref = world.kit, world.kit.ref
    b = conns["b"]
    hub = server.app.state.hub
    await kit.remove_member(world.b, hub=hub)
    code = None
    try:
        while True:
            b.seen.append(json.loads(await asyncio.wait_for(b.ws.recv(), TIMEOUT)))
    except Exception as exc:  # the close
        code = getattr(getattr(exc, "rcvd", None), "code", None)
    assert code == 4011
    # Its token still signs in, but the matter and its threads are gone for it.
    b2 = Conn(await connected(server, world.b_token), "b2")
    await b2.send(type="read", id="r", matter=ref, thread="tB", upto=1)
    await b2.send(type="typing", id="y", matter=ref, thread="tB")
    # Both run as the connection's tasks: their answers may come in either order.
    await b2.until(lambda f: len([x for x in b2.seen if x.get("type") == "error"]) == 2)
    assert sorted((f["id"], f["code"]) for f in b2.seen) == [("r", "not_found"), ("y", "not_found")]
    await b2.ws.close()
