"""rtportal's native uvicorn websocket transport (``rtportal.ws.native``) on real sockets.

What only this transport does, checked through a real uvicorn
(``running_server`` with ``ws=UVICORN_WS``) on the test backend: the
opening handshake (paths, malformed upgrades, repeated headers), frame
assembly and the websocket-level errors (1007, 1009), the keepalive sweep,
the byte-bounded send buffer (4008), graceful shutdown (1012), back-pressure
on input, and that the hub and uvicorn's bookkeeping are left empty however
a client goes away. The protocol itself is covered, on both transports, by
``tests/test_ws_endpoint.py``.

``RawClient`` drives websockets' sans-I/O ``ClientProtocol`` over a plain
socket, so a test decides when (and whether) the client reads, and can send
what a well-behaved client library never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from rtportal.app import create_app
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS, WebSocketProtocol
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsclient import wait_until
from tests.support.wsjson import HELLO, unseal
from tests.test_ws_endpoint import (
    close_code,
    connected,
    recv,
    send_frame,
    send_many,
    stored,
    subscribe,
)

TIMEOUT = 20.0
Json = dict[str, Any]


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), ws=UVICORN_WS) as srv:
        yield srv


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    return await make_firm()


# --- a client the test drives frame by frame -------------------------------------------


class RawClient:
    """A websocket client on a plain socket that reads only when the test asks.

    websockets' sans-I/O ``ClientProtocol`` does the framing (and queues the
    pong for a ping it parses); nothing is read off the socket except in
    ``next_frame``/``read_until_close``, so a client that "never reads" is
    simply one the test stops calling.
    """

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock = sock
        self.proto = proto
        self.frames: deque[Frame] = deque()
        self.pings = 0  # ping frames parsed (each answered with a pong on the next flush)
        self.eof = False
        self.response: Response | None = None  # the answer to the upgrade request

    @classmethod
    async def open(
        cls,
        srv: RunningServer,
        headers: Iterable[tuple[str, str]] = (),
        *,
        path: str = "/ws",
        rcvbuf: int | None = None,
    ) -> RawClient:
        """Connect and send the upgrade request; ``handshake()`` reads the answer."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Set before connect: disables autotuning, so unread data backs up
            # into the server after a few KB.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (srv.host, srv.port)), TIMEOUT
        )
        proto = ClientProtocol(parse_uri(f"ws://{srv.host}:{srv.port}{path}"), max_size=None)
        request = proto.connect()
        for name, value in headers:
            request.headers[name] = value  # websockets' Headers appends: repeats are possible
        proto.send_request(request)
        client = cls(sock, proto)
        await client.flush()
        return client

    @classmethod
    async def connect(
        cls, srv: RunningServer, token: str, *, rcvbuf: int | None = None
    ) -> tuple[RawClient, Json]:
        """An authenticated client past ``hello``."""
        client = await cls.open(srv, [("Authorization", f"Bearer {token}")], rcvbuf=rcvbuf)
        response = await client.handshake()
        assert response.status_code == 101, response
        hello = await client.recv_json()
        assert hello["type"] == "hello", hello
        await client.send_text(HELLO)
        return client, hello

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        for data in self.proto.data_to_send():
            # The server may have gone already: what it did is what the test reads.
            with contextlib.suppress(OSError):
                if data:
                    await asyncio.wait_for(loop.sock_sendall(self.sock, data), TIMEOUT)
                else:  # websockets' "half-close now" after the closing handshake
                    self.sock.shutdown(socket.SHUT_WR)

    async def _read_once(self, wait: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), wait)
        except ConnectionResetError:
            data = b""  # an abort (RST) ends the stream like an EOF here
        if data:
            self.proto.receive_data(data)
        else:
            self.eof = True
            self.proto.receive_eof()
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.PING:
                    self.pings += 1
                self.frames.append(event)
            elif isinstance(event, Response):
                self.response = event
        await self.flush()  # pongs, the close reply

    async def handshake(self, wait: float = TIMEOUT) -> Response:
        async with asyncio.timeout(wait):
            while self.response is None:
                if self.eof:
                    raise ConnectionError("EOF before the handshake response")
                await self._read_once(wait)
        return self.response

    async def next_frame(self, wait: float = TIMEOUT) -> Frame | None:
        """The next frame from the server (pings included); ``None`` at EOF."""
        async with asyncio.timeout(wait):
            while not self.frames:
                if self.eof:
                    return None
                await self._read_once(wait)
        return self.frames.popleft()

    async def recv_json(self, wait: float = TIMEOUT) -> Json:
        """The next text frame, decoded (pings are answered and skipped)."""
        while True:
            frame = await self.next_frame(wait)
            assert frame is not None, "EOF while waiting for a text frame"
            if frame.opcode is Opcode.TEXT:
                out: Json = json.loads(bytes(frame.data))
                return out
            assert frame.opcode in (Opcode.PING, Opcode.PONG), frame

    async def read_until_close(self, wait: float = TIMEOUT) -> tuple[int | None, list[Json]]:
        """Every text frame until the server's close frame (its code) or EOF (``None``)."""
        texts: list[Json] = []
        async with asyncio.timeout(wait):
            while True:
                frame = await self.next_frame(wait)
                if frame is None:
                    return None, texts
                if frame.opcode is Opcode.CLOSE:
                    return Close.parse(frame.data).code, texts
                if frame.opcode is Opcode.TEXT:
                    texts.append(json.loads(bytes(frame.data)))

    async def send_text(self, data: str | bytes, *, fin: bool = True) -> None:
        self.proto.send_text(data.encode() if isinstance(data, str) else data, fin=fin)
        await self.flush()

    def abort(self) -> None:
        """Vanish: RST, no close frame (a phone losing its network)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


# --- server-side bookkeeping -------------------------------------------------------------


def native_connections(srv: RunningServer) -> list[WebSocketProtocol]:
    return [c for c in srv.server.server_state.connections if isinstance(c, WebSocketProtocol)]


async def drained(srv: RunningServer) -> None:
    """Every websocket gone: no connection, no task, no hub listener or subscription."""
    hub = srv.app.state.hub
    state = srv.server.server_state
    await wait_until(
        lambda: not native_connections(srv) and not state.tasks and not hub._all_listeners(),
        TIMEOUT,
        "connections, tasks and hub listeners to drain",
    )
    assert hub.subscribed_matters() == []


@contextlib.asynccontextmanager
async def every_connection_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """Check out every connection of ``engine``'s pool: the next checkout waits."""
    pool: Any = engine.pool
    limit = pool.size() + pool._max_overflow  # QueuePool: no public accessor for the cap
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(limit):
            await stack.enter_async_context(engine.connect())
        yield


