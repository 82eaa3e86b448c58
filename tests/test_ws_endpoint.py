"""The websocket endpoint through a real uvicorn server and a real ``websockets`` client.

Each test gets a fresh app (database per the test backend, broker per
``RTPORTAL_TEST_BROKER_URL``) served on a free port by
``tests.support.server.running_server``, once per websocket transport (the
``serve`` fixture): rtportal's own uvicorn protocol (``native``,
``rtportal.ws.native``, as deployed) and the portable ASGI endpoint
(``asgi``, ``rtportal.ws.endpoint`` under uvicorn's ``websockets-sansio``).
What only the native transport does is in ``tests/test_ws_native.py``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update as sa_update
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal.access.membership import can_access
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.db import Database
from rtportal.db.migrate import upgrade
from rtportal.db.models import Matter
from rtportal.demo import create_firm, create_matter, create_staff
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.log import read_since
from rtportal.events.send import Send
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.procs import service_unavailable
from tests.support.server import RunningServer, running_server
from tests.support.wsclient import wait_until
from tests.support.wsjson import HELLO, unseal

Frame = dict[str, Any]
TIMEOUT = 20.0


Serve = Callable[[Starlette], AbstractAsyncContextManager[RunningServer]]
# uvicorn's ``ws`` option per transport under test.
TRANSPORTS = {"native": UVICORN_WS, "asgi": "websockets-sansio"}


@pytest.fixture(params=list(TRANSPORTS))
def serve(request: pytest.FixtureRequest) -> Serve:
    """``async with serve(app) as srv``: ``running_server`` on this test's transport."""
    return functools.partial(running_server, ws=TRANSPORTS[request.param])


@pytest.fixture
def ws_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
async def server(serve: Serve, ws_settings: Settings) -> AsyncIterator[RunningServer]:
    async with serve(create_app(ws_settings)) as srv:
        yield srv


@pytest.fixture
def make_firm(make_firm: MakeFirm) -> MakeFirm:
    """conftest's ``make_firm``, each kit's matter registered in ``RECIPIENTS``."""

    async def factory(name: str | None = None) -> FirmKit:
        made = await make_firm(name)
        RECIPIENTS[made.ref] = [made.contact.id]
        return made

    return factory


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    return await make_firm()


# Each kit's matter -> its client: a thread's ``to`` (docs/threads.md), which a
# staff member's new thread must name and a contact's own thread may name (itself).
RECIPIENTS: dict[str, list[int]] = {}


async def open_ws(
    server: RunningServer,
    token: str | None = None,
    *,
    cookie: str | None = None,
    origin: str | None = None,
    **options: Any,
) -> ClientConnection:
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = f"rtp_session={cookie}"
    return await connect(
        server.ws_url,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        open_timeout=TIMEOUT,
        **options,
    )


async def recv(ws: ClientConnection, wait: float = TIMEOUT) -> Frame:
    frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return frame


async def recv_until(
    ws: ClientConnection, done: Callable[[Frame], bool], wait: float = TIMEOUT
) -> list[Frame]:
    """Every frame up to and including the first one for which ``done`` is true."""
    out: list[Frame] = []

    async def loop() -> None:
        while True:
            frame = await recv(ws, wait)
            out.append(frame)
            if done(frame):
                return

    await asyncio.wait_for(loop(), wait)
    return out


async def close_code(ws: ClientConnection, wait: float = TIMEOUT) -> tuple[int | None, list[Frame]]:
    """Read until the server closes; the close code and the frames read before it."""
    frames: list[Frame] = []

    async def loop() -> int | None:
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    return await asyncio.wait_for(loop(), wait), frames


async def connected(server: RunningServer, token: str, **options: Any) -> ClientConnection:
    ws = await open_ws(server, token, **options)
    hello = await recv(ws)
    assert hello["type"] == "hello"
    await ws.send(HELLO)
    return ws


