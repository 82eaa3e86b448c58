"""rtportal's websocket transport for uvicorn: no task, no queue per idle connection.

Run uvicorn with ``--ws rtportal.ws.native:WebSocketProtocol`` (the Procfile,
``rtportal serve`` and the benchmark do). uvicorn hands every websocket
upgrade to this ``asyncio.Protocol``, which drives ``websockets``' sans-I/O
``ServerProtocol`` from the transport's callbacks and executes rtportal's
protocol core (``ConnectionCore``, the same as the portable ASGI endpoint):

* **No task per connection.** A frame from the client is parsed in
  ``data_received`` and fed to the core; only requests that need the
  database (authenticate, subscribe, backlog, send) run as short tasks.
  An idle connection is a transport, a parser and the core's state.
* **Fan-out writes straight to the socket.** Server frames are not masked,
  so an event frame is framed once per viewer class
  (``rtportal.ws.nativeshared``) and written with one ``transport.write``.
* **Overflow policy: close, never buffer without bound.** Before frames are
  written, the transport's unsent bytes plus the frames are compared with
  ``settings.ws_send_buffer_max``: beyond it the frames are not written and
  the connection is closed with 4008 "slow consumer"; it resumes from its
  cursor (docs/protocol.md).
* **Backlog pacing.** The transport's high-water mark is
  ``settings.ws_backlog_low_water``: while it is paused (``pause_writing``)
  no backlog page is read for the connection, so a client that does not
  read holds about one page, not the log.
* **Keepalive without a timer per connection.** One sweep per worker every
  ``--ws-ping-interval`` s pings the connections silent since the last one
  and closes (1011) those still silent after ``--ws-ping-timeout``.
* **Handshake timeout.** An upgrade not answered within
  ``settings.handshake_timeout`` seconds (the token check stalled) is
  dropped; ``rtportal.http.uvicorn_http`` bounds the request headers before it.
* **Back-pressure on input.** A connection with ``max_in_flight`` requests
  being executed stops being read until one finishes.

The runtime (database, hub, committer) comes from the app's lifespan state
(``rtportal.runtime.RUNTIME_KEY``): this module is not a route, so it only
serves ``/ws``; every other websocket path gets 404.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from rtportal import logs
from rtportal.access.sessions import is_secure, sign_in, token_from_headers
from rtportal.closecodes import (
    CLOSE_INTERNAL,
    CLOSE_RESTART,
    CLOSE_SLOW,
    CLOSE_TOO_MANY_CONNECTIONS,
    reason,
)
from rtportal.logs import new_id
from rtportal.principal import Principal
from rtportal.runtime import RUNTIME_KEY, Runtime
from rtportal.settings import DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_WS_BACKLOG_LOW_WATER
from rtportal.ws.admission import admit, origin_refusal, refusal
from rtportal.ws.core import CLOSE_TIMEOUT, ConnectionCore, backlog_low_water
from rtportal.ws.handshake import RepeatedHeader, closer, single_header
from rtportal.ws.nativeshared import Shared
from rtportal.ws.protocol import Close

__all__ = ["UVICORN_WS", "WS_PATH", "NativeConnection", "WebSocketProtocol"]

log = logging.getLogger("rtportal.ws")

WS_PATH = "/ws"
# What to pass as uvicorn's ``ws`` (``--ws``) option.
UVICORN_WS = "rtportal.ws.native:WebSocketProtocol"
# Frames waiting in a connection's outbox beyond which they are written at
# once rather than at the end of the loop iteration (bounds what a burst,
# e.g. backlog pages of several matters, accumulates before the flush).
_WRITE_NOW = 64
_SHARED_KEY = "rtportal.ws.native"  # per-worker state in uvicorn's app_state


class NativeConnection(ConnectionCore):
    """The protocol core of one accepted websocket, writing through its ``WebSocketProtocol``."""

    __slots__ = ("_owner",)

    def __init__(self, owner: WebSocketProtocol, principal: Principal, runtime: Runtime) -> None:
        super().__init__(principal, runtime, owner.conn_id)
        self._owner = owner

    def _frames_ready(self) -> None:
        owner = self._owner
        if self.proto.queued >= _WRITE_NOW:
            owner.write_frames(self.proto.take_frames(1 << 30))  # a burst: no waiting
        elif not owner.flush_pending:
            owner.flush_pending = True
            owner.shared.write_soon(owner)

    def _close_requested(self, close: Close) -> None:
        if self.proto.queued:  # what was sent before the close goes first
            self._owner.write_frames(self.proto.take_frames(1 << 30))
        self._owner.close_with(close.code, close.reason)

    def _in_flight_changed(self) -> None:
        if self.in_flight >= self.proto.limits.max_in_flight:
            self._owner.pause_input()
        else:
            self._owner.resume_input()

    def _backlogged(self) -> bool:
        # Queued frames go to the transport first: its flow control then
        # says whether more than the low-water mark is unsent.
        owner = self._owner
        owner.flush_frames()
        return owner.write_paused


class WebSocketProtocol(asyncio.Protocol):
    """One websocket connection on uvicorn (see the module docstring)."""

    __slots__ = (
        "_app_state",
        "_close_timer",
        "_config",
        "_conn",
        "_fragments",
        "_handshake_timer",
        "_heard",
        "_held",
        "_low_water",
        "_pending_text",
        "_pinged",
        "_read_paused",
        "_server_state",
        "_shared",
        "_transport",
        "_ws",
        "conn_id",
        "flush_pending",
        "write_paused",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        shared = app_state.get(_SHARED_KEY)
        if not isinstance(shared, Shared):
            shared = app_state[_SHARED_KEY] = Shared(config)
        self._shared: Shared = shared
        self.conn_id = new_id("c")  # ties this connection's log lines together
        self.flush_pending = False  # in the shared dirty list
        runtime = app_state.get(RUNTIME_KEY)
        max_size = (
            runtime.settings.ws_max_frame_bytes
            if isinstance(runtime, Runtime)
            else config.ws_max_size
        )
        self._ws = ServerProtocol(max_size=max_size, logger=log)
        self._low_water = (
            backlog_low_water(runtime.settings)
            if isinstance(runtime, Runtime)
            else DEFAULT_WS_BACKLOG_LOW_WATER
        )
        self.write_paused = False  # the transport holds more than _low_water unsent bytes
        self._transport: asyncio.Transport | None = None
        self._conn: NativeConnection | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] | None = None  # a fragmented message being assembled
        self._pending_text = True  # ... and whether it is text
        self._heard = True  # data arrived since the last keepalive sweep
        self._pinged = False
        self._read_paused = False
        # Events parsed from the last read but not handled because input was
        # paused meanwhile (a list made only then: idle connections carry None).
        self._held: list[Any] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        # Flow control at the low-water mark: pause_writing/resume_writing pace backlog reads.
        self._transport.set_write_buffer_limits(high=self._low_water, low=self._low_water // 2)
        self._server_state.connections.add(self)
        self._shared.connections.add(self)
        self._start_keepalive()
        # The upgrade must be answered in time (a stalled token check holds a socket).
        runtime = self._app_state.get(RUNTIME_KEY)
        timeout = (
            runtime.settings.handshake_timeout
            if isinstance(runtime, Runtime)
            else DEFAULT_HANDSHAKE_TIMEOUT
        )
        self._handshake_timer = asyncio.get_running_loop().call_later(
            timeout, self._handshake_expired
        )

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._conn is not None:
            self._conn.writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self._log_closed()
        self._server_state.connections.discard(self)
        self._shared.connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._handshake_done()
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.limits.disconnect(conn.principal)
            # Leaving the hub awaits (the last listener of a matter unsubscribes).
            self._track(asyncio.get_running_loop().create_task(conn.finish()))

    def data_received(self, data: bytes) -> None:
        try:
            ws = self._ws
            ws.receive_data(data)
            self._heard = True
            events = ws.events_received()
            self._flush()
            if self._held is not None:
                self._held.extend(events)  # behind what is already waiting
            else:
                self._handle(events)
            if ws.parser_exc is not None:
                self._on_parse_error()
        except Exception:
            # A bug must not leave a half-open connection behind.
            log.exception("websocket input handling failed")
            if self._transport is not None:
                self._transport.abort()

    def _handle(self, events: list[Any]) -> None:
        """Handle parsed events in order; stop when input gets paused, holding the rest.

        One read can carry many frames: pausing the transport stops the next
        read, not the frames already parsed, so those wait here until
        ``resume_input`` (the protocol's in-flight limit is never hit by a
        client that merely pipelines).
        """
        for i, event in enumerate(events):
            if self._read_paused:
                self._held = events[i:]
                return
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Request):
                self._on_request(event)

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    # --- uvicorn ---------------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn is stopping: 1012, the client reconnects to another worker."""
        if self._ws.state is State.OPEN and self._conn is not None:
            self._conn.close(CLOSE_RESTART)  # through the core: queued answers go first
        elif self._ws.state is State.OPEN:
            self.close_with(CLOSE_RESTART, reason(CLOSE_RESTART))
        elif self._transport is not None:
            self._transport.close()

    # --- writing ---------------------------------------------------------------------

    @property
    def shared(self) -> Shared:
        return self._shared

    def flush_frames(self) -> None:
        """The end-of-iteration flush (``Shared.write_soon``)."""
        self.flush_pending = False
        conn = self._conn
        if conn is not None and conn.proto.queued:
            self.write_frames(conn.proto.take_frames(1 << 30))

    def write_frames(self, texts: list[str]) -> None:
        transport = self._transport
        if transport is None or self._ws.state is not State.OPEN or transport.is_closing():
            return
        framed = self._shared.frame_bytes
        data = framed(texts[0]) if len(texts) == 1 else b"".join([framed(t) for t in texts])
        conn = self._conn
        unsent = transport.get_write_buffer_size()
        if unsent and conn is not None and unsent + len(data) > conn.settings.ws_send_buffer_max:
            # Named overflow policy, checked before writing: close the slow
            # consumer (these frames are not sent); it resumes from its cursor.
            # (With nothing unsent the frames go: the outbox they come from
            # is bounded by the same limit.)
            conn.close(CLOSE_SLOW)
            return
        transport.write(data)

    def close_with(self, code: int, reason: str) -> None:
        ws = self._ws
        if ws.state is not State.OPEN:
            return
        ws.send_close(code, reason)
        self._flush()
        if self._close_timer is None and self._transport is not None:
            # A client that stopped reading may never answer: drop it after a while.
            loop = asyncio.get_running_loop()
            self._close_timer = loop.call_later(CLOSE_TIMEOUT, self._transport.abort)

    def pause_input(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def resume_input(self) -> None:
        if self._read_paused and self._transport is not None and not self._transport.is_closing():
            self._read_paused = False
            held, self._held = self._held, None
            if held:
                self._handle(held)  # may pause again, holding what is left
            if not self._read_paused:
                self._transport.resume_reading()

    def _flush(self) -> None:
        """Write what websockets queued (handshake, pongs, close); close TCP on its EOF."""
        transport = self._transport
        if transport is None:
            return
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            else:  # websockets' SEND_EOF: the server ends the TCP connection
                transport.close()

    # --- frames from the client -------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._on_message(opcode is Opcode.TEXT, bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
                self._pending_text = opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:
            if self._fragments is not None:  # websockets rejects a stray CONT itself
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    data = b"".join(self._fragments)
                    self._fragments = None
                    self._on_message(self._pending_text, data)
        elif opcode is Opcode.PONG:
            self._pinged = False
        elif opcode is Opcode.CLOSE:
            conn = self._conn
            if conn is not None:
                conn.proto.close(1000, "")  # stop producing frames; the reply is queued

    def _on_message(self, is_text: bool, data: bytes) -> None:
        conn = self._conn
        if conn is None or self._ws.state is not State.OPEN:
            return  # before authentication completes, or while closing: ignored
        try:
            if is_text:
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    self._ws.fail(1007, "invalid UTF-8")
                    self._flush()
                    return
                conn.feed(conn.proto.receive_text(text))
            else:
                conn.feed(conn.proto.receive_bytes(data))
        except Exception:
            # A bug here must still close with a code, never a bare drop.
            log.exception("websocket frame handling failed")
            conn.feed(conn.proto.close(CLOSE_INTERNAL, "internal error"))

    def _on_parse_error(self) -> None:
        # websockets queued the close frame (1002 protocol error, 1009 too big...).
        self._flush()
        if self._ws.close_expected() and self._transport is not None:
            if self._close_timer is None:
                loop = asyncio.get_running_loop()
                self._close_timer = loop.call_later(CLOSE_TIMEOUT, self._transport.abort)

    # --- the opening handshake --------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        ws = self._ws
        path = request.path.partition("?")[0]
        if path != self._config.root_path + WS_PATH:
            self._respond(ws.reject(404, "Not Found\n"))
            return
        response = ws.accept(request)
        if response.status_code != 101:
            self._respond(response)  # a malformed upgrade: websockets explains it
            return
        runtime = self._app_state.get(RUNTIME_KEY)
        if not isinstance(runtime, Runtime):
            # The lifespan has not run (or was turned off): nothing to serve.
            self._respond(ws.reject(503, "Service Unavailable\n"))
            return
        headers = request.headers
        # accept() above already refused (400) a request with two Origin headers.
        refused = origin_refusal(
            headers.get("Origin"), runtime.settings.allowed_origins, self.conn_id, self._client()
        )
        if refused is not None:
            self._refuse(response, refused.code, refused.reason)
            return
        cookie = "; ".join(headers.get_all("Cookie"))
        try:
            token = token_from_headers(
                single_header(headers, "Authorization"),
                cookie or None,
                secure=is_secure(runtime.settings, self._scheme(headers)),
            )
        except RepeatedHeader:
            token = None  # ambiguous credentials authenticate nobody
        # Nothing is read until the token is checked: a client may not send
        # frames before the 101 anyway (RFC 6455 4.1), and none is lost.
        self.pause_input()
        self._track(
            asyncio.get_running_loop().create_task(self._authenticate(runtime, response, token))
        )

    async def _authenticate(self, runtime: Runtime, response: Response, token: str | None) -> None:
        closes = runtime.hub.closes_total()  # see ConnectionCore.registered
        try:
            principal = await sign_in(runtime.db, runtime.settings.secret_key, token)
        except Exception as exc:
            close = refusal(exc, self.conn_id, self._client())
            self._refuse(response, close.code, close.reason)
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return  # the client left while we were checking its token
        if not admit(runtime.limits, principal, self.conn_id, self._client()):
            self._refuse(response, CLOSE_TOO_MANY_CONNECTIONS, "too_many_connections")
            return
        self._handshake_done()
        self._ws.send_response(response)
        self._flush()
        # Counted by limits.connect above; connection_lost uncounts it.
        conn = self._conn = NativeConnection(self, principal, runtime)
        runtime.hub.register(conn)  # reachable by close_principal before any join
        conn.registered(token, closes)
        conn.feed(conn.proto.connected())
        self.resume_input()

    def _scheme(self, headers: Headers) -> str:
        """``wss`` over TLS or when a trusted proxy says so (``X-Forwarded-Proto``),
        else ``ws``: the rule uvicorn applies to an HTTP request's scheme."""
        transport = self._transport
        tls = transport is not None and transport.get_extra_info("sslcontext") is not None
        scheme = "wss" if tls else "ws"
        proxies = self._shared.proxies
        if proxies is not None and proxies(self._client()):
            forwarded = headers.get_all("X-Forwarded-Proto")
            if forwarded and forwarded[-1].strip() in {"http", "https", "ws", "wss"}:
                scheme = forwarded[-1].strip().replace("http", "ws")
        return scheme

    def _client(self) -> str | None:
        peer = self._transport.get_extra_info("peername") if self._transport else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else None

    def _log_closed(self) -> None:
        """One ``ws_closed`` line per upgraded connection: who closed, with which code."""
        ws = self._ws
        if ws.state is State.CONNECTING:
            return  # never upgraded (refused over HTTP, dropped): not a websocket close
        sent, received = ws.close_sent, ws.close_rcvd
        conn = self._conn
        logs.event(
            log,
            "ws_closed",
            conn=self.conn_id,
            principal=conn.principal_label if conn is not None else None,
            code=sent.code if sent else (received.code if received else 1006),
            reason=sent.reason if sent else (received.reason if received else ""),
            by=closer(ws),
        )

    def _handshake_done(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _handshake_expired(self) -> None:
        """The upgrade was not answered within ``settings.handshake_timeout``: dropped."""
        self._handshake_timer = None
        if self._ws.state is State.CONNECTING and self._transport is not None:
            logs.event(
                log, "handshake_timeout", logging.WARNING, conn=self.conn_id, client=self._client()
            )
            self._transport.abort()

    def _respond(self, response: Response) -> None:
        """Refuse the upgrade with an HTTP response (no websocket was opened)."""
        self._handshake_done()
        self._ws.send_response(response)
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def _refuse(self, response: Response, code: int, reason: str) -> None:
        # Accept, then close: browsers expose close codes to scripts but hide
        # the HTTP status of a refused upgrade (docs/protocol.md).
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._handshake_done()
        self._ws.send_response(response)
        self._flush()
        self.close_with(code, reason)
        self.resume_input()  # to read the client's answering close frame

    # --- keepalive -------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        shared = self._shared
        interval = self._config.ws_ping_interval
        if shared.sweeping or not interval or interval <= 0:
            return
        shared.sweeping = True
        timeout = self._config.ws_ping_timeout
        loop = asyncio.get_running_loop()

        def sweep() -> None:
            # One timer per worker, not per connection; a chain of call_later
            # (no task) so a stopping loop simply drops it.
            now = loop.time()
            for proto in list(shared.connections):
                proto._keepalive(now, timeout)
            if shared.connections:
                loop.call_later(interval, sweep)
            else:
                shared.sweeping = False

        loop.call_later(interval, sweep)

    def _keepalive(self, now: float, timeout: float | None) -> None:
        ws = self._ws
        if ws.state is not State.OPEN or self._transport is None:
            return
        if self._heard:
            self._heard = False
            self._pinged = False
            return
        if not self._pinged:
            self._pinged = True
            ws.send_ping(b"")
            self._flush()
            return
        if timeout is not None and not self._read_paused:
            # Pinged a sweep ago and nothing came back, not even the pong.
            # (Not while we ourselves stopped reading: the pong may be waiting.)
            ws.fail(CLOSE_INTERNAL, "keepalive ping timeout")
            self._flush()
            self._transport.abort()

    # --- tasks ------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[None]) -> None:
        """uvicorn waits for these tasks at shutdown (and the loop keeps only weak refs)."""
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