# --- the opening handshake -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws2", "/", "/ws/x", "/wsx", "/api/v1/ws"])
async def test_other_websocket_paths_are_refused_404(
    server: RunningServer, kit: FirmKit, path: str
) -> None:
    headers = {"Authorization": f"Bearer {kit.tokens['staff']}"}
    url = f"ws://{server.host}:{server.port}{path}"
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers=headers, proxy=None, open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 404
    # The query string is not part of the path: /ws?... is the websocket.
    url = f"{server.ws_url}?v=1"
    async with connect(url, additional_headers=headers, proxy=None, open_timeout=TIMEOUT) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "hello"
        await ws.send(HELLO)
    await drained(server)


@pytest.mark.parametrize(
    "upgrade",
    [
        # no Sec-WebSocket-Key
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        # a key that is not 16 bytes of base64
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: c2hvcnQ=\r\n",
        # a protocol version other than 13
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    ],
    ids=["no-key", "bad-key", "bad-version"],
)
async def test_malformed_upgrade_gets_400_and_the_server_keeps_serving(
    server: RunningServer, kit: FirmKit, upgrade: str
) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    request = f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n{upgrade}\r\n"
    writer.write(request.encode())
    answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # the server closes after it
    writer.close()
    status = answer.split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 400 Bad Request", answer
    ws = await connected(server, kit.tokens["contact"])
    await ws.send('{"type":"ping","id":"after"}')
    assert await recv(ws) == {"type": "pong", "id": "after"}
    await ws.close()
    await drained(server)


