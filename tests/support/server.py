"""A real uvicorn server running an rtportal app inside the test process.

Tests of the websocket endpoint need real sockets (HTTP upgrade, close
codes, back-pressure) but not a separate process: ``running_server`` runs
``uvicorn.Server`` as an asyncio task on a socket bound to a free port,
waits until it serves, and shuts it down properly (graceful, then forced)
when the block exits. The app's lifespan (migrations, db, broker, hub)
runs inside uvicorn, exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from rtportal.http.uvicorn_http import UVICORN_HTTP
from rtportal.ws.native import UVICORN_WS

__all__ = ["RunningServer", "running_server"]


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the test runner's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningServer:
    app: Starlette
    host: str
    port: int
    server: uvicorn.Server

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def origin(self) -> str:
        """An Origin header value the default test settings allow."""
        return "http://127.0.0.1:8000"


@contextlib.asynccontextmanager
async def running_server(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 20.0,
    **config: Any,
) -> AsyncIterator[RunningServer]:
    """Serve ``app`` on a free port for the duration of the block.

    Extra keyword arguments go to ``uvicorn.Config`` (defaults: rtportal's native
    websocket transport and header-timed HTTP protocol, no per-message deflate,
    ``ws_max_size`` from the app's settings when present, lifespan on,
    warnings only).
    """
    settings = getattr(app.state, "settings", None)
    options: dict[str, Any] = {
        "lifespan": "on",
        "log_level": "warning",
        "ws": UVICORN_WS,  # as in the Procfile
        "http": UVICORN_HTTP,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
    }
    if settings is not None:
        options["ws_max_size"] = settings.ws_max_frame_bytes
    options.update(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # 0: a free port
    port = int(sock.getsockname()[1])
    server = _QuietServer(uvicorn.Config(app, host=host, port=port, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{port}")
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if task.done():
                # Startup failed (e.g. the lifespan raised): surface the cause.
                exc = task.exception()
                raise RuntimeError(f"uvicorn did not start on port {port}") from exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {startup_timeout}s")
            await asyncio.sleep(0.01)  # reason: uvicorn exposes no startup event to await
        yield RunningServer(app=app, host=host, port=port, server=server)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            server.force_exit = True
            try:
                await asyncio.wait_for(task, timeout=5)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        except Exception:
            pass
        sock.close()
