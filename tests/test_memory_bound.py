"""Memory that one reader cannot blow up (issue 9, hole 2): measured, not assumed.

A real uvicorn worker process (the native transport, as deployed) serves a
matter holding a few hundred maximum-size events (64 KiB payload + 256 KiB
blob each). Against it, at once:

* websocket subscribers that subscribe from the start of the log and then
  never read (raw sockets with a small receive buffer);
* websocket subscribers that subscribe at the head and never read while
  maximum-size events are posted live;
* HTTP history GETs with the largest ``limit``.

The worker's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``,
reset after a warm-up) must stay within a bound derived from its byte
settings; the live non-readers must be closed with 4008 having been sent
no more than ``ws_send_buffer_max`` plus what the kernel's socket buffers
hold; and a backlog non-reader that starts reading gets the whole log,
gapless, in order (pacing loses nothing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import string
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from rtportal.access import membership
from rtportal.access.sessions import issue_token
from rtportal.db import Database
from rtportal.db.models import Contact, Firm, Matter, MatterMember, StaffUser
from rtportal.events import log as stream
from rtportal.events.batch import AppendItem
from rtportal.events.cursor import CursorCodec
from rtportal.events.event import canonical_json
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.settings import load_secret_key
from tests.support.worker import Worker, migrated_db, worker_env
from tests.support.wsjson import HELLO_FRAME

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status"),
]

MiB = 1024 * 1024
TIMEOUT = 30.0
BACKLOG_EVENTS = 240  # ~77 MB stored: far beyond every per-connection bound
LIVE_EVENTS = 24  # ~10 MB of frames per live subscriber: past kernel buffers + the limit
BACKLOG_READERS = 6
LIVE_READERS = 2
HISTORY_GETS = 4
RCVBUF = 4096
PAYLOAD = {"thread": "x" * 64, "sent_at": 2**53}  # the largest message metadata
BLOB = bytes(range(256)) * 1024  # RTPORTAL_EVENT_BLOB_MAX (256 KiB)
# The worker's byte limits: small, so the bound is tight and the test quick.
LIMITS = {
    "ws_send_buffer_max": 2 * MiB,
    "ws_backlog_low_water": MiB // 2,
    "backlog_page_bytes": MiB // 2,
    "history_page_bytes": MiB,
    "frame_cache_bytes": 4 * MiB,
}
HISTORY_PAGE_MAX = 500
EVENT_BYTES = len(canonical_json(PAYLOAD)) + len(BLOB)  # stored size of one event
FRAME_BYTES = len(canonical_json(PAYLOAD)) + len(BLOB) * 4 // 3 + 1024  # on the wire
_FRAMED_MEMO = 8 * MiB  # rtportal.ws.native's framed-bytes memo bound


def _kernel_send_buffer_max() -> int:
    """The most a TCP socket's send buffer can grow to (autotuning), in bytes."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * MiB


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux clear_refs 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def per_connection_bound() -> int:
    """Server memory one websocket connection may hold, from the settings.

    Unsent bytes in the transport (``ws_send_buffer_max``), as much again in
    frames queued within one loop turn, and one backlog page in flight: its
    rows, decoded events and encoded frames, counted three times.
    """
    page = LIMITS["backlog_page_bytes"] + EVENT_BYTES
    return 2 * LIMITS["ws_send_buffer_max"] + 3 * page * 4 // 3


def history_bound() -> int:
    """Server memory one history GET may hold: rows, events, views and the JSON body."""
    page = LIMITS["history_page_bytes"] + EVENT_BYTES
    return 6 * page


def worker_bound() -> int:
    """Peak RSS growth allowed over the warmed-up worker."""
    shared = LIMITS["frame_cache_bytes"] + _FRAMED_MEMO
    connections = (BACKLOG_READERS + LIVE_READERS) * per_connection_bound()
    # Slack: allocator fragmentation, the database driver's page cache, the
    # posts' request bodies and events in flight through the group commit.
    slack = 48 * MiB
    return shared + connections + HISTORY_GETS * history_bound() + slack


# --------------------------------------------------------------- raw client