async def test_repeated_authorization_header_is_refused_4001(
    server: RunningServer, kit: FirmKit
) -> None:
    """Two credentials are ambiguous: nobody is authenticated, even if both are valid."""
    for second in (kit.tokens["staff"], kit.tokens["contact"]):
        client = await RawClient.open(
            server,
            [
                ("Authorization", f"Bearer {kit.tokens['staff']}"),
                ("Authorization", f"Bearer {second}"),
            ],
        )
        assert (await client.handshake()).status_code == 101
        assert await client.read_until_close() == (4001, [])
        client.close()
    await drained(server)


@pytest.mark.parametrize(
    "origins",
    [
        ("https://evil.example",),
        ("http://127.0.0.1:8000.evil.example",),
        ("null",),
    ],
    ids=["foreign", "suffix", "null"],
)
async def test_foreign_origin_is_refused_4003(
    server: RunningServer, kit: FirmKit, origins: tuple[str, ...]
) -> None:
    headers = [("Authorization", f"Bearer {kit.tokens['staff']}")]
    headers += [("Origin", origin) for origin in origins]
    client = await RawClient.open(server, headers)
    assert (await client.handshake()).status_code == 101
    assert await client.read_until_close() == (4003, [])
    client.close()
    await drained(server)


@pytest.mark.parametrize(
    "origins",
    [(TEST_ORIGIN, TEST_ORIGIN), (TEST_ORIGIN, "https://evil.example")],
    ids=["twice-allowed", "allowed-and-foreign"],
)
async def test_repeated_origin_is_a_malformed_upgrade_400(
    server: RunningServer, kit: FirmKit, origins: tuple[str, ...]
) -> None:
    """websockets' handshake validation refuses two Origin headers (docs/protocol.md)."""
    headers = [("Authorization", f"Bearer {kit.tokens['staff']}")]
    headers += [("Origin", origin) for origin in origins]
    client = await RawClient.open(server, headers)
    assert (await client.handshake()).status_code == 400
    client.close()
    await drained(server)


async def test_repeated_origin_never_opens_a_session(server: RunningServer, kit: FirmKit) -> None:
    """Two Origins never get ``hello``."""
    headers = [("Authorization", f"Bearer {kit.tokens['staff']}")]
    headers += [("Origin", TEST_ORIGIN), ("Origin", TEST_ORIGIN)]
    client = await RawClient.open(server, headers)
    if (await client.handshake()).status_code == 101:
        assert await client.read_until_close() == (4003, [])
    else:
        assert await client.next_frame() is None  # refused over HTTP, connection closed
    client.close()
    await drained(server)


async def test_bearer_and_cookie_both_authenticate(server: RunningServer, kit: FirmKit) -> None:
    token = kit.tokens["contact"]
    cases: list[list[tuple[str, str]]] = [
        [("Authorization", f"Bearer {token}")],
        [("Authorization", f"bearer   {token}")],
        [("Cookie", f"rtp_session={token}"), ("Origin", TEST_ORIGIN)],
        [("Cookie", f"theme=dark; rtp_session={token}; lang=en")],
        # HTTP/2 proxies may split cookies over several headers.
        [("Cookie", "theme=dark"), ("Cookie", f"rtp_session={token}")],
    ]
    for headers in cases:
        client = await RawClient.open(server, headers)
        assert (await client.handshake()).status_code == 101
        hello = await client.recv_json()
        assert hello["principal"]["id"] == kit.contact.id, headers
        await client.send_text(HELLO)
        await client.send_text('{"type":"ping","id":"p"}')
        assert await client.recv_json() == {"type": "pong", "id": "p"}
        client.close()
    await drained(server)


