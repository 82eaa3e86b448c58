"""Operator logs: a real worker process (uvicorn, as the Procfile runs it) with
``RTPORTAL_LOG_FORMAT=json`` writes one JSON object per line, with a request
id (HTTP, also answered as ``X-Request-Id``) or connection id (websocket),
for refused origins, failed authentication over HTTP and websocket, denied
subscribes, closes with their code and slow consumers, and never a token,
a cookie or a payload. ``rtportal serve --host 0.0.0.0`` with the default
origins says at start what to set.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rtportal import logs
from rtportal.cli import every_interface_hint
from rtportal.settings import Settings
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.procs import ManagedProcess, free_port
from tests.support.worker import Worker, worker_env
from tests.support.wsclient import wait_until
from tests.support.wsjson import HELLO

TIMEOUT = 30.0
Line = dict[str, Any]
SECRET_MARK = "payload-secret-7f3a"  # must never reach the log
EVIL = "http://evil.example"


@pytest.fixture
async def worker(
    tmp_path: Path, database_url: str, broker_url: str, settings: Settings
) -> AsyncIterator[Worker]:
    env = worker_env(
        database_url=database_url,
        broker_url=broker_url,
        data_dir=tmp_path / "data",
        secret_key=settings.secret_key.hex(),  # the key conftest issued the tokens with
        allowed_origins=TEST_ORIGIN,
        extra={"RTPORTAL_LOG_FORMAT": "json", "RTPORTAL_WS_SEND_BUFFER_MAX": "65536"},
    )
    w = Worker("logs", env, tmp_path)
    await w.start()
    try:
        yield w
    finally:
        w.stop()


def _lines(worker: Worker) -> list[Line]:
    """Every line of the worker's log, parsed: each one must be a JSON object."""
    out: list[Line] = []
    for raw in worker.log_path.read_text().splitlines():
        if raw.strip():
            line = json.loads(raw)  # a line that is not JSON fails the test here
            assert isinstance(line, dict), raw
            out.append(line)
    return out


async def _line(worker: Worker, match: Callable[[Line], bool], what: str) -> Line:
    found: list[Line] = []

    def seen() -> bool:
        found[:] = [line for line in _lines(worker) if match(line)]
        return bool(found)

    await wait_until(seen, TIMEOUT, what)
    return found[0]


def _event(name: str, **fields: Any) -> Callable[[Line], bool]:
    return lambda line: (
        line.get("event") == name and all(line.get(k) == v for k, v in fields.items())
    )


async def _ws_refused(worker: Worker, headers: dict[str, str], origin: str | None) -> int:
    ws = await connect(
        worker.ws_url,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        open_timeout=TIMEOUT,
    )
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code
    raise AssertionError("the connection was not closed")