async def subscribe(ws: ClientConnection, matter: str, after: int = 0, fid: str = "s1") -> Frame:
    await ws.send(
        json.dumps({"type": "subscribe", "id": fid, "subs": [{"matter": matter, "after": after}]})
    )
    return await recv(ws)


def send_frame(
    fid: str,
    matter: str,
    audience: str = "portal",
    payload: Any = None,
    blob: bytes | None = b"RTM1-ciphertext",
) -> str:
    if payload is None:
        payload = {"thread": fid}
    if audience == "portal" and isinstance(payload, dict) and matter in RECIPIENTS:
        payload = {**payload, "to": RECIPIENTS[matter]}  # else: every client member
    return json.dumps(
        {
            "type": "send",
            "id": fid,
            "matter": matter,
            # Internal items are notes (a staff-audience message is refused).
            "kind": "message" if audience == "portal" else "note",
            "audience": audience,
            "payload": payload,
            "blob": None if blob is None else base64.urlsafe_b64encode(blob).decode().rstrip("="),
        }
    )


async def send_many(ws: ClientConnection, matter: str, ids: list[str], **kw: Any) -> dict[str, Any]:
    """Pipeline sends; id -> acked seq, or a contact's event token (event frames
    on this connection are skipped)."""
    for fid in ids:
        await ws.send(send_frame(fid, matter, **kw))
    acks: dict[str, int] = {}
    while len(acks) < len(ids):
        frame = await recv(ws)
        if frame["type"] == "ack":
            acks[frame["id"]] = frame["seq"] if "seq" in frame else frame["cursor"]
        else:
            assert frame["type"] == "event", frame
    return acks


async def stored(db: Database, matter_id: int) -> list[Any]:
    async with db.read() as session:
        return await read_since(session, matter_id, 0, 10_000)


# --- connecting -----------------------------------------------------------------------


async def test_bearer_and_cookie_authenticate(server: RunningServer, kit: FirmKit) -> None:
    ws = await open_ws(server, kit.tokens["contact"])
    hello = await recv(ws)
    assert hello["v"] == 2 and hello["versions"] == [2]
    assert hello["principal"] == {"kind": "contact", "id": kit.contact.id, "name": "Cleo Client"}
    assert hello["limits"]["max_frame_bytes"] == 1_048_576
    await ws.close()
    ws = await open_ws(server, cookie=kit.tokens["staff"], origin=TEST_ORIGIN)
    hello = await recv(ws)
    assert hello["principal"]["kind"] == "staff" and hello["principal"]["id"] == kit.staff.id
    await ws.close()


@pytest.mark.parametrize(
    ("token", "origin", "code"),
    [
        (None, None, 4001),
        ("x" * 43, None, 4001),
        ("staff", "https://evil.example", 4003),
        ("staff", "null", 4003),
    ],
)
async def test_refused_connections_get_a_close_code_and_no_frame(
    server: RunningServer, kit: FirmKit, token: str | None, origin: str | None, code: int
) -> None:
    real = kit.tokens.get(token or "", token)
    ws = await open_ws(server, real, origin=origin)
    got, frames = await close_code(ws)
    assert (got, frames) == (code, [])


async def test_cross_site_page_cannot_ride_the_session_cookie(
    server: RunningServer, kit: FirmKit
) -> None:
    """Cross-site websocket hijacking: a valid cookie from a foreign Origin is refused."""
    ws = await open_ws(server, cookie=kit.tokens["contact"], origin="https://evil.example")
    assert await close_code(ws) == (4003, [])
    ws = await open_ws(server, cookie=kit.tokens["contact"], origin="http://localhost:8000")
    assert (await recv(ws))["principal"]["id"] == kit.contact.id
    await ws.close()


# --- subscribe: backlog, live, seam ------------------------------------------------