@pytest.mark.parametrize("authorization", ["Basic Zm9vOmJhcg==", "Bearer", "Token abc", "Bearer x"])
async def test_a_malformed_authorization_is_not_replaced_by_the_cookie(
    server: RunningServer, kit: FirmKit, authorization: str
) -> None:
    headers = [("Authorization", authorization), ("Cookie", f"rtp_session={kit.tokens['staff']}")]
    client = await RawClient.open(server, headers)
    assert (await client.handshake()).status_code == 101
    assert await client.read_until_close() == (4001, [])
    client.close()
    await drained(server)


# --- frames ---------------------------------------------------------------------------


async def test_fragmented_messages_are_assembled_and_answered(
    server: RunningServer, kit: FirmKit
) -> None:
    ws = await connected(server, kit.tokens["staff"])
    await ws.send(['{"type":"pi', 'ng","id"', ':"frag"}'])
    assert await recv(ws) == {"type": "pong", "id": "frag"}
    text = send_frame("m-frag", kit.ref)
    await ws.send([text[:10], text[10:-7], text[-7:]])
    ack = await recv(ws)
    assert (ack["type"], ack["id"], ack["seq"]) == ("ack", "m-frag", 1)
    # A character split between two fragments is decoded after assembly.
    await ws.send([b'{"type":"ping","id":"caf\xc3', b'\xa9"}'], text=True)
    assert await recv(ws) == {"type": "pong", "id": "café"}
    # An unfragmented frame after fragmented ones still works.
    await ws.send('{"type":"ping","id":"plain"}')
    assert await recv(ws) == {"type": "pong", "id": "plain"}
    await ws.close()
    assert [r.client_id for r in await stored(kit.db, kit.matter.id)] == ["m-frag"]
    await drained(server)


async def test_a_control_frame_between_fragments_is_allowed(
    server: RunningServer, kit: FirmKit
) -> None:
    """RFC 6455 5.4: pings may be interleaved with the fragments of a message."""
    client, _ = await RawClient.connect(server, kit.tokens["staff"])
    client.proto.send_text(b'{"type":"ping",', fin=False)
    client.proto.send_ping(b"between")
    client.proto.send_continuation(b'"id":"split"}', fin=True)
    await client.flush()
    pong = await client.next_frame()
    assert pong is not None and (pong.opcode, pong.data) == (Opcode.PONG, b"between")
    assert await client.recv_json() == {"type": "pong", "id": "split"}
    client.close()
    await drained(server)


@pytest.mark.parametrize(
    "message",
    [b'{"type":"ping","id":"\xff"}', [b'{"type":"ping",', b'"id":"\xc3"}']],
    ids=["frame", "fragments"],
)
async def test_invalid_utf8_in_a_text_message_closes_1007(
    server: RunningServer, kit: FirmKit, message: bytes | list[bytes]
) -> None:
    ws = await connected(server, kit.tokens["staff"])
    await ws.send(message, text=True)
    assert await close_code(ws) == (1007, [])
    await drained(server)


@pytest.mark.parametrize("fragments", [1, 3])
async def test_a_message_over_max_frame_bytes_closes_1009(
    server: RunningServer, kit: FirmKit, fragments: int
) -> None:
    limit = server.app.state.settings.ws_max_frame_bytes
    other = await connected(server, kit.tokens["contact"])
    ws = await connected(server, kit.tokens["staff"])
    size = limit // fragments + 1  # every fragment is under the limit when fragments > 1
    text = '{"type":"ping","id":"big","pad":"' + "x" * (limit + 10) + '"}'
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    assert len(parts) > 1 or fragments == 1
    await ws.send(parts[0] if fragments == 1 else parts)
    assert await close_code(ws) == (1009, [])
    await other.send('{"type":"ping","id":"still"}')
    assert await recv(other) == {"type": "pong", "id": "still"}
    await other.close()
    await drained(server)


async def test_binary_frames_close_4002(server: RunningServer, kit: FirmKit) -> None:
    """docs/protocol.md: binary frames are a protocol violation (4002), fragmented or not."""
    for message in (b"\x00\x01", [b"\x00", b"\x01"]):
        ws = await connected(server, kit.tokens["staff"])
        await ws.send(message)
        code, frames = await close_code(ws)
        assert (code, frames) == (4002, [])
        assert ws.close_reason == "binary frames are not allowed"
    await drained(server)


