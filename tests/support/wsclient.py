"""An asyncio test client for the rtportal websocket protocol (docs/protocol.md).

It behaves like a well-written real client, and records everything a test
needs to judge the server:

* connects with ``Authorization: Bearer <token>`` to one of several worker
  URLs (the next one when a worker is down), waits for ``hello``;
* subscribes with a per-matter cursor (the last ``seq`` it accepted) and,
  after any disconnect, reconnects and resubscribes from those cursors;
* accepts ``event`` frames in seq order, drops duplicates (seq at or below
  the cursor) and counts them, records any gap (seq beyond cursor + 1 on one
  connection: the server promised never to do that);
* answers ``resync`` like a real client: pages the history over HTTP from
  its cursor, then subscribes again;
* sends with client-chosen ids and awaits the ``ack``; ``send_until_acked``
  retries the same id across reconnects, as the protocol's idempotency
  allows;
* can stop reading (``pause``) to play a slow consumer, with a small socket
  receive buffer so the server notices soon.

Nothing here judges: tests read ``events``, ``duplicates``, ``gaps``,
``close_codes``, ``resyncs`` and ``errors`` and assert.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

from rtportal.events.cursor import CursorCodec
from tests.support.wsjson import HELLO

__all__ = [
    "ConnectionLost",
    "Gap",
    "ServerError",
    "StreamClient",
    "wait_until",
]


class ConnectionLost(Exception):
    """The connection ended before the awaited reply arrived."""

    definitive = False  # True when the server refused us (trying again elsewhere is futile)


# Close codes that refuse the principal itself, on every worker alike.
_DEFINITIVE = frozenset({4001, 4003, 4010})


class ServerError(Exception):
    """The server answered a request with an ``error`` frame."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame
        self.code = str(frame.get("code"))


@dataclass(frozen=True, slots=True)
class Gap:
    """An event arrived on one connection with seq beyond cursor + 1."""

    matter: str
    expected: int
    got: int
    connection: int