async def test_backlog_then_live_without_gap_or_duplicate_while_another_client_sends(
    server: RunningServer, kit: FirmKit
) -> None:
    writer = await connected(server, kit.tokens["staff"])
    first = await send_many(writer, kit.ref, [f"a{i}" for i in range(20)])
    assert sorted(first.values()) == list(range(1, 21))
    total = 80
    sent = 20
    progress = asyncio.Condition()

    async def flood() -> None:
        nonlocal sent
        for i in range(20, total, 5):
            await send_many(writer, kit.ref, [f"b{j}" for j in range(i, i + 5)])
            async with progress:
                sent = i + 5
                progress.notify_all()

    async def reader(after: int, start_at: int) -> list[int]:
        # Subscribe at different moments of the flood.
        async with progress:
            await progress.wait_for(lambda: sent >= start_at)
        ws = await connected(server, kit.tokens["bot"])
        sub = await subscribe(ws, kit.ref, after)
        assert sub["type"] == "subscribed" and sub["head"] >= after
        frames = await recv_until(ws, lambda f: f.get("seq") == total)
        await ws.close()
        assert all(f["type"] == "event" for f in frames)
        return [f["seq"] for f in frames]

    results = await asyncio.gather(
        flood(), reader(10, 20), reader(0, 35), reader(30, 50), reader(25, 70)
    )
    for after, seqs in zip((10, 0, 30, 25), results[1:], strict=True):
        assert seqs == list(range(after + 1, total + 1))
    await writer.close()


async def test_idempotent_send_one_row_same_seq(server: RunningServer, kit: FirmKit) -> None:
    ws = await connected(server, kit.tokens["contact"])
    frame = send_frame("m-1", kit.ref)
    await ws.send(frame)
    await ws.send(frame)  # retried while the first is in flight
    acks = [await recv(ws), await recv(ws)]
    assert [a["type"] for a in acks] == ["ack", "ack"]
    # A contact's ack names the event by its token: the same for the retry.
    assert "seq" not in acks[0] and acks[0]["cursor"] == acks[1]["cursor"]
    assert sorted(a["duplicate"] for a in acks) == [False, True]
    await ws.close()
    # A retry after a reconnect is still the same event.
    ws = await connected(server, kit.tokens["contact"])
    await ws.send(frame)
    again = await recv(ws)
    assert (again["cursor"], again["duplicate"]) == (acks[0]["cursor"], True)
    # Same id, other content: conflict, nothing written.
    await ws.send(send_frame("m-1", kit.ref, payload={"thread": "other"}))
    err = await recv(ws)
    assert (err["type"], err["id"], err["code"]) == ("error", "m-1", "conflict")
    rows = await stored(kit.db, kit.matter.id)
    assert [r.client_id for r in rows] == ["m-1"]
    assert rows[0].blob == b"RTM1-ciphertext"
    await ws.close()


@pytest.fixture
def small_backlog(settings: Settings) -> Settings:
    return dataclasses.replace(settings, backlog_limit=5)