# --- keepalive -------------------------------------------------------------------------


@pytest.fixture
async def fast_pings(settings: Settings) -> AsyncIterator[RunningServer]:
    app = create_app(settings)
    async with running_server(app, ws=UVICORN_WS, ws_ping_interval=0.2, ws_ping_timeout=0.2) as srv:
        yield srv


async def test_keepalive_pings_idle_clients_and_those_that_answer_stay_open(
    fast_pings: RunningServer, kit: FirmKit
) -> None:
    srv = fast_pings
    # A library client answers pings by itself (its own pings are off).
    library = await connected(srv, kit.tokens["contact"], ping_interval=None)
    raw, _ = await RawClient.connect(srv, kit.tokens["staff"])
    # Idle: pinged every other sweep (a sweep after traffic only clears the mark).
    async with asyncio.timeout(TIMEOUT):
        while raw.pings < 4:
            frame = await raw.next_frame()
            assert frame is not None and frame.opcode is Opcode.PING, frame
    await raw.send_text('{"type":"ping","id":"raw"}')
    assert await raw.recv_json() == {"type": "pong", "id": "raw"}
    await library.send('{"type":"ping","id":"lib"}')
    assert await recv(library) == {"type": "pong", "id": "lib"}
    await library.close()
    raw.close()
    await drained(srv)


async def test_keepalive_closes_a_client_that_never_answers(
    fast_pings: RunningServer, kit: FirmKit
) -> None:
    srv = fast_pings
    mute, _ = await RawClient.connect(srv, kit.tokens["staff"])
    alive = await connected(srv, kit.tokens["contact"], ping_interval=None)
    assert (await subscribe(alive, kit.ref))["type"] == "subscribed"
    # From here the mute client reads nothing and answers nothing.
    # Dropped from the transport, then (its close finishing) from the hub.
    await wait_until(
        lambda: (
            len(native_connections(srv)) == 1
            and [p.principal.kind for p in srv.app.state.hub._all_listeners()] == ["contact"]
        ),
        TIMEOUT,
        "the mute client dropped",
    )
    # What reached its socket: the ping it never answered, then 1011.
    code, texts = await mute.read_until_close()
    assert (code, texts) == (1011, []) and mute.pings >= 1
    assert await mute.next_frame() is None  # and the server ended TCP
    mute.close()
    # The answering client was left alone.
    await alive.send('{"type":"ping","id":"p"}')
    assert await recv(alive) == {"type": "pong", "id": "p"}
    await alive.close()
    await drained(srv)


# --- slow consumers ----------------------------------------------------------------------