async def test_http_refusals_are_logged_with_the_request_id(
    worker: Worker, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    bad_token = "B" * 43
    async with httpx.AsyncClient(base_url=worker.http_url) as http:
        refused = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {bad_token}"})
        assert refused.status_code == 401
        rid = refused.headers["x-request-id"]
        line = await _line(worker, _event("auth_failed", request=rid), "HTTP auth_failed")
        assert line["transport"] == "http"
        assert line["level"] == "warning"
        assert line["path"] == "/api/v1/me"
        assert line["reason"] == "invalid token"
        forged = await http.post(
            f"/api/v1/matters/{kit.ref}/events",
            headers={"Origin": EVIL, "Cookie": f"rtp_session={kit.tokens['contact']}"},
            json={"kind": "message", "payload": {"m": SECRET_MARK}},
        )
        assert forged.status_code == 403
        rid = forged.headers["x-request-id"]
        line = await _line(worker, _event("origin_refused", request=rid), "HTTP origin_refused")
        assert (line["transport"], line["origin"], line["method"]) == ("http", EVIL, "POST")
    _assert_nothing_secret(worker, [bad_token, *kit.tokens.values(), SECRET_MARK])


async def test_websocket_events_are_logged_with_the_connection_id(
    worker: Worker, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    # A refused origin, then its close.
    auth = {"Authorization": f"Bearer {kit.tokens['contact']}"}
    assert await _ws_refused(worker, auth, EVIL) == 4003
    refused = await _line(worker, _event("origin_refused", transport="ws"), "ws origin_refused")
    assert refused["origin"] == EVIL and refused["conn"].startswith("c-")
    closed = await _line(worker, _event("ws_closed", conn=refused["conn"]), "its ws_closed")
    assert (closed["code"], closed["by"]) == (4003, "server")
    # Failed authentication, then its close.
    bad = {"Authorization": "Bearer " + "C" * 43}
    assert await _ws_refused(worker, bad, TEST_ORIGIN) == 4001
    failed = await _line(worker, _event("auth_failed", transport="ws"), "ws auth_failed")
    assert failed["reason"] == "invalid token"
    closed = await _line(worker, _event("ws_closed", conn=failed["conn"]), "its ws_closed")
    assert closed["code"] == 4001
    # A denied subscribe, then a close by the client.
    async with connect(
        worker.ws_url, additional_headers=auth, proxy=None, open_timeout=TIMEOUT
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(HELLO)
        await ws.send(
            json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": "ZZZZ9999"}]})
        )
        assert json.loads(await ws.recv())["code"] == "not_found"
    denied = await _line(worker, _event("subscribe_denied"), "subscribe_denied")
    assert (denied["matter"], denied["code"]) == ("ZZZZ9999", "not_found")
    assert denied["principal"] == f"contact:{kit.contact.id}"
    closed = await _line(worker, _event("ws_closed", conn=denied["conn"]), "the client's close")
    assert (closed["code"], closed["by"]) == (1000, "client")
    _assert_nothing_secret(worker, list(kit.tokens.values()))


async def test_a_slow_consumer_is_logged_with_its_close(
    worker: Worker, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no autotuning
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", worker.port))
    slow = await connect(
        worker.ws_url,
        sock=sock,
        additional_headers={"Authorization": f"Bearer {kit.tokens['contact']}"},
        proxy=None,
        compression=None,
        max_queue=1,  # the client library stops reading once one frame waits unread
        max_size=None,
        open_timeout=TIMEOUT,
    )
    try:
        assert json.loads(await slow.recv())["type"] == "hello"
        await slow.send(HELLO)
        await slow.send(json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]}))
        assert json.loads(await slow.recv())["type"] == "subscribed"
        blob = base64.b64encode(bytes(150_000)).decode()
        async with httpx.AsyncClient(base_url=worker.http_url) as http:
            for n in range(40):  # ~8 MB of event frames, far past the 64 KiB allowed unsent
                posted = await http.post(
                    f"/api/v1/matters/{kit.ref}/events",
                    headers=kit.auth("staff"),
                    json={
                        "kind": "message",
                        "client_id": f"l{n}",
                        "payload": {"thread": "t", "to": [kit.contact.id], "sent_at": n},
                        "blob": blob,
                    },
                )
                assert posted.status_code == 201
        slow_line = await _line(worker, _event("slow_consumer"), "slow_consumer")
        assert (slow_line["code"], slow_line["principal"]) == (4008, f"contact:{kit.contact.id}")
        closed = await _line(worker, _event("ws_closed", conn=slow_line["conn"]), "its close")
        assert (closed["code"], closed["by"]) == (4008, "server")
    finally:
        await slow.close()


def _assert_nothing_secret(worker: Worker, secrets_: list[str]) -> None:
    text = worker.log_path.read_text()
    for value in secrets_:
        assert value not in text


def test_text_format_is_key_value() -> None:
    record = logging.LogRecord("rtportal.ws", logging.WARNING, __file__, 1, "ws_closed", (), None)
    record.rtportal_fields = {"conn": "c-1", "code": 4008, "reason": "slow consumer"}
    line = logs.TextFormatter().format(record)
    assert line.endswith('warning rtportal.ws ws_closed conn=c-1 code=4008 reason="slow consumer"')


def test_serve_on_every_interface_says_what_to_set(tmp_path: Path) -> None:
    """``rtportal serve --host 0.0.0.0`` with the defaults: the first log line says what to set."""
    assert every_interface_hint("127.0.0.1", 8000, {}) is None
    set_both = {"RTPORTAL_PUBLIC_URL": "x", "RTPORTAL_ALLOWED_ORIGINS": "y"}
    assert every_interface_hint("0.0.0.0", 8000, set_both) is None
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPORTAL_")}
    env |= {
        "RTPORTAL_DATA_DIR": str(tmp_path / "data"),
        "RTPORTAL_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "rtportal", "serve", "--host", "0.0.0.0", "--port", str(port)]
    server = ManagedProcess(argv, env=env, log_path=log_path)
    server.start()
    try:
        hint = _first_json_line(log_path, server)
    finally:
        server.stop()
    assert (hint["event"], hint["level"], hint["logger"]) == (
        "origins_hint",
        "warning",
        "rtportal.cli",
    )
    message = hint["message"]
    assert "RTPORTAL_PUBLIC_URL=http://" in message and f":{port}" in message
    assert "RTPORTAL_ALLOWED_ORIGINS=" in message


def _first_json_line(path: Path, server: ManagedProcess) -> Line:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert server.proc is not None
        text = path.read_text() if path.exists() else ""
        if "\n" in text:
            line: Line = json.loads(text.splitlines()[0])
            return line
        if server.proc.poll() is not None:
            raise AssertionError(f"rtportal serve exited: {text}")
        time.sleep(0.05)  # reason: polling a log file that has no event to await
    raise TimeoutError("rtportal serve logged nothing")


HOSTILE = "a\rb\tc\x1b[31md\x85e\u2028f\udcffg"  # CR, TAB, ESC, NEL, U+2028, a non-UTF-8 byte


def _record(**fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("rtportal.ws", logging.WARNING, __file__, 1, "ws_closed", (), None)
    record.rtportal_fields = fields
    return record


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_client_values_cannot_forge_or_break_a_line(formatter: logging.Formatter) -> None:
    line = formatter.format(_record(origin=HOSTILE, reason="x\ny=1"))
    assert line.isascii() and line.isprintable(), line
    line.encode("utf-8")  # a strict UTF-8 stream takes it
    if isinstance(formatter, logs.JsonFormatter):
        assert json.loads(line)["origin"] == HOSTILE
    else:
        assert f"origin={json.dumps(HOSTILE)}" in line
    message = logging.LogRecord(
        "rtportal", logging.INFO, __file__, 1, "evil\u2028%s", ("\r",), None
    )
    assert formatter.format(message).isprintable()


async def test_an_origin_with_undecodable_bytes_is_logged_as_one_line(worker: Worker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nOrigin: http://evil\texample\xff\x80\r\n\r\n"
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert b" 101 " in status, status
    finally:
        writer.close()
    # Every line of the log still parses (a failing handler writes a traceback)
    # and is printable ASCII: the bytes arrive escaped.
    line = await _line(worker, _event("origin_refused", transport="ws"), "ws origin_refused")
    assert line["origin"].startswith("http://evil\texample")
    for raw in worker.log_path.read_bytes().splitlines():
        assert raw.isascii() and raw.decode().isprintable(), raw