async def test_stale_or_future_cursor_gets_resync(
    serve: Serve, small_backlog: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with serve(create_app(small_backlog)) as srv:
        ws = await connected(srv, kit.tokens["staff"])
        await send_many(ws, kit.ref, [f"x{i}" for i in range(8)])
        assert await subscribe(ws, kit.ref, 1) == {
            "type": "resync",
            "id": "s1",
            "matter": kit.ref,
            "after": 1,
            "head": 8,
            "reason": "cursor_too_old",
        }
        frame = await subscribe(ws, kit.ref, 9, fid="s2")
        assert (frame["type"], frame["reason"]) == ("resync", "cursor_ahead")
        # Exactly backlog_limit behind is served.
        frame = await subscribe(ws, kit.ref, 3, fid="s3")
        assert (frame["type"], frame["head"]) == ("subscribed", 8)
        frames = await recv_until(ws, lambda f: f.get("seq") == 8)
        assert [f["seq"] for f in frames] == [4, 5, 6, 7, 8]
        await ws.close()


# --- bad input --------------------------------------------------------------------


async def test_bad_frames_get_errors_and_the_server_keeps_serving(
    server: RunningServer, kit: FirmKit
) -> None:
    other = await connected(server, kit.tokens["staff"])
    ws = await connected(server, kit.tokens["contact"])
    await ws.send("{not json")
    assert await recv(ws) == {
        "type": "error",
        "id": None,
        "code": "bad_request",
        "message": "frame is not valid JSON",
    }
    await ws.send('{"type":"launch","id":"z1"}')
    err = await recv(ws)
    assert (err["id"], err["code"]) == ("z1", "bad_request")
    await ws.send(send_frame("big", kit.ref, payload={"x": "y" * 70_000}))
    err = await recv(ws)
    assert (err["id"], err["code"]) == ("big", "payload_too_large")
    await ws.send(send_frame("note", kit.ref, audience="staff"))  # contacts write portal only
    err = await recv(ws)
    assert (err["id"], err["code"]) == ("note", "bad_request")
    await ws.send('{"type":"ping","id":"p1"}')
    assert await recv(ws) == {"type": "pong", "id": "p1"}
    # Over max_frame_bytes: uvicorn (ws_max_size) closes with 1009.
    await ws.send("x" * (1_048_576 + 10))
    code, _ = await close_code(ws)
    assert code == 1009
    # Ten bad frames in a row: 4002.
    ws = await connected(server, kit.tokens["contact"])
    for _ in range(10):
        await ws.send("[]")
    code, frames = await close_code(ws)
    assert code == 4002 and [f["code"] for f in frames] == ["bad_request"] * 10
    # Binary frames are a protocol violation.
    ws = await connected(server, kit.tokens["contact"])
    await ws.send(b"\x00\x01")
    assert (await close_code(ws))[0] == 4002
    # Nothing was written, and the other connection still works.
    assert await stored(kit.db, kit.matter.id) == []
    await other.send('{"type":"ping","id":"still"}')
    assert await recv(other) == {"type": "pong", "id": "still"}
    await other.close()


# --- slow consumers -----------------------------------------------------------------


@pytest.fixture
def small_queue(settings: Settings) -> Settings:
    return dataclasses.replace(settings, ws_send_queue=8)


async def test_slow_consumer_is_closed_4008_and_resumes_with_nothing_lost(
    serve: Serve, small_queue: Settings, make_firm: MakeFirm
) -> None:
    """A frame queue of 8 (asgi) or 4 MiB unsent (native, ws_send_buffer_max): both overflow."""
    kit = await make_firm()
    count = 60
    blob = bytes(200_000)  # 60 x ~270 KB frames: far beyond socket buffers
    async with serve(create_app(small_queue)) as srv:
        # max_queue=1 and no reads: the client stops taking data off the socket.
        slow = await connected(srv, kit.tokens["contact"], max_queue=1)
        assert (await subscribe(slow, kit.ref))["type"] == "subscribed"
        fast = await connected(srv, kit.tokens["bot"])
        assert (await subscribe(fast, kit.ref))["type"] == "subscribed"
        fast_seqs: list[int] = []
        progress = asyncio.Condition()

        async def read_fast() -> None:
            while not fast_seqs or fast_seqs[-1] < count:
                frame = await recv(fast, wait=60)
                async with progress:
                    fast_seqs.append(frame["seq"])
                    progress.notify_all()

        def fast_reached(n: int) -> Callable[[], bool]:
            return lambda: len(fast_seqs) >= n

        fast_task = asyncio.create_task(read_fast())
        writer = await connected(srv, kit.tokens["staff"])
        ids = [f"f{i}" for i in range(count)]
        for i in range(0, count, 4):
            await send_many(writer, kit.ref, ids[i : i + 4], blob=blob)
            # Pace the writer on the fast reader: it keeps up, the slow one never reads.
            target = min(i + 4, count)
            async with progress:
                await asyncio.wait_for(progress.wait_for(fast_reached(target)), 60)
        await asyncio.wait_for(fast_task, 60)
        # The fast reader was not held back by the slow one.
        assert fast_seqs == list(range(1, count + 1))
        # The slow one now reads what was buffered, then the 4008 close.
        code, got = await close_code(slow, wait=60)
        assert code == 4008
        events = [unseal(srv, f, kit.matter.id) for f in got if f["type"] == "event"]
        seqs = [f["seq"] for f in events]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < count
        # Resume from the last event's token: nothing lost, nothing twice.
        again = await connected(srv, kit.tokens["contact"])
        last = events[-1]["cursor"] if events else 0
        assert (await subscribe(again, kit.ref, last))["type"] == "subscribed"
        rest = await recv_until(
            again, lambda f: unseal(srv, f, kit.matter.id).get("seq") == count, wait=60
        )
        assert seqs + [unseal(srv, f, kit.matter.id)["seq"] for f in rest] == list(
            range(1, count + 1)
        )
        for ws in (again, fast, writer):
            await ws.close()


# --- audience and scoping ---------------------------------------------------------------


async def test_contact_never_sees_staff_events_or_fields(
    server: RunningServer, kit: FirmKit
) -> None:
    contact = await connected(server, kit.tokens["contact"])
    assert (await subscribe(contact, kit.ref))["type"] == "subscribed"
    staff = await connected(server, kit.tokens["staff"])
    assert (await subscribe(staff, kit.ref))["type"] == "subscribed"
    await staff.send(send_frame("n1", kit.ref, audience="staff", payload={"thread": "internal"}))
    await staff.send(send_frame("p1", kit.ref, payload={"thread": "hi"}))
    await staff.send(send_frame("n2", kit.ref, audience="staff", payload={"thread": "more"}))
    await staff.send(send_frame("p2", kit.ref, payload={"thread": "bye"}))
    staff_frames = await recv_until(staff, lambda f: f.get("type") == "event" and f["seq"] == 4)
    assert [f["seq"] for f in staff_frames if f["type"] == "event"] == [1, 2, 3, 4]
    mid = kit.matter.id
    contact_frames = await recv_until(contact, lambda f: unseal(server, f, mid).get("seq") == 4)
    assert [(unseal(server, f, mid)["seq"], f["audience"]) for f in contact_frames] == [
        (2, "portal"),
        (4, "portal"),
    ], (contact_frames, staff_frames)
    assert contact_frames[0]["payload"]["thread"] == "hi"
    assert "staff_" not in json.dumps(contact_frames) and "internal" not in json.dumps(
        contact_frames
    )
    # The backlog path filters the same way.
    late = await connected(server, kit.tokens["contact"])
    assert (await subscribe(late, kit.ref))["type"] == "subscribed"
    backlog = await recv_until(late, lambda f: unseal(server, f, mid).get("seq") == 4)
    assert [unseal(server, f, mid)["seq"] for f in backlog] == [2, 4]
    assert backlog == contact_frames  # the same tokens: one frame per event
    for ws in (contact, staff, late):
        await ws.close()


async def test_other_matters_are_not_found_with_no_data(
    server: RunningServer, kit: FirmKit, make_firm: MakeFirm
) -> None:
    other_firm = await make_firm("Other Firm")
    same_firm_other = await kit.add_matter(title="Not mine", members=())
    ws = await connected(server, kit.tokens["contact"])
    for ref in (other_firm.ref, same_firm_other.reference, "ZZZZ0000", "nonsense"):
        frame = await subscribe(ws, ref)
        assert frame == {
            "type": "error",
            "id": "s1",
            "code": "not_found",
            "message": "no such matter",
            "matter": ref,
        }
        await ws.send(send_frame("w-" + ref, ref))
        err = await recv(ws)
        assert (err["type"], err["code"]) == ("error", "not_found")
    # Staff of another firm cannot see this firm's matter either.
    foreign = await connected(server, other_firm.tokens["staff"])
    assert (await subscribe(foreign, kit.ref))["code"] == "not_found"
    assert await stored(kit.db, other_firm.matter.id) == []
    assert await stored(kit.db, same_firm_other.id) == []
    await ws.close()
    await foreign.close()


def _is_access_check(sql: str) -> bool:
    # stream.can_access: the matter row if an active membership EXISTS (the
    # hub's own periodic membership re-check is a different statement).
    # (a contact's subscribe reads its membership too: ``can_view``, a join)
    return (
        "FROM matters" in sql
        and "matter_members" in sql
        and ("EXISTS" in sql or "JOIN matter_members" in sql)
    )


async def test_sends_reuse_the_connections_access_check(
    server: RunningServer, kit: FirmKit
) -> None:
    """Access is checked once per connection and matter, not per ``send``:
    the membership query runs at subscribe and never again for the sends
    (removal closes the connection instead); each send is still stored."""
    db: Database = server.app.state.db
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    engines = {db.engine.sync_engine, db.read_engine.sync_engine}
    ws = await connected(server, kit.tokens["contact"])
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        assert (await subscribe(ws, kit.ref))["type"] == "subscribed"
        checks = sum(_is_access_check(sql) for sql in statements)
        assert checks == 1
        acks = await send_many(ws, kit.ref, [f"c-{n}" for n in range(5)])
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", seen)
    codec = server.app.state.runtime.frames.cursors
    assert sorted(codec.seq_of(c, kit.matter.id) for c in acks.values()) == [1, 2, 3, 4, 5]
    assert sum(_is_access_check(sql) for sql in statements) == checks
    assert [r.client_id for r in await stored(kit.db, kit.matter.id)] == [
        f"c-{n}" for n in range(5)
    ]
    await ws.close()


async def test_sends_of_many_connections_share_one_commit_and_fail_alone(
    server: RunningServer, kit: FirmKit
) -> None:
    """Group commit: sends that arrive while a commit waits share the next
    transaction; within it a bad request, a conflict and a duplicate get
    their own answer and the other sends commit, gapless, published once."""
    db: Database = server.app.state.db
    watcher = await connected(server, kit.tokens["staff"])
    assert (await subscribe(watcher, kit.ref))["type"] == "subscribed"
    staff = await connected(server, kit.tokens["staff"])
    bot = await connected(server, kit.tokens["bot"])
    assert (await send_many(staff, kit.ref, ["dup"]))["dup"] == 1
    assert (await send_many(bot, kit.ref, ["bdup"]))["bdup"] == 2
    conns = {
        "contact": await connected(server, kit.tokens["contact"]),
        "contact2": await connected(server, kit.tokens["contact"]),
        "staff2": await connected(server, kit.tokens["staff"]),
        "admin": await connected(server, kit.tokens["admin"]),
    }
    frames = {
        "contact": send_frame("bad", kit.ref, audience="staff"),  # contacts write portal only
        "staff": send_frame("dup", kit.ref, payload={"thread": "other"}),  # conflict
        "bot": send_frame("bdup", kit.ref),  # duplicate
        "contact2": send_frame("d1", kit.ref),
        "staff2": send_frame("e1", kit.ref),
        "admin": send_frame("f1", kit.ref),
    }
    sockets = {**conns, "staff": staff, "bot": bot}
    begins: list[int] = []
    direct_before = server.app.state.db.direct_writes
    committer = server.app.state.committer

    def began(_conn: Any) -> None:
        begins.append(1)

    async with db.write() as session:
        # Hold the matter's row lock (and on SQLite the process's write lock):
        # the first commit waits, the other sends queue behind it.
        await session.execute(
            sa_update(Matter).where(Matter.id == kit.matter.id).values(last_seq=Matter.last_seq)
        )
        sa_event.listen(db.engine.sync_engine, "begin", began)
        for who, frame in frames.items():
            await sockets[who].send(frame)
        await wait_until(lambda: committer.waiting == len(frames), TIMEOUT, "queued sends")
    try:
        answers = {who: await recv(ws) for who, ws in sockets.items()}
    finally:
        sa_event.remove(db.engine.sync_engine, "begin", began)
    # One lane: the held commit, then all the others together. Write
    # transactions: SQLAlchemy's, plus the group commit's own (PostgreSQL's
    # one-statement transactions, SQLite's writer thread).
    # On PostgreSQL the group commit writes only through ``autocommit()``
    # (direct writes) and readers share the writers' engine, so its ``begin``
    # events are reads (authorisation, the key directory's check, the hub
    # filling a gap) and are not counted.
    writes = server.app.state.db.direct_writes - direct_before
    if db.read_engine is not db.engine:
        writes += len(begins)
    assert 1 <= writes <= 2 < len(frames)  # not one per send
    assert (answers["contact"]["type"], answers["contact"]["code"]) == ("error", "bad_request")
    assert (answers["staff"]["type"], answers["staff"]["code"]) == ("error", "conflict")
    assert (answers["bot"]["seq"], answers["bot"]["duplicate"]) == (2, True)
    answers["contact2"] = unseal(server, answers["contact2"], kit.matter.id)
    new = sorted(answers[who]["seq"] for who in ("contact2", "staff2", "admin"))
    assert new == [3, 4, 5]
    assert all(answers[who]["duplicate"] is False for who in ("contact2", "staff2", "admin"))
    rows = await stored(kit.db, kit.matter.id)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert {r.client_id for r in rows} == {"dup", "bdup", "d1", "e1", "f1"}
    # The watcher sees each new event once, in seq order.
    seen = await recv_until(watcher, lambda f: f.get("seq") == 5)
    assert [f["seq"] for f in seen if f["type"] == "event"] == [1, 2, 3, 4, 5]
    for ws in (watcher, *sockets.values()):
        await ws.close()


async def test_group_commit_takes_a_send_queued_as_its_lane_finishes(
    db: Database, settings: Settings, make_firm: MakeFirm
) -> None:
    """One sender, one send at a time: each send arrives just as the lane that
    committed the previous one is finishing; it must still be committed."""
    kit = await make_firm()
    hub = Hub(db, broker_from_url("memory://"), settings, ACCESS_QUERIES)
    committer = GroupCommit(db, hub.publish, settings, can_access)
    async with db.read() as session:
        matter = await can_access(session, kit.contact, kit.ref)
    for n in range(4):
        send = Send(kit.ref, "message", "portal", {"thread": "q", "sent_at": n}, None, f"q-{n}")
        async with asyncio.timeout(TIMEOUT):  # no extra task: the race is one loop turn
            event, created, _ = await committer.append(kit.contact, send, matter)
        assert (event.seq, created) == (n + 1, True)


async def test_unsubscribe_stops_events_and_revocation_closes_4010(
    server: RunningServer, kit: FirmKit
) -> None:
    ws = await connected(server, kit.tokens["contact"])
    assert (await subscribe(ws, kit.ref))["type"] == "subscribed"
    await ws.send(json.dumps({"type": "unsubscribe", "id": "u1", "matters": [kit.ref]}))
    assert await recv(ws) == {"type": "unsubscribed", "id": "u1", "matters": [kit.ref]}
    staff = await connected(server, kit.tokens["staff"])
    await send_many(staff, kit.ref, ["after-unsub"])
    await ws.send('{"type":"ping","id":"p"}')
    assert await recv(ws) == {"type": "pong", "id": "p"}  # no event frame came first
    await server.app.state.hub.close_principal("contact", kit.contact.id)
    assert (await close_code(ws))[0] == 4010
    await staff.send('{"type":"ping","id":"p"}')
    assert await recv(staff) == {"type": "pong", "id": "p"}
    await staff.close()


async def test_two_matters_in_one_subscribe_and_shutdown_closes_1012(
    serve: Serve, ws_settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    second = await kit.add_matter(title="Second")
    RECIPIENTS[second.reference] = [kit.contact.id]
    async with serve(create_app(ws_settings)) as srv:
        ws = await connected(srv, kit.tokens["contact"])
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "both",
                    "subs": [{"matter": kit.ref, "after": 0}, {"matter": second.reference}],
                }
            )
        )
        frames = [await recv(ws), await recv(ws)]
        assert sorted((f["type"], f["matter"]) for f in frames) == sorted(
            [("subscribed", kit.ref), ("subscribed", second.reference)]
        )
        assert all(isinstance(f["head"], str) for f in frames)  # a contact's head: a token
        staff = await connected(srv, kit.tokens["staff"])
        await send_many(staff, second.reference, ["s1"])
        event = unseal(srv, await recv(ws), second.id)
        assert (event["matter"], event["seq"], event["client_id"]) == (second.reference, 1, "s1")
    # Leaving the block stops the server: live connections are told to reconnect.
    assert (await close_code(ws))[0] == 1012