async def test_slow_consumer_is_closed_4008_and_resumes_from_its_cursor(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    # The limit holds one burst of 5 event frames (the writer's round), so the
    # reader that keeps up is never closed; the one that stops reading is.
    limited = dataclasses.replace(settings, ws_send_buffer_max=1_100_000)
    count = 60
    blob = bytes(150_000)  # ~200 KB event frames: 12 MB in all, far past socket buffers
    async with running_server(create_app(limited), ws=UVICORN_WS) as srv:
        slow, _ = await RawClient.connect(srv, kit.tokens["contact"], rcvbuf=4096)
        await slow.send_text(
            json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]})
        )
        assert (await slow.recv_json())["type"] == "subscribed"
        # From here the slow client reads nothing until every event was delivered.
        fast = await connected(srv, kit.tokens["bot"])
        assert (await subscribe(fast, kit.ref))["type"] == "subscribed"
        writer = await connected(srv, kit.tokens["staff"])
        hub = srv.app.state.hub

        def slow_closed() -> bool:
            (listener,) = [x for x in hub._all_listeners() if x.principal.kind == "contact"]
            return listener.proto.closed is not None

        seen: list[int] = []
        slow_reading: asyncio.Task[tuple[int | None, list[Json]]] | None = None
        for start in range(0, count, 5):
            await send_many(writer, kit.ref, [f"e{n}" for n in range(start, start + 5)], blob=blob)
            while len(seen) < start + 5:  # pace the writer on a reader that keeps up
                frame = await recv(fast)
                if frame["type"] == "event":
                    seen.append(frame["seq"])
            if slow_reading is None and slow_closed():
                # Read from now on: a close the client does not answer is
                # followed by an abort (dropping the buffer) after 5 s.
                slow_reading = asyncio.create_task(slow.read_until_close())
        assert seen == list(range(1, count + 1))  # not held back by the slow one
        assert slow_reading is not None, "the slow client never overflowed ws_send_buffer_max"
        code, frames = await slow_reading
        assert code == 4008
        events = [unseal(srv, f, kit.matter.id) for f in frames if f["type"] == "event"]
        seqs = [f["seq"] for f in events]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < count
        assert await slow.next_frame() is None
        slow.close()
        # Resume from the last event's token: the rest, nothing twice, nothing lost.
        again = await connected(srv, kit.tokens["contact"])
        last = events[-1]["cursor"] if events else 0
        assert (await subscribe(again, kit.ref, last))["type"] == "subscribed"
        rest: list[int] = []
        while not rest or rest[-1] < count:
            rest.append(unseal(srv, await recv(again), kit.matter.id)["seq"])
        assert seqs + rest == list(range(1, count + 1))
        for ws in (again, fast, writer):
            await ws.close()
        await drained(srv)


# --- shutdown, cleanup, back-pressure ---------------------------------------------------------


