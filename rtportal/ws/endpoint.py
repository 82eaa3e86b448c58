"""The portable ASGI websocket endpoint (``Connection``), for any ASGI server.

A writer task drains the core's bounded outbox to the socket, so the hub's
``deliver`` never waits (an outbox beyond ``ws_send_queue`` frames or
``ws_send_buffer_max`` bytes closes with 4008; the writer holds at most one
batch taken from it besides), and a reader task feeds client frames to the
core. Production runs ``rtportal.ws.native`` on
uvicorn instead (no task per idle connection); both share
``rtportal.ws.core.ConnectionCore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketState

from rtportal import logs
from rtportal.access.sessions import sign_in, token_from_connection
from rtportal.closecodes import (
    CLOSE_INTERNAL,
    CLOSE_TOO_MANY_CONNECTIONS,
)
from rtportal.logs import new_id
from rtportal.principal import Principal
from rtportal.runtime import Runtime
from rtportal.ws.admission import admit, origin_refusal, refusal
from rtportal.ws.core import CLOSE_TIMEOUT, ConnectionCore
from rtportal.ws.protocol import Close

__all__ = ["Connection", "websocket_endpoint"]

log = logging.getLogger("rtportal.ws")
_WRITE_BATCH = 64


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # Accept, then close: browsers expose close codes to scripts but hide
    # the HTTP status of a refused upgrade (docs/protocol.md).
    await websocket.accept()
    await websocket.close(code, reason)


async def websocket_endpoint(websocket: WebSocket) -> None:
    """``/ws``: check Origin, authenticate, then run one ``Connection``."""
    # The same runtime rtportal.ws.native finds in the lifespan state.
    runtime: Runtime = websocket.app.state.runtime
    conn_id = new_id("c")
    client = websocket.client.host if websocket.client else None
    refused = origin_refusal(
        websocket.headers.get("origin"), runtime.settings.allowed_origins, conn_id, client
    )
    if refused is not None:
        await _refuse(websocket, refused.code, refused.reason)
        return
    try:
        token = token_from_connection(websocket, runtime.settings)
        closes = runtime.hub.closes_total()  # see ConnectionCore.registered
        principal = await sign_in(runtime.db, runtime.settings.secret_key, token)
    except Exception as exc:
        close = refusal(exc, conn_id, client)
        await _refuse(websocket, close.code, close.reason)
        return
    if not admit(runtime.limits, principal, conn_id, client):
        await _refuse(websocket, CLOSE_TOO_MANY_CONNECTIONS, "too_many_connections")
        return
    try:
        await websocket.accept()
        await Connection(websocket, principal, runtime, conn_id).run(token, closes)
    finally:
        runtime.limits.disconnect(principal)


class Connection(ConnectionCore):
    """The portable ASGI transport: a reader task and a writer task per connection.

    Runs under any ASGI server (Starlette's TestClient included). Production
    runs ``rtportal.ws.native`` on uvicorn instead, which needs no task per
    idle connection; both execute the same core (``ConnectionCore``).
    """

    __slots__ = ("_client_gone", "_closing", "_room", "_wake", "websocket")

    def __init__(
        self, websocket: WebSocket, principal: Principal, runtime: Runtime, conn_id: str
    ) -> None:
        super().__init__(principal, runtime, conn_id)
        self.websocket = websocket
        self._wake: asyncio.Future[None] | None = None  # the idle writer waits on it
        self._closing: asyncio.Future[None] | None = None  # resolved by a Close action
        self._client_gone = False
        # The reader waits on it while max_in_flight requests are executing.
        self._room: asyncio.Future[None] | None = None

    def _in_flight_changed(self) -> None:
        room = self._room
        if room is None or room.done():
            return
        if self.in_flight < self.proto.limits.max_in_flight:
            room.set_result(None)

    def _frames_ready(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _close_requested(self, close: Close) -> None:
        closing = self._closing
        if closing is not None and not closing.done():
            closing.set_result(None)

    # --- running ----------------------------------------------------------------

    async def run(self, token: str | None, closes: int) -> None:
        """Serve until closed; ``token`` and ``closes`` as in ``registered``."""
        closing = self._closing = asyncio.get_running_loop().create_future()
        if self._close is not None:
            closing.set_result(None)
        self.hub.register(self)  # reachable by close_principal before any join
        self.registered(token, closes)
        reader = asyncio.create_task(self._reader(), name="ws-reader")
        writer = asyncio.create_task(self._writer(), name="ws-writer")
        try:
            self.feed(self.proto.connected())
            await asyncio.wait({reader, writer, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = (reader, writer, *self.cancel_tasks())
            reader.cancel()
            writer.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._finish()

    async def _finish(self) -> None:
        await self.leave_all()
        close = self._close
        logs.event(
            log,
            "ws_closed",
            conn=self.conn_id,
            principal=self.principal_label,
            code=close.code if close is not None else None,
            reason=close.reason if close is not None else "",
            by="server" if close is not None else "client",
        )
        if self._client_gone or self.websocket.client_state == WebSocketState.DISCONNECTED:
            return
        close = self._close or Close(1000, "")
        with contextlib.suppress(Exception):
            # A client that stopped reading may never take the close frame (nor
            # the answers the core still holds, written first).
            await asyncio.wait_for(self._send_rest_and_close(close), CLOSE_TIMEOUT)

    async def _send_rest_and_close(self, close: Close) -> None:
        for text in self.proto.take_frames(1 << 30):
            await self.websocket.send_text(text)
        await self.websocket.close(close.code, close.reason)

    async def _reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Back-pressure, as on the native transport: at max_in_flight
            # requests executing, the next frame is not read until one ends.
            while self.in_flight >= self.proto.limits.max_in_flight:
                room = self._room = loop.create_future()
                await room
            try:
                message = await self.websocket.receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The socket went away under us (uvicorn raises on a dead connection).
                self._client_gone = True
                return
            if message["type"] == "websocket.disconnect":
                self._client_gone = True
                return
            try:
                text = message.get("text")
                if text is not None:
                    self.feed(self.proto.receive_text(text))
                else:
                    self.feed(self.proto.receive_bytes(message.get("bytes") or b""))
            except Exception:
                # A bug here must still close with a code, never a bare drop.
                log.exception("websocket frame handling failed")
                self.feed(self.proto.close(CLOSE_INTERNAL, "internal error"))
                self._close = self._close or Close(CLOSE_INTERNAL, "internal error")
                return

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        send = self.websocket.send_text
        take = self.proto.take_frames
        try:
            while True:
                frames = take(_WRITE_BATCH)
                if not frames:
                    # Idle: wait for _feed to queue something. No await between
                    # the empty check and parking, so no frame can be missed.
                    wake = self._wake = loop.create_future()
                    await wake
                    continue
                for text in frames:
                    await send(text)
                self.writable()
        except asyncio.CancelledError:
            raise
        except Exception:
            self._client_gone = True
