"""docs/protocol.md and docs/api.md say what the server does: each claim an
independent client relied on, checked against the real server.

The tables (close codes, error codes) are read from the documents
themselves and compared with the code's tables.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from rtportal import closecodes, errors
from rtportal.app import create_app
from rtportal.closecodes import CLOSE_FORBIDDEN_ORIGIN, CLOSE_PROTOCOL, CLOSE_RESTART
from rtportal.principal import Principal
from rtportal.settings import Settings
from rtportal.ws.admission import refusal
from rtportal.ws.frames import Limits
from rtportal.ws.native import UVICORN_WS
from rtportal.ws.protocol import Close, FrameCache, Protocol
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsjson import HELLO_FRAME, TIMEOUT, connected, open_ws, recv, until_closed

DOCS = Path(__file__).resolve().parent.parent / "docs"


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` (header and rule rows skipped)."""
    section = markdown.split(heading, 1)[1]
    rows: list[list[str]] = []
    started = False
    for line in section.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            started = True
            rows.append([cell.strip() for cell in stripped.strip("|").split("|")])
        elif started:
            break
    return [r for r in rows[2:]]


def code_cell(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, cell
    return match.group(1)


# --- tables -----------------------------------------------------------------------------


def test_the_close_code_table_is_the_documented_one() -> None:
    rows = table_rows((DOCS / "protocol.md").read_text(), "## Close codes")
    documented = {int(code_cell(r[0])): r[1] for r in rows}
    assert documented == closecodes.REASONS


def _error_classes() -> dict[str, int]:
    classes = [errors.RtPortalError]
    found: dict[str, int] = {}
    while classes:
        cls = classes.pop()
        found[cls.code] = cls.http_status
        classes.extend(cls.__subclasses__())
    # Only rtportal.errors' own tree; the crypto_* family has its own table.
    return {c: s for c, s in found.items() if not c.startswith("crypto_") or c == "crypto_invalid"}


def test_error_codes_are_the_documented_ones() -> None:
    codes = _error_classes()
    # errors.py's own table lists every code with its HTTP status.
    doc = errors.__doc__ or ""
    listed = dict(re.findall(r"^``([a-z0-9_]+)``\s+(\d{3})", doc, flags=re.MULTILINE))
    assert {c: int(s) for c, s in listed.items()} == codes
    # The HTTP table: each code with its status.
    api = table_rows((DOCS / "api.md").read_text(), "- **Errors**")
    api_codes = {code_cell(r[0]): int(r[1]) for r in api}
    assert api_codes.items() <= codes.items()
    # The websocket table: each code exists.
    ws = table_rows((DOCS / "protocol.md").read_text(), "### `error`")
    ws_codes = {code_cell(r[0]) for r in ws}
    assert ws_codes <= set(codes)
    # Every code a client can receive is documented for one of the two.
    assert set(codes) - {"invalid_config"} <= set(api_codes) | ws_codes


def test_refused_connections_close_with_the_documented_codes() -> None:
    """docs/protocol.md "Connecting": authentication failures, their codes and reasons."""
    rows = table_rows((DOCS / "protocol.md").read_text(), "HTTP status of a refused upgrade")
    documented = {code_cell(r[1]): r[2] for r in rows}
    assert documented == {
        "4003": "`forbidden_origin`",
        "4001": "`unauthenticated`",
        "1013": "`unavailable` (try again later)",
        "1011": "`internal error`",
        "4029": "`too_many_connections`",
    }
    for exc, code in (
        (errors.Unauthenticated("expired"), "4001"),
        (errors.Unavailable("database down"), "1013"),
        (RuntimeError("a bug"), "1011"),
    ):
        close = refusal(exc, "c-test", None)
        assert str(close.code) == code
        assert documented[code].startswith(f"`{close.reason}`")


# --- closes answer what was queued ------------------------------------------------------

TRANSPORTS = {"native": UVICORN_WS, "asgi": "websockets-sansio"}


@pytest.fixture(params=list(TRANSPORTS))
async def any_server(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), ws=TRANSPORTS[request.param]) as srv:
        yield srv


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    return await make_firm()


async def test_pipelined_malformed_frames_are_each_answered_before_4002(
    any_server: RunningServer, kit: FirmKit
) -> None:
    """docs/protocol.md: every malformed frame is answered; the tenth closes with 4002."""
    reader, writer = await raw_connect(any_server, kit.tokens["contact"])
    try:
        # Ten bad frames in one write: the server reads them together.
        writer.write(b"".join(client_frame({"type": "nope", "id": f"b{i}"}) for i in range(10)))
        await writer.drain()
        answers = []
        while True:
            opcode, data = await read_frame(reader)
            if opcode == Opcode.CLOSE:
                break
            answers.append(json.loads(data))
        assert int.from_bytes(data[:2], "big") == CLOSE_PROTOCOL
        assert [(f["type"], f["id"], f["code"]) for f in answers] == [
            ("error", f"b{i}", "bad_request") for i in range(10)
        ]
    finally:
        writer.close()