async def test_shutdown_closes_every_open_client_1012(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with running_server(create_app(settings), ws=UVICORN_WS) as srv:
        subscribed = await connected(srv, kit.tokens["contact"])
        assert (await subscribe(subscribed, kit.ref))["type"] == "subscribed"
        idle = await connected(srv, kit.tokens["bot"])
        sender = await connected(srv, kit.tokens["staff"])
        await send_many(sender, kit.ref, ["before"])
        raw, _ = await RawClient.connect(srv, kit.tokens["staff"])
        # Reading, so that it answers the server's close (as the library clients do).
        raw_closed = asyncio.create_task(raw.read_until_close())
        hub = srv.app.state.hub
        state = srv.server.server_state
    # The block stopped uvicorn: every client was told to reconnect elsewhere.
    for ws in (subscribed, idle, sender):
        code, _ = await close_code(ws)
        assert code == 1012
        assert ws.close_reason == "server restarting"
    assert (await raw_closed)[0] == 1012
    raw.close()
    assert hub._all_listeners() == [] and not state.tasks
    assert not [c for c in state.connections if isinstance(c, WebSocketProtocol)]


async def test_shutdown_while_a_token_is_checked_opens_nothing(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with running_server(create_app(settings), ws=UVICORN_WS) as srv:
        state = srv.server.server_state
        hub = srv.app.state.hub
        async with every_connection_held(srv.app.state.db.read_engine):
            client = await RawClient.open(srv, [("Authorization", f"Bearer {kit.tokens['staff']}")])
            await wait_until(lambda: len(state.tasks) == 1, TIMEOUT, "the authentication task")
            srv.server.should_exit = True  # uvicorn starts its shutdown
            # No websocket was opened: the client gets EOF instead of the 101.
            with pytest.raises(ConnectionError, match="EOF before the handshake"):
                await client.handshake()
            client.close()
        # Released: the check completes after the fact and registers nothing.
        await wait_until(lambda: not state.tasks, TIMEOUT, "the authentication task to end")
        assert hub._all_listeners() == []


@pytest.mark.parametrize("leaves", ["abort", "close"])
async def test_a_client_gone_while_its_token_is_checked_leaves_nothing_registered(
    server: RunningServer, kit: FirmKit, leaves: str
) -> None:
    db = server.app.state.db
    state = server.server.server_state
    async with every_connection_held(db.read_engine):
        client = await RawClient.open(server, [("Authorization", f"Bearer {kit.tokens['staff']}")])
        # The authentication task is waiting for a database connection.
        await wait_until(lambda: len(state.tasks) == 1, TIMEOUT, "the authentication task")
        assert len(native_connections(server)) == 1
        client.abort() if leaves == "abort" else client.close()
    # Released: the check completes; the server (not reading during the check)
    # then finds the client gone and unregisters it.
    await drained(server)
    ws = await connected(server, kit.tokens["staff"])  # the pool works again
    await ws.close()
    await drained(server)


async def test_frames_sent_before_the_101_wait_for_the_token_check(
    server: RunningServer, kit: FirmKit
) -> None:
    """RFC 6455 forbids it, but a frame that arrives while the token is being
    checked is not read before ``hello`` (and not lost): it is answered after."""
    state = server.server.server_state
    async with every_connection_held(server.app.state.db.read_engine):
        client = await RawClient.open(server, [("Authorization", f"Bearer {kit.tokens['staff']}")])
        await wait_until(lambda: len(state.tasks) == 1, TIMEOUT, "the authentication task")
        hello = Frame(Opcode.TEXT, HELLO.encode()).serialize(mask=True)
        early = Frame(Opcode.TEXT, b'{"type":"ping","id":"early"}').serialize(mask=True)
        await asyncio.get_running_loop().sock_sendall(client.sock, hello + early)
    assert (await client.handshake()).status_code == 101
    assert (await client.recv_json())["type"] == "hello"
    assert await client.recv_json() == {"type": "pong", "id": "early"}
    client.close()
    await drained(server)


async def test_the_hub_is_empty_after_every_client_leaves_however_it_leaves(
    server: RunningServer, kit: FirmKit
) -> None:
    second = await kit.add_matter(title="Second")
    hub = server.app.state.hub
    # Clean close while subscribed to two matters.
    clean = await connected(server, kit.tokens["contact"])
    for n, ref in enumerate((kit.ref, second.reference)):
        assert (await subscribe(clean, ref, fid=f"s{n}"))["type"] == "subscribed"
    # Vanishes (RST) while subscribed.
    gone, _ = await RawClient.connect(server, kit.tokens["bot"])
    await gone.send_text(
        json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]})
    )
    assert (await gone.recv_json())["type"] == "subscribed"
    # Vanishes right after asking to subscribe and to send (requests in flight).
    busy, _ = await RawClient.connect(server, kit.tokens["staff"])
    await busy.send_text(
        json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": second.reference}]})
    )
    await busy.send_text(send_frame("in-flight", kit.ref))
    # Refused after the upgrade.
    refused = await RawClient.open(server, [("Authorization", "Bearer " + "x" * 43)])
    assert (await refused.handshake()).status_code == 101
    assert (await refused.read_until_close())[0] == 4001
    refused.close()
    await wait_until(lambda: len(hub._all_listeners()) == 3, TIMEOUT, "three listeners")
    await clean.close()
    gone.abort()
    busy.abort()
    await drained(server)


async def test_pipelined_sends_are_all_acked_in_order(settings: Settings, kit: FirmKit) -> None:
    """200 sends without reading: reading pauses at ``max_in_flight`` requests in
    flight and resumes, so none is refused and acks keep the order. (A write
    burst of 200 here: the default bucket would refuse sends beyond 100.)"""
    roomy = dataclasses.replace(settings, write_burst=200)
    async with running_server(create_app(roomy)) as server:
        await _pipelined_sends_are_acked(server, kit)


async def _pipelined_sends_are_acked(server: RunningServer, kit: FirmKit) -> None:
    ws = await connected(server, kit.tokens["staff"])
    ids = [f"p-{n:03}" for n in range(200)]
    for fid in ids:
        await ws.send(send_frame(fid, kit.ref, blob=None))
    answers = [await recv(ws) for _ in ids]
    assert [(a["type"], a["id"]) for a in answers] == [("ack", fid) for fid in ids], [
        a for a in answers if a["type"] != "ack"
    ][:3]
    assert [a["seq"] for a in answers] == list(range(1, 201))
    assert [r.client_id for r in await stored(kit.db, kit.matter.id)] == ids
    await ws.close()
    await drained(server)
