"""uvicorn's httptools HTTP protocol with a header timeout (slow or silent clients).

uvicorn waits forever for a connection's first request: a client that
connects and sends nothing, or sends a request line and then headers a
byte at a time, holds a socket and its buffers for as long as it likes.
``HttpToolsProtocol`` gives every request ``settings.handshake_timeout``
seconds (default 10) from the connection (or from the first byte of a
later keep-alive request) until its headers are complete, and closes the
connection otherwise. A websocket upgrade is handed to the websocket
transport once its headers are complete; ``rtportal.ws.native`` then bounds
the rest of the opening handshake with the same timeout.

Run uvicorn with ``--http rtportal.http.uvicorn_http:HttpToolsProtocol``
(``rtportal serve`` and the Procfile do). Behind a reverse proxy the proxy
enforces its own header timeout too (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

from rtportal import logs
from rtportal.runtime import RUNTIME_KEY, Runtime
from rtportal.settings import DEFAULT_HANDSHAKE_TIMEOUT

__all__ = ["UVICORN_HTTP", "HttpToolsProtocol", "handshake_timeout"]

log = logging.getLogger("rtportal.http")

# What to pass as uvicorn's ``http`` (``--http``) option.
UVICORN_HTTP = "rtportal.http.uvicorn_http:HttpToolsProtocol"


def handshake_timeout(app_state: dict[str, Any]) -> float:
    """The worker's ``settings.handshake_timeout`` (the default before the lifespan ran)."""
    runtime = app_state.get(RUNTIME_KEY)
    if isinstance(runtime, Runtime):
        return runtime.settings.handshake_timeout
    return DEFAULT_HANDSHAKE_TIMEOUT


class HttpToolsProtocol(_Base):
    """uvicorn's ``HttpToolsProtocol`` plus the header timeout (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout = handshake_timeout(app_state)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a keep-alive connection's next request: its headers are timed too

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            client = self.client[0] if self.client else None
            logs.event(log, "handshake_timeout", logging.WARNING, transport="http", client=client)
            transport.abort()