def core(principal: Principal) -> Protocol:
    proto = Protocol(principal, Limits(), FrameCache())
    proto.connected()
    proto.receive_text(json.dumps(HELLO_FRAME))
    proto.take_frames()
    return proto


@pytest.mark.parametrize(
    ("code", "kept"),
    [(CLOSE_RESTART, True), (CLOSE_PROTOCOL, True), (4010, False), (4008, False)],
)
def test_a_close_writes_the_queued_answers_except_4008_and_4010(code: int, kept: bool) -> None:
    """docs/protocol.md "What a close drops"."""
    proto = core(Principal(kind="contact", id=7, firm_id=1, display_name="Mei"))
    proto.receive_text('{"type":"ping","id":"p1"}')
    assert proto.close(code, "bye") == [Close(code, "bye")]
    texts = proto.take_frames()
    assert [json.loads(t)["id"] for t in texts] == (["p1"] if kept else [])


# --- origins ----------------------------------------------------------------------------

# Header parsers strip surrounding whitespace, so what remains to differ is the text.
NEAR_MISSES = ["HTTP://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://LOCALHOST:8000"]


@pytest.mark.parametrize("origin", NEAR_MISSES)
async def test_the_websocket_origin_check_is_exact(
    uvicorn_server: RunningServer, kit: FirmKit, origin: str
) -> None:
    ws = await open_ws(uvicorn_server, kit.tokens["contact"], origin=origin)
    code, frames = await until_closed(ws)
    assert (code, frames) == (CLOSE_FORBIDDEN_ORIGIN, [])


async def cookie_for(http: httpx.AsyncClient, kit: FirmKit) -> tuple[str, str]:
    """A contact's session cookie and its CSRF token."""
    response = await http.post("/api/v1/session", headers=kit.auth("contact"))
    assert response.status_code == 201, response.text
    cookie = response.cookies.get("rtp_session")
    assert cookie
    return cookie, response.json()["csrf_token"]


@pytest.mark.parametrize("origin", NEAR_MISSES)
async def test_the_cookie_http_origin_check_is_exact(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings, origin: str
) -> None:
    cookie, csrf = await cookie_for(http, kit)
    http.cookies.clear()
    url = f"/api/v1/matters/{kit.ref}/events"

    async def post(with_origin: str) -> httpx.Response:
        return await http.post(
            url,
            json={"kind": "message", "client_id": "o", "payload": {"thread": "o"}},
            headers={
                "Cookie": f"rtp_session={cookie}",
                "Origin": with_origin,
                "X-CSRF-Token": csrf,
            },
        )

    refused = await post(origin)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"
    allowed = await post(settings.allowed_origins[0])
    assert allowed.status_code == 201, allowed.text


# --- one cursor type, one blob form, one default ------------------------------------------