# --- database outage (PostgreSQL through a proxy the test can cut) -----------------------

PG_URL = os.environ.get("RTPORTAL_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


class CuttableProxy:
    """A TCP proxy to PostgreSQL; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.open = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def test_database_outage_is_an_unavailable_error_and_a_retry_works(
    serve: Serve, settings: Settings
) -> None:
    url = make_url(PG_URL)
    try:
        await asyncio.wait_for(upgrade(PG_URL), 30)
    except Exception as exc:
        service_unavailable(f"PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc})")
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    db = Database(PG_URL)
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Outage Firm")
            staff = await create_staff(
                session, firm, email=f"o{firm.id}@firm.test", display_name="Olga"
            )
            matter = await create_matter(session, firm, title="Outage", responsible=staff)
            token = await issue_token(
                session, settings.secret_key, "staff", staff.id, label="t", ttl=None
            )
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app_settings = dataclasses.replace(settings, database_url=proxied)
        async with serve(create_app(app_settings)) as srv:
            ws = await connected(srv, token)
            # (internal notes: the matter has no client to address a thread to)
            internal: dict[str, Any] = {"audience": "staff"}
            assert (await send_many(ws, matter.reference, ["before"], **internal)) == {"before": 1}
            proxy.cut()
            await ws.send(send_frame("during", matter.reference, **internal))
            err = await recv(ws)
            assert (err["type"], err["id"], err["code"]) == ("error", "during", "unavailable")
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "id": "s9",
                        "subs": [{"matter": matter.reference, "after": 0}],
                    }
                )
            )
            err = await recv(ws)
            assert (err["type"], err["code"], err["matter"]) == (
                "error",
                "unavailable",
                matter.reference,
            )
            # HTTP reads and writes through the cut: 503 unavailable, never a 500.
            async with httpx.AsyncClient(base_url=srv.base_url, timeout=30) as client:
                auth = {"Authorization": f"Bearer {token}"}
                path = f"/api/v1/matters/{matter.reference}/events"
                for response in (
                    await client.get(path, headers=auth),
                    await client.post(path, headers=auth, json={"kind": "message"}),
                ):
                    assert response.status_code == 503, response.text
                    assert response.json()["error"]["code"] == "unavailable"
            # The connection survived; once the database is back the same id goes through.
            proxy.open = True
            assert await send_many(ws, matter.reference, ["during"], **internal) == {"during": 2}
            await ws.close()
        rows = await stored(db, matter.id)
        assert [r.client_id for r in rows] == ["before", "during"]
    finally:
        await proxy.close()
        await db.close()