async def wait_until(
    condition: Callable[[], bool], within: float, what: str, *, interval: float = 0.02
) -> None:
    """Poll ``condition`` until true; ``TimeoutError`` naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)  # reason: polling a condition with a deadline


@dataclass(slots=True)
class _Conn:
    """One websocket connection and what belongs only to it."""

    number: int
    url: str
    ws: ClientConnection
    hello: asyncio.Future[dict[str, Any]]
    reader: asyncio.Task[None] | None = None
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    subs: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    dropped: bool = False  # drop() already ended (or is ending) this connection


class StreamClient:
    """A resuming, deduplicating rtportal websocket client for tests."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        *,
        name: str = "client",
        origin: str | None = None,
        prefer: int = 0,
        max_queue: int = 16,
        rcvbuf: int | None = None,
        connect_timeout: float = 30.0,
        auto_reconnect: bool = False,
        cursors: CursorCodec | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one worker URL")
        self.urls = list(urls)
        self.token = token
        self.name = name
        self.origin = origin
        self.prefer = prefer % len(self.urls)
        self.max_queue = max_queue
        self.rcvbuf = rcvbuf
        self.connect_timeout = connect_timeout
        self.auto_reconnect = auto_reconnect  # reconnect + resume whenever a connection ends
        self._closing = False

        self.hello: dict[str, Any] | None = None
        # A contact gets tokens, never seqs (protocol v2): this harness holds the
        # servers' key (``cursors``) to keep its bookkeeping in seqs; the wire
        # carries tokens (``_wire``). Matter ids are learnt from the tokens.
        self.codec = cursors
        self._mids: dict[str, int] = {}
        self.cursors: dict[str, int] = {}  # matter -> last accepted seq
        self.heads: dict[str, int] = {}  # matter -> head from the last `subscribed`
        self.answers: dict[str, dict[str, Any]] = {}  # matter -> last subscribed/resync frame
        self.events: dict[str, list[dict[str, Any]]] = {}  # accepted, in seq order
        self._by_seq: dict[str, dict[int, Any]] = {}  # matter -> seq -> client_id
        self.duplicates = 0  # event frames dropped because seq <= cursor
        self.dup_mismatches: list[tuple[str, int]] = []  # a dup whose client_id differed
        self.gaps: list[Gap] = []
        self.strays: list[dict[str, Any]] = []  # events of matters not subscribed
        self.resyncs: list[dict[str, Any]] = []  # every resync frame (answers and live)
        self.history_pages = 0  # HTTP history pages read to recover from resyncs
        self.errors: list[dict[str, Any]] = []  # error frames nobody awaited
        self.close_codes: list[int | None] = []  # one per ended connection
        self.connects = 0
        self.urls_used: list[str] = []

        self._conn: _Conn | None = None
        self._lock = asyncio.Lock()
        self._reading = asyncio.Event()
        self._reading.set()
        self._counter = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed.is_set()

    @property
    def is_contact(self) -> bool:
        return self.hello is not None and self.hello.get("principal", {}).get("kind") == "contact"

    @property
    def connection_number(self) -> int:
        return self._conn.number if self._conn else 0

    @property
    def url(self) -> str | None:
        return self._conn.url if self._conn else None

    def seqs(self, matter: str) -> list[int]:
        return [int(e["seq"]) for e in self.events.get(matter, [])]

    def log(self, matter: str) -> list[tuple[int, str | None]]:
        """The accepted (seq, client_id) sequence of a matter."""
        return [(int(e["seq"]), e.get("client_id")) for e in self.events.get(matter, [])]

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    # ------------------------------------------------------------- connecting

    async def _open(self, url: str) -> ClientConnection:
        kwargs: dict[str, Any] = {}
        if self.rcvbuf is not None:
            # A tiny receive buffer set before connect disables autotuning, so
            # a paused reader backs up into the server within a few frames.
            parts = urlsplit(url)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(
                    sock, (parts.hostname or "127.0.0.1", parts.port or 80)
                )
            except OSError:
                sock.close()
                raise
            kwargs["sock"] = sock
        return await connect(
            url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            origin=None if self.origin is None else Origin(self.origin),
            compression=None,
            proxy=None,
            open_timeout=5,
            close_timeout=2,
            ping_interval=None,  # the test drives liveness; a paused reader must not time out
            max_size=None,
            max_queue=self.max_queue,
            **kwargs,
        )

    async def connect(self) -> dict[str, Any]:
        """Connect (trying the preferred URL first), await hello, resubscribe.

        Returns the ``hello`` frame. Safe to call concurrently: one caller
        connects, the others wait for it.
        """
        async with self._lock:
            if self._closing:
                raise ConnectionLost(f"{self.name}: closed by the test")
            if self.connected:
                assert self.hello is not None
                return self.hello
            deadline = time.monotonic() + self.connect_timeout
            attempt = 0
            while True:
                url = self.urls[(self.prefer + attempt) % len(self.urls)]
                attempt += 1
                try:
                    conn, hello = await self._open_with_hello(url)
                    break
                except (OSError, InvalidHandshake, TimeoutError, ConnectionLost) as exc:
                    if isinstance(exc, ConnectionLost) and exc.definitive:
                        raise  # the server said no (4001/4003/4010): another worker says the same
                    if time.monotonic() > deadline:
                        raise ConnectionLost(
                            f"{self.name}: no worker accepted within "
                            f"{self.connect_timeout}s: {exc!r}"
                        ) from exc
                    if attempt % len(self.urls) == 0:
                        await asyncio.sleep(0.1)  # reason: backoff before retrying every URL
            self.hello = hello
            if self.cursors:
                await self._settle(conn, await self._subscribe(conn, dict(self.cursors)))
            return hello

    async def _open_with_hello(self, url: str) -> tuple[_Conn, dict[str, Any]]:
        """One connection attempt: upgrade, start the reader, await ``hello``."""
        ws = await self._open(url)
        self.connects += 1
        self.urls_used.append(url)
        loop = asyncio.get_running_loop()
        conn = _Conn(number=self.connects, url=url, ws=ws, hello=loop.create_future())
        self._conn = conn
        conn.reader = asyncio.create_task(self._read(conn), name=f"{self.name}-reader")
        try:
            hello = await asyncio.wait_for(asyncio.shield(conn.hello), 10)
        except (ConnectionLost, TimeoutError) as exc:
            ws.transport.abort()
            await conn.closed.wait()
            lost = ConnectionLost(f"{self.name}: no hello from {url} (close {conn.close_code})")
            lost.definitive = conn.close_code in _DEFINITIVE
            raise lost from exc
        await ws.send(HELLO)  # the version this client speaks (docs/protocol.md)
        return conn, hello

    async def subscribe(self, matters: Sequence[str], after: int = 0) -> dict[str, dict[str, Any]]:
        """Subscribe to matters from ``after`` (their cursor from now on).

        Returns, per matter, the ``subscribed`` (or ``resync``) frame.
        """
        for m in matters:
            self.cursors.setdefault(m, after)
            self.events.setdefault(m, [])
            self._by_seq.setdefault(m, {})
        if not self.connected:
            await self.connect()  # subscribes every cursor, the new ones included
            return {m: self.answers[m] for m in matters}
        assert self._conn is not None
        conn = self._conn
        answers = await self._subscribe(conn, {m: self.cursors[m] for m in matters})
        await self._settle(conn, answers)
        return answers

    async def _subscribe(self, conn: _Conn, cursors: dict[str, int]) -> dict[str, dict[str, Any]]:
        rid = self._next_id("s")
        loop = asyncio.get_running_loop()
        futs = {m: loop.create_future() for m in cursors}
        for m, fut in futs.items():
            conn.subs[(rid, m)] = fut
        frame = {
            "type": "subscribe",
            "id": rid,
            "subs": [{"matter": m, "after": self._wire(m, a)} for m, a in cursors.items()],
        }
        await self._send_frame(conn, frame)
        out: dict[str, dict[str, Any]] = {}
        for m, fut in futs.items():
            try:
                out[m] = await asyncio.wait_for(asyncio.shield(fut), 15)
            except TimeoutError as exc:
                raise ConnectionLost(f"{self.name}: no answer to subscribe {m}") from exc
        self.answers.update(out)
        return out

    async def _resubscribe(self, conn: _Conn, matter: str) -> None:
        with contextlib.suppress(ConnectionLost, ServerError):
            answers = await self._subscribe(conn, {matter: self.cursors[matter]})
            await self._settle(conn, answers)

    async def _settle(self, conn: _Conn, answers: dict[str, dict[str, Any]]) -> None:
        """Recover every matter answered with ``resync``: page history, resubscribe."""
        for matter, answer in answers.items():
            for _ in range(5):  # the head may run ahead again while we page
                if answer.get("type") != "resync":
                    break
                await self.page_history(conn.url, matter)
                answer = (await self._subscribe(conn, {matter: self.cursors[matter]}))[matter]
            else:
                raise ConnectionLost(f"{self.name}: {matter} still resync after 5 rounds")

    async def page_history(self, ws_url: str, matter: str) -> int:
        """Read the matter's history after our cursor over HTTP (docs/api.md); returns count.

        What a real client does after ``resync``: the worker's HTTP API
        pages the log from the cursor (a decimal seq) until ``more`` is false.
        """
        parts = urlsplit(ws_url)
        base = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        headers = {"Authorization": f"Bearer {self.token}"}
        read = 0
        async with httpx.AsyncClient(base_url=base, headers=headers, trust_env=False) as http:
            after = self.cursors[matter]
            while True:
                r = await http.get(
                    f"/api/v1/matters/{matter}/events",
                    params={"after": self._wire(matter, after), "limit": 500},
                )
                if r.status_code != 200:
                    raise ConnectionLost(f"{self.name}: history {r.status_code}: {r.text[:200]}")
                page = r.json()
                for event in page["events"]:
                    self._accept(matter, {**event, "matter": matter}, 0)
                read += len(page["events"])
                self.history_pages += 1
                after = self._seq(matter, page["next"])
                # Contacts: the cursor moves past staff events they never see.
                self.cursors[matter] = max(self.cursors[matter], after)
                if not page["more"]:
                    return read

    async def _send_frame(self, conn: _Conn, frame: dict[str, Any]) -> None:
        try:
            await conn.ws.send(json.dumps(frame, separators=(",", ":")))
        except ConnectionClosed as exc:
            # Let the reader see the close first: a retry that found the
            # connection still "connected" would send again at once, never
            # yield to the reader, and spin (seen after kill -9 of a worker).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.closed.wait(), 5)
            raise ConnectionLost(f"{self.name}: connection closed while sending") from exc

    # ---------------------------------------------------------------- reading

    async def _read(self, conn: _Conn) -> None:
        try:
            while True:
                await self._reading.wait()
                raw = await conn.ws.recv()
                if isinstance(raw, bytes):
                    self.errors.append({"type": "client_saw_binary", "len": len(raw)})
                    continue
                try:
                    frame = json.loads(raw)
                except ValueError:
                    self.errors.append({"type": "client_saw_bad_json", "raw": raw[:200]})
                    continue
                self._dispatch(conn, frame)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a client bug must show up in the test, not vanish
            self.errors.append({"type": "client_reader_crashed", "error": repr(exc)})
            await conn.ws.close()
        finally:
            self._on_closed(conn)

    def _on_closed(self, conn: _Conn) -> None:
        code = conn.ws.close_code  # the received code; 1006 if none arrived
        conn.close_code = 1006 if code is None else int(code)
        self.close_codes.append(conn.close_code)
        lost = ConnectionLost(f"{self.name}: connection closed ({conn.close_code})")
        for fut in [conn.hello, *conn.pending.values(), *conn.subs.values()]:
            if not fut.done():
                fut.set_exception(lost)
                fut.exception()  # mark retrieved: nobody may be awaiting it any more
        conn.closed.set()
        self._changed.set()
        if self.auto_reconnect and not self._closing:
            self._spawn(self._reconnect())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self) -> None:
        while not self._closing and not self.connected:
            try:
                await self.connect()
            except ConnectionLost as exc:
                if exc.definitive:
                    self.errors.append({"type": "client_refused", "error": str(exc)})
                    return
                continue  # connect() already waited across every URL; try again
            except ServerError as exc:
                self.errors.append({"type": "client_resubscribe_failed", "frame": exc.frame})
                return

    def _dispatch(self, conn: _Conn, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "event":
            self._on_event(conn, frame)
        elif kind == "hello":
            if not conn.hello.done():
                conn.hello.set_result(frame)
        elif kind in ("subscribed", "resync"):
            matter = str(frame.get("matter"))
            if kind == "subscribed":
                self.heads[matter] = self._seq(matter, frame.get("head", 0))
            else:
                self.resyncs.append(frame)
            fut = conn.subs.pop((str(frame.get("id")), matter), None)
            if fut is None and kind == "resync":
                # A live resync ended the subscription: resubscribe from the
                # cursor (tests keep within backlog_limit; a real client
                # would page history over HTTP first when too far behind).
                self._spawn(self._resubscribe(conn, matter))
                return
            if fut is not None and not fut.done():
                fut.set_result(frame)
        elif kind == "error":
            fid = None if frame.get("id") is None else str(frame.get("id"))
            fut = conn.pending.pop(fid, None) if fid is not None else None
            if fut is None and fid is not None and "matter" in frame:
                # A subscribe entry refused: the error names the request id and matter.
                fut = conn.subs.pop((fid, str(frame["matter"])), None)
            if fut is None:
                self.errors.append(frame)
            elif not fut.done():
                fut.set_exception(ServerError(frame))
                fut.exception()  # the awaiting side re-raises it; none may be waiting
        else:
            fut = conn.pending.pop(str(frame.get("id")), None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
            elif kind not in ("pong", "unsubscribed", "ack"):
                self.errors.append({"type": "client_saw_unexpected", "frame": frame})

    def _on_event(self, conn: _Conn, frame: dict[str, Any]) -> None:
        self._accept(str(frame.get("matter")), frame, conn.number)

    def at(self, frame: dict[str, Any]) -> int:
        """The seq an ``ack`` or ``event`` names (a contact's: read from its token)."""
        matter = str(frame.get("matter"))
        return self._seq(matter, frame["seq"] if "seq" in frame else frame["cursor"])

    def _wire(self, matter: str, seq: int) -> int | str:
        """``seq`` as this principal sends it: a contact's is a token (0: the start)."""
        if not self.is_contact or seq == 0:
            return seq
        if self.codec is None:
            raise ConnectionLost(f"{self.name}: a contact's cursor needs the servers' key")
        return self.codec.position_token(self._mids[matter], seq)

    def _seq(self, matter: str, value: Any) -> int:
        """A cursor as received (a seq, or a contact's token) read back into the seq."""
        if not isinstance(value, str):
            return int(value)
        if self.codec is None:
            raise ConnectionLost(f"{self.name}: a contact's cursor needs the servers' key")
        mid, seq = self.codec.open(value)
        self._mids[matter] = mid
        return seq

    def _accept(self, matter: str, frame: dict[str, Any], source: int) -> None:
        """Accept one event (``source``: connection number, 0 for HTTP history)."""
        if "cursor" in frame:
            if "seq" in frame:
                self.errors.append({"type": "seq_and_cursor", "frame": frame})
            frame = {**frame, "seq": self._seq(matter, frame["cursor"])}
        seq = int(frame["seq"])
        cursor = self.cursors.get(matter)
        if cursor is None:
            self.strays.append(frame)
            return
        if seq <= cursor:
            self.duplicates += 1
            known = self._by_seq[matter]
            if seq in known and known[seq] != frame.get("client_id"):
                self.dup_mismatches.append((matter, seq))
            return
        if seq != cursor + 1 and not self.is_contact:
            # Contacts legitimately skip staff-audience seqs; anyone else may not.
            # Accepted anyway (the final log comparison shows what is missing).
            self.gaps.append(Gap(matter, cursor + 1, seq, source))
        self.cursors[matter] = seq
        self.events[matter].append(frame)
        self._by_seq[matter][seq] = frame.get("client_id")
        self._changed.set()

    # -------------------------------------------------------------- requests

    async def request(self, frame: dict[str, Any], within: float = 15.0) -> dict[str, Any]:
        """Send a frame with an ``id`` and await the reply with that id."""
        if not self.connected:
            await self.connect()
        conn = self._conn
        assert conn is not None
        rid = str(frame["id"])
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[rid] = fut
        await self._send_frame(conn, frame)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), within)
        except TimeoutError:
            conn.pending.pop(rid, None)
            raise

    async def send(
        self,
        matter: str,
        client_id: str,
        payload: dict[str, Any],
        *,
        kind: str = "message",
        audience: str = "portal",
        blob: bytes | None = None,
        within: float = 15.0,
    ) -> dict[str, Any]:
        """One ``send``; returns the ``ack`` (raises ConnectionLost / ServerError)."""
        frame = {
            "type": "send",
            "id": client_id,
            "matter": matter,
            "kind": kind,
            "audience": audience,
            "payload": payload,
            "blob": None if blob is None else base64.urlsafe_b64encode(blob).decode().rstrip("="),
        }
        return await self.request(frame, within)

    async def send_until_acked(
        self,
        matter: str,
        client_id: str,
        payload: dict[str, Any],
        *,
        deadline: float = 60.0,
        **kw: Any,
    ) -> tuple[dict[str, Any], int]:
        """Send, and on a lost connection reconnect and retry the same id.

        Returns (ack, attempts). Raises TimeoutError after ``deadline`` s.
        """
        end = time.monotonic() + deadline
        attempts = 0
        why: list[str] = []  # each failed attempt, for the failure message
        while True:
            attempts += 1
            try:
                ack = await self.send(matter, client_id, payload, **kw)
                return ack, attempts
            except (ConnectionLost, TimeoutError) as exc:
                why.append(f"{time.monotonic() - end + deadline:.1f}s {self.url}: {exc!r}")
                if self._closing:
                    raise
                if time.monotonic() > end:
                    raise TimeoutError(
                        f"{self.name}: {client_id} not acked in {deadline}s; attempts: {why}"
                    ) from None
                try:
                    await self.connect()
                except ConnectionLost as lost:
                    why.append(f"reconnect: {lost}")
                    await asyncio.sleep(0.1)  # reason: backoff between reconnect attempts

    async def ping(self, within: float = 10.0) -> dict[str, Any]:
        return await self.request({"type": "ping", "id": self._next_id("p")}, within)

    # ------------------------------------------------------ connection control

    def pause(self) -> None:
        """Stop reading frames: the websocket library then stops reading TCP."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    async def drop(self, *, abrupt: bool = True) -> bool:
        """End the current connection (abrupt: TCP abort, as a lost network would).

        True if this call ended a live connection; False if there was none
        (never connected, already closed, or being replaced).
        """
        conn = self._conn
        if conn is None or conn.closed.is_set() or conn.dropped:
            return False
        conn.dropped = True
        if abrupt:
            transport = conn.ws.transport
            transport.abort()
        else:
            await conn.ws.close()
        await asyncio.wait_for(conn.closed.wait(), 10)
        return True

    async def wait_closed(self, within: float) -> int | None:
        """Wait until the current connection ends; return its close code."""
        conn = self._conn
        assert conn is not None
        await asyncio.wait_for(conn.closed.wait(), within)
        return conn.close_code

    async def resume(self) -> None:
        """Reconnect (if needed) and resubscribe from the cursors."""
        await self.connect()

    async def caught_up(self, heads: dict[str, int], within: float) -> None:
        """Wait until the cursor of every matter reaches ``heads`` (reconnecting if dropped)."""
        deadline = time.monotonic() + within
        while not all(self.cursors.get(m, 0) >= h for m, h in heads.items()):
            if not self.connected:
                await self.connect()
            left = deadline - time.monotonic()
            if left <= 0:
                behind = {m: (self.cursors.get(m), h) for m, h in heads.items()}
                raise TimeoutError(f"{self.name} not caught up after {within}s: {behind}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def close(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is None:
            return
        if not conn.closed.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(), 5)
        for task in self._tasks:
            task.cancel()
        if conn.reader is not None:
            conn.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.reader