async def test_history_cursors_are_what_a_subscribe_accepts(
    uvicorn_server: RunningServer, kit: FirmKit
) -> None:
    """docs/api.md: staff cursors are integers, a contact's are tokens; a
    history page's ``next`` is what a subscribe takes as ``after``."""
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=TIMEOUT) as client:
        for n in range(3):
            response = await client.post(
                f"/api/v1/matters/{kit.ref}/events",
                json={"kind": "message", "client_id": f"n{n}", "payload": {"thread": "t"}},
                headers=kit.auth("contact"),
            )
            assert response.status_code == 201
        pages = {
            who: (
                await client.get(
                    f"/api/v1/matters/{kit.ref}/events",
                    params={"limit": 2},
                    headers=kit.auth(who),
                )
            ).json()
            for who in ("staff", "contact")
        }
    assert (pages["staff"]["next"], pages["staff"]["prev"], pages["staff"]["head"]) == (2, 1, 3)
    assert all(isinstance(pages["contact"][k], str) for k in ("next", "prev", "head"))
    codec = uvicorn_server.app.state.runtime.frames.cursors
    for who, wrong in (("staff", str(2)), ("contact", 2)):
        ws = await connected(uvicorn_server, kit.tokens[who])
        try:
            subs = [{"matter": kit.ref, "after": pages[who]["next"]}]
            await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": subs}))
            assert (await recv(ws))["type"] == "subscribed"
            event = await recv(ws)
            at = event["seq"] if who == "staff" else codec.seq_of(event["cursor"], kit.matter.id)
            assert at == 3
            subs = [{"matter": kit.ref, "after": wrong}]
            await ws.send(json.dumps({"type": "subscribe", "id": "t", "subs": subs}))
            err = await recv(ws)
            assert (err["type"], err["id"], err["code"]) == ("error", "t", "invalid_cursor")
        finally:
            await ws.close()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_send_defaults_and_blob_form_are_the_same_over_http_and_websocket(
    uvicorn_server: RunningServer, kit: FirmKit
) -> None:
    blob = b"\xfb\xff\xbf\x01"  # base64 "+/+/AQ==", base64url "-_-_AQ"
    ws = await connected(uvicorn_server, kit.tokens["contact"])
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]}))
        assert (await recv(ws))["type"] == "subscribed"
        # Payload null is {} (docs/protocol.md, docs/api.md): a message without a thread.
        frame = {"type": "send", "id": "w0", "matter": kit.ref, "kind": "message"}
        await ws.send(json.dumps({**frame, "payload": None, "blob": b64url(blob)}))
        err = await recv(ws)
        assert (err["code"], err["details"]["reason"]) == ("bad_request", "thread_required")
        # No audience: "portal".
        await ws.send(
            json.dumps(
                {
                    "type": "send",
                    "id": "w1",
                    "matter": kit.ref,
                    "kind": "message",
                    "payload": {"thread": "t"},
                    "blob": b64url(blob),
                }
            )
        )
        got = {f["type"]: f for f in [await recv(ws), await recv(ws)]}
        event = got["event"]
        assert got["ack"]["cursor"] == event["cursor"]  # a contact's: the event's token
        assert (event["audience"], event["payload"]["thread"], event["blob"]) == (
            "portal",
            "t",
            "-_-_AQ",
        )
        # The padded and the standard-alphabet spellings are not the documented form.
        for spelling in ("-_-_AQ==", "+/+/AQ", "+/+/AQ=="):
            frame = {"type": "send", "id": "w2", "matter": kit.ref, "kind": "message"}
            await ws.send(json.dumps({**frame, "blob": spelling}))
            err = await recv(ws)
            assert (err["type"], err["id"], err["code"]) == ("error", "w2", "bad_request")
    finally:
        await ws.close()
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=TIMEOUT) as client:
        url = f"/api/v1/matters/{kit.ref}/events"
        null = {"kind": "message", "client_id": "h", "payload": None, "blob": b64url(blob)}
        refused = await client.post(url, json=null, headers=kit.auth("contact"))
        assert refused.json()["error"]["details"]["reason"] == "thread_required"
        posted = await client.post(
            url, json={**null, "payload": {"thread": "t"}}, headers=kit.auth("contact")
        )
        assert posted.status_code == 201, posted.text
        event = posted.json()["event"]
        assert (event["audience"], event["payload"]["thread"], event["blob"]) == (
            "portal",
            "t",
            "-_-_AQ",
        )
        for spelling in ("-_-_AQ==", "+/+/AQ", "+/+/AQ=="):
            refused = await client.post(
                url, json={"kind": "message", "blob": spelling}, headers=kit.auth("contact")
            )
            assert refused.status_code == 400, spelling
        history = (await client.get(url, headers=kit.auth("contact"))).json()
    assert [e["blob"] for e in history["events"]] == ["-_-_AQ", "-_-_AQ"]


# --- frames before the 101 ----------------------------------------------------------------


def client_frame(body: dict[str, object]) -> bytes:
    """One masked client text frame."""
    return WsFrame(Opcode.TEXT, json.dumps(body).encode()).serialize(mask=True, extensions=[])


def upgrade_request(server: RunningServer, token: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[Opcode, bytes]:
    """One unmasked, unfragmented server frame: its opcode and data."""
    first, second = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    assert first & 0x80, "fragmented"
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return Opcode(first & 0x0F), await asyncio.wait_for(reader.readexactly(length), TIMEOUT)


async def read_hello(reader: asyncio.StreamReader) -> None:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    opcode, data = await read_frame(reader)
    assert opcode == Opcode.TEXT and json.loads(data)["type"] == "hello"


async def raw_connect(
    server: RunningServer, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket opened by hand (frames written byte for byte), past ``hello``."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(upgrade_request(server, token))
    await writer.drain()
    await read_hello(reader)
    writer.write(client_frame(HELLO_FRAME))
    return reader, writer


async def test_frames_in_the_upgrade_request_read_are_not_answered(
    uvicorn_server: RunningServer, kit: FirmKit
) -> None:
    """docs/protocol.md: bytes in the same read as the upgrade request are
    discarded; the client waits for ``hello`` before sending."""
    reader, writer = await asyncio.open_connection(uvicorn_server.host, uvicorn_server.port)
    try:
        early = client_frame({"type": "ping", "id": "early"})
        writer.write(upgrade_request(uvicorn_server, kit.tokens["contact"]) + early)
        await writer.drain()
        await read_hello(reader)
        writer.write(
            client_frame(HELLO_FRAME) + client_frame({"type": "ping", "id": "after-hello"})
        )
        await writer.drain()
        # The next frame answers the ping sent after hello: "early" was never answered.
        assert await read_frame(reader) == (
            Opcode.TEXT,
            b'{"type":"pong","id":"after-hello"}',
        )
    finally:
        writer.close()
