"""Per-worker state of the native transport: frame bytes built once, one flush per loop turn.

Lives in uvicorn's ``app_state`` (``rtportal.ws.native`` creates it on the
first connection of a worker), shared by every connection of that worker.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Protocol

from rtportal.ws.handshake import trusted_proxies

__all__ = ["Flushable", "FrameBytes", "Shared"]


class Flushable(Protocol):
    def flush_frames(self) -> None: ...


class FrameBytes:
    """Text frame bytes per frame text, shared by every connection of a worker.

    Keyed by the identity of the text: the core's ``FrameCache`` hands the
    same ``str`` object to every viewer of one class, so a fan-out to 1,000
    members frames (and UTF-8 encodes) the event once. The entry keeps the
    text alive, so its id cannot be reused while it is cached.
    """

    __slots__ = ("_bytes", "_memo")
    _SIZE = 64
    _MAX_BYTES = 8 * 1024 * 1024  # framed bytes kept, besides the entry count

    def __init__(self) -> None:
        self._memo: dict[int, tuple[str, bytes]] = {}
        self._bytes = 0

    def __call__(self, text: str) -> bytes:
        entry = self._memo.get(id(text))
        if entry is not None and entry[0] is text:
            return entry[1]
        data = text.encode()
        n = len(data)
        if n < 126:
            frame = bytes((0x81, n)) + data
        elif n < 65536:
            frame = struct.pack("!BBH", 0x81, 126, n) + data
        else:
            frame = struct.pack("!BBQ", 0x81, 127, n) + data
        if len(self._memo) >= self._SIZE or self._bytes > self._MAX_BYTES:
            self._memo.clear()  # bounded; a miss only costs one encode
            self._bytes = 0
        self._memo[id(text)] = (text, frame)
        self._bytes += len(frame)
        return frame


class Shared:
    """Per-worker state of the native transport (in uvicorn's ``app_state``)."""

    __slots__ = ("connections", "dirty", "flush_scheduled", "frame_bytes", "proxies", "sweeping")

    def __init__(self, config: Any) -> None:
        self.proxies = trusted_proxies(config)
        self.frame_bytes = FrameBytes()
        self.connections: set[Any] = set()  # the worker's WebSocketProtocols (keepalive sweep)
        self.sweeping = False
        self.dirty: list[Flushable] = []  # frames waiting for the flush
        self.flush_scheduled = False

    def write_soon(self, ws: Flushable) -> None:
        """Write ``ws``'s frames at the end of this loop iteration, with
        whatever else it is sent meanwhile: a sender's ack and the event it
        made go out in one write (one syscall), as do the events of one
        group commit to one connection."""
        self.dirty.append(ws)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        dirty, self.dirty = self.dirty, []
        for ws in dirty:
            ws.flush_frames()
