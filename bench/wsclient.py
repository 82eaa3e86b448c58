"""A lean websocket client: websockets' sans-I/O protocol on an asyncio Protocol.

Why not ``websockets.asyncio.client``: the load generator must not be the
bottleneck, and on a 2-core machine every microsecond the client spends per
received frame is taken from the server under test. Driving the sans-I/O
``ClientProtocol`` straight from ``data_received`` skips the per-connection
reader task, the message queue and the assembler: a received text frame costs
one parse and one callback. From the end of the handshake's response on,
server frames are parsed here (``_fast``): a server's frames are unmasked, and the servers
measured send each text message as one frame, so the header is a few bytes
to read, where websockets' generator-based reader costs several times the
server's own per-delivery work. Anything else (a fragmented message, a close)
goes back to websockets' reader for the rest of the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["WSClient", "open_ws"]


class WSClient(asyncio.Protocol):
    """One websocket connection; ``on_text`` is called for every text frame."""

    def __init__(
        self,
        uri: str,
        headers: Mapping[str, str],
        on_text: Callable[[WSClient, str], None],
        on_close: Callable[[WSClient, int | None], None],
        tag: object = None,
    ) -> None:
        self.proto = ClientProtocol(parse_uri(uri), max_size=2**22)
        self.headers = headers
        self.on_text = on_text
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.close_code: int | None = None
        self.tag = tag  # the owner's per-connection state (set before any frame arrives)
        self.fast = False  # frames parsed here (after the handshake; see the module docstring)
        self.buffer = bytearray()
        self.done_fast = False  # handed back to websockets for good (``_slow``)
        self.head_tail = b""  # the handshake's last bytes: its end may span two reads

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        self.transport = cast(asyncio.Transport, transport)
        request = self.proto.connect()
        for name, value in self.headers.items():
            request.headers[name] = value
        self.proto.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.fast:
            self._fast(data)
            return
        rest = b""
        if not self.opened.done():
            # Websockets gets the handshake's bytes only, up to the blank line that
            # ends the response: whatever follows is frames, parsed here from the
            # first (websockets' reader, once fed a frame's first bytes, may be in
            # the middle of it with an empty buffer: no safe point to take over).
            seen = self.head_tail + data
            end = seen.find(b"\r\n\r\n")
            if end >= 0:
                cut = end + 4 - len(self.head_tail)
                data, rest = data[:cut], data[cut:]
            self.head_tail = seen[-3:]
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Response):
                if self.proto.handshake_exc is not None:
                    if not self.opened.done():
                        self.opened.set_exception(self.proto.handshake_exc)
                elif not self.opened.done():
                    self.opened.set_result(None)
                continue
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.TEXT:
                self.on_text(self, bytes(event.data).decode())
            elif event.opcode is Opcode.CLOSE:
                rcvd = self.proto.close_rcvd
                self.close_code = rcvd.code if rcvd is not None else None
        self._flush()
        opened = self.opened
        if self.done_fast or not opened.done():
            return  # websockets reads on, or the response is not complete yet
        if not opened.cancelled() and opened.exception() is None and self.proto.state is State.OPEN:
            self.fast = True  # open: every frame from here on is parsed here
            self._fast(rest)
        elif rest:  # refused, or closing already: websockets reads on
            self.done_fast = True
            self.data_received(rest)

    def _fast(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:  # a masked server frame: websockets' reader refuses it
                self._slow(pos)
                return
            size, head = b1 & 0x7F, 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if end - pos < head + size:
                break  # the rest of the frame is still on its way
            first, last = pos + head, pos + head + size
            if b0 == 0x81:  # FIN, text: one whole message
                self.on_text(self, buf[first:last].decode())
            elif b0 == 0x89:  # FIN, ping: answered at once
                self.proto.send_pong(bytes(buf[first:last]))
                self._flush()
            elif b0 != 0x8A:  # not a pong either (a close, a fragment): websockets
                self._slow(pos)
                return
            pos = last
        del buf[:pos]

    def _slow(self, pos: int) -> None:
        """Back to websockets' reader, from the frame at ``pos`` on, for good."""
        rest = bytes(self.buffer[pos:])
        self.buffer.clear()
        self.fast = False
        self.done_fast = True
        self.data_received(rest)

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed:
            self.closed = True
            self.on_close(self, self.close_code)

    # sending ------------------------------------------------------------------------
    def send_text(self, text: str) -> bool:
        """Queue a text frame; False if the connection is closing (nothing sent)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        if self.proto.state is not State.OPEN:  # e.g. the server's close frame arrived
            return False
        self.proto.send_text(text.encode())
        self._flush()
        return True

    def close(self) -> None:
        if self.transport is None or self.closed:
            return
        try:
            self.proto.send_close(1000)
            self._flush()
        except Exception:  # already closing: just drop the socket
            pass
        self.transport.close()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()


async def open_ws(
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str],
    on_text: Callable[[WSClient, str], None],
    on_close: Callable[[WSClient, int | None], None],
    tag: object = None,
    open_timeout: float = 30.0,
) -> WSClient:
    """Connect and finish the opening handshake (raises on refusal or timeout)."""
    loop = asyncio.get_running_loop()
    uri = f"ws://{host}:{port}{path}"
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(uri, headers, on_text, on_close, tag), host, port),
        open_timeout,
    )
    await asyncio.wait_for(client.opened, open_timeout)
    return client