class RawReader:
    """A websocket client on a plain socket that reads only when told to."""

    def __init__(self, sock: socket.socket, port: int) -> None:
        self.sock = sock
        self.proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"), max_size=None)
        self.received = 0  # bytes read off the socket after the handshake
        self.frames: list[Frame] = []
        self.close_code: int | None = None
        self.eof = False
        self.response: Response | None = None

    @classmethod
    async def open(cls, port: int, token: str) -> RawReader:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect: no autotuning, so unread data backs up into the server.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), TIMEOUT)
        client = cls(sock, port)
        request = client.proto.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        client.proto.send_request(request)
        await client.flush()
        while client.response is None:
            assert await client._read_once(count=False), "closed during the handshake"
        assert client.response.status_code == 101, client.response
        hello = await client.next_json()
        assert hello["type"] == "hello", hello
        await client.send_json(HELLO_FRAME)
        client.received = 0
        return client

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        for data in self.proto.data_to_send():
            if data:
                try:
                    await asyncio.wait_for(loop.sock_sendall(self.sock, data), TIMEOUT)
                except OSError:
                    return  # the server is gone: what it sent is what the test reads
            else:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    async def _read_once(self, *, count: bool = True) -> bool:
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 18), TIMEOUT)
        except ConnectionResetError:
            data = b""
        if count:
            self.received += len(data)
        if data:
            self.proto.receive_data(data)
        else:
            self.eof = True
            self.proto.receive_eof()
        for event in self.proto.events_received():
            if isinstance(event, Response):
                self.response = event
            elif isinstance(event, Frame):
                if event.opcode is Opcode.CLOSE:
                    self.close_code = int.from_bytes(event.data[:2], "big") if event.data else 1005
                self.frames.append(event)
        await self.flush()  # pongs, the close reply
        return bool(data)

    async def next_json(self) -> dict[str, Any]:
        while True:
            for i, frame in enumerate(self.frames):
                if frame.opcode is Opcode.TEXT:
                    del self.frames[: i + 1]
                    parsed: dict[str, Any] = json.loads(bytes(frame.data))
                    return parsed
            self.frames.clear()
            assert not self.eof, "connection ended"
            await self._read_once()

    async def send_json(self, obj: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(obj).encode())
        await self.flush()

    async def read_until_close(self) -> list[dict[str, Any]]:
        """Read everything up to the server's close frame (or EOF); return the text frames."""
        texts: list[dict[str, Any]] = []
        while True:
            for frame in self.frames:
                if frame.opcode is Opcode.TEXT:
                    texts.append(json.loads(bytes(frame.data)))
            self.frames.clear()
            if self.close_code is not None or self.eof:
                return texts
            await self._read_once()

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return os.environ.get("RTPORTAL_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_path / 'memory.db'}"
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with migrated_db(database_url) as database:
        yield database


async def _seed(db: Database, key: bytes) -> tuple[str, int, str, list[str]]:
    """A matter full of maximum-size events; (ref, id, staff token, contact tokens)."""
    tag = secrets.token_hex(3).upper()
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    ref = f"{letters}{secrets.randbelow(10_000):04d}"
    readers = BACKLOG_READERS + LIVE_READERS
    async with db.write() as s:
        firm = Firm(name=f"Memory {tag}", slug=f"memory-{tag}")
        s.add(firm)
        await s.flush()
        staff = StaffUser(
            firm_id=firm.id, email=f"s-{tag}@example.test", display_name="Staff", role="staff"
        )
        contacts = [Contact(firm_id=firm.id, display_name=f"C{i}") for i in range(readers)]
        matter = Matter(firm_id=firm.id, reference=ref, title="Memory")
        s.add_all([staff, *contacts, matter])
        await s.flush()
        s.add_all(
            MatterMember(
                matter_id=matter.id, principal_kind="contact", principal_id=c.id, role="client"
            )
            for c in contacts
        )
        ttl = timedelta(hours=1)
        staff_token = await issue_token(s, key, "staff", staff.id, label="memory", ttl=ttl)
        tokens = [
            await issue_token(s, key, "contact", c.id, label="memory", ttl=ttl) for c in contacts
        ]
        matter_id = matter.id
        actor = Principal(kind="staff", id=staff.id, firm_id=firm.id, display_name="Staff")
    for start in range(0, BACKLOG_EVENTS, 20):
        async with db.write() as s:
            m = await membership.can_access(s, actor, ref)
            items = [
                AppendItem(m, actor, Send(ref, "message", "portal", PAYLOAD, BLOB, f"b{n}"))
                for n in range(start, min(start + 20, BACKLOG_EVENTS))
            ]
            for result in await stream.append_batch(s, items):
                assert not isinstance(result, Exception), result
    return ref, matter_id, staff_token, tokens


# ---------------------------------------------------------------------- test


async def test_readers_that_never_read_cannot_blow_up_the_workers_memory(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    secret_hex = secrets.token_hex(32)
    key = load_secret_key(data_dir, secret_hex)
    ref, mid, staff_token, tokens = await _seed(db, key)
    codec = CursorCodec(key)  # the readers are contacts: their frames carry tokens

    def seq(frame: dict[str, Any]) -> int:
        return codec.seq_of(frame["cursor"], mid)

    extra = {f"RTPORTAL_{k.upper()}": str(v) for k, v in LIMITS.items()}
    extra["RTPORTAL_HISTORY_PAGE_MAX"] = str(HISTORY_PAGE_MAX)
    env = worker_env(
        database_url=database_url,
        broker_url="memory://",
        data_dir=data_dir,
        secret_key=secret_hex,
        extra=extra,
    )
    worker = Worker("memory", env, tmp_path)
    await worker.start()
    readers: list[RawReader] = []
    try:
        async with httpx.AsyncClient(base_url=worker.http_url, timeout=TIMEOUT) as http:
            staff = {"Authorization": f"Bearer {staff_token}"}

            async def history() -> int:
                """Page through the whole log; the largest response body seen."""
                after, largest = "0", 0
                while True:
                    r = await http.get(
                        f"/api/v1/matters/{ref}/events",
                        params={"after": after, "limit": HISTORY_PAGE_MAX},
                        headers=staff,
                    )
                    assert r.status_code == 200, r.text
                    largest = max(largest, len(r.content))
                    body = r.json()
                    after = body["next"]
                    if not body["more"]:
                        return largest

            # Warm up (imports, compiled statements, pools), then measure from here.
            r = await http.get(f"/api/v1/matters/{ref}/events?limit=1", headers=staff)
            assert r.status_code == 200, r.text
            warm = await RawReader.open(worker.port, tokens[0])
            await warm.send_json({"type": "subscribe", "id": "w", "subs": [{"matter": ref}]})
            assert (await warm.next_json())["type"] == "subscribed"
            assert seq(await warm.next_json()) == 1
            warm.close()
            baseline = _status_kib(worker.pid, "VmRSS") * 1024
            peak_reset = _reset_peak(worker.pid)
            if not peak_reset:
                baseline = max(baseline, _status_kib(worker.pid, "VmHWM") * 1024)

            # Backlog readers: subscribe from the start, then read nothing.
            backlog = [await RawReader.open(worker.port, t) for t in tokens[:BACKLOG_READERS]]
            live = [await RawReader.open(worker.port, t) for t in tokens[BACKLOG_READERS:]]
            readers += backlog + live
            for i, reader in enumerate(backlog):
                await reader.send_json(
                    {"type": "subscribe", "id": f"b{i}", "subs": [{"matter": ref}]}
                )
            for i, reader in enumerate(live):
                # Subscribed at the head: a contact names it by a token.
                sub = {"matter": ref, "after": codec.position_token(mid, BACKLOG_EVENTS)}
                await reader.send_json({"type": "subscribe", "id": f"l{i}", "subs": [sub]})
                assert (await reader.next_json())["type"] == "subscribed"
            reader_start = {id(r): r.received for r in live}

            # History pages with the largest limit, concurrently, while the
            # backlog readers hold their subscriptions.
            largest_body = max(await asyncio.gather(*(history() for _ in range(HISTORY_GETS))))
            # Then maximum-size events, posted at once (the server drops a
            # client that leaves its close unanswered for 5 s: read soon after).
            blob = base64.urlsafe_b64encode(BLOB).decode().rstrip("=")

            async def post(n: int) -> None:
                body = {"kind": "message", "payload": PAYLOAD, "blob": blob, "client_id": f"l{n}"}
                r = await http.post(f"/api/v1/matters/{ref}/events", json=body, headers=staff)
                assert r.status_code == 201, r.text

            await asyncio.gather(*(post(n) for n in range(LIVE_EVENTS)))

            peak = _status_kib(worker.pid, "VmHWM") * 1024
            growth = peak - baseline
            print(
                f"\nworker RSS baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB"
                f" (+{growth / MiB:.0f} MiB, bound {worker_bound() / MiB:.0f} MiB);"
                f" largest history body {largest_body / MiB:.2f} MiB"
            )
            assert growth <= worker_bound(), (
                f"peak RSS grew by {growth / MiB:.0f} MiB, bound {worker_bound() / MiB:.0f} MiB"
            )
            # The history body is bounded by the page's bytes (base64 blobs: 4/3).
            assert largest_body <= (LIMITS["history_page_bytes"] + EVENT_BYTES) * 4 // 3 + 64_000

            # The live non-readers were closed with 4008, having been sent at
            # most the unsent limit plus what the kernel's buffers took.
            kernel = _kernel_send_buffer_max() + 4 * RCVBUF
            for reader in live:
                frames = await reader.read_until_close()
                sent = reader.received - reader_start[id(reader)]
                assert reader.close_code == 4008, (reader.close_code, len(frames))
                seqs = [seq(f) for f in frames if f.get("type") == "event"]
                assert seqs == list(range(BACKLOG_EVENTS + 1, BACKLOG_EVENTS + 1 + len(seqs)))
                assert len(seqs) < LIVE_EVENTS
                assert sent <= LIMITS["ws_send_buffer_max"] + kernel + FRAME_BYTES, sent

            # Pacing loses nothing: a backlog reader that starts reading gets
            # the whole log, then the live events, in order, exactly once.
            first = backlog[0]
            assert (await first.next_json())["type"] == "subscribed"
            seqs = []
            total = BACKLOG_EVENTS + LIVE_EVENTS
            while len(seqs) < total:
                frame = await first.next_json()
                assert frame["type"] == "event", frame
                seqs.append(seq(frame))
            assert seqs == list(range(1, total + 1))
            assert worker.alive(), worker.log_text()
    finally:
        for reader in readers:
            reader.close()
        worker.stop()
