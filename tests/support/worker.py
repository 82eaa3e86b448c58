"""One rtportal worker as a real ``uvicorn`` OS process, owned by one test.

Multi-process tests need what production runs: separate interpreters that
share nothing but the database and the broker. A :class:`Worker` starts
``python -m uvicorn --factory rtportal.app:create_app_from_env`` on a free
port with the environment it is given, logs to a file (shown in assertion
messages when the worker dies), and is stopped by its own pid — never by
name — so a test can ``kill -9`` it as a crash would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url

from rtportal.db import Database
from rtportal.db.migrate import upgrade
from tests.support.procs import ManagedProcess, free_port, service_unavailable

__all__ = ["Worker", "WorkerDied", "worker_env"]

_APP_FACTORY = "rtportal.app:create_app_from_env"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class WorkerDied(RuntimeError):
    """The worker process exited while it was expected to be serving."""


def worker_env(
    *,
    database_url: str,
    broker_url: str,
    data_dir: Path,
    secret_key: str,
    allowed_origins: str = "http://127.0.0.1:8000",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker: the parent's, minus RTPORTAL_*, plus ours.

    Inherited ``RTPORTAL_*`` variables (e.g. the test-suite's own
    ``RTPORTAL_TEST_DATABASE_URL``) are dropped so that a worker's settings
    come only from what the test chose.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPORTAL_")}
    env.update(
        {
            "RTPORTAL_DATABASE_URL": database_url,
            "RTPORTAL_BROKER_URL": broker_url,
            "RTPORTAL_DATA_DIR": str(data_dir),
            "RTPORTAL_SECRET_KEY": secret_key,
            "RTPORTAL_ALLOWED_ORIGINS": allowed_origins,
            # These tests load workers on purpose: no per-user write rate.
            "RTPORTAL_WRITE_RATE": "1000000",
            "RTPORTAL_WRITE_BURST": "1000000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


class Worker:
    """A uvicorn process serving rtportal on ``127.0.0.1:<port>``."""

    def __init__(
        self, name: str, env: Mapping[str, str], log_dir: Path, *, port: int | None = None
    ) -> None:
        self.name = name
        self.env = dict(env)
        self.log_dir = log_dir
        self._tombstone: socket.socket | None = None
        self._rebuild(port or free_port())

    def _rebuild(self, port: int) -> None:
        self.port = port
        self.log_path = self.log_dir / f"worker-{self.name}-{self.port}.log"
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", _APP_FACTORY,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--lifespan", "on",                 # a failing startup must fail, not limp on
            "--loop", "uvloop",
            "--http", "rtportal.http.uvicorn_http:HttpToolsProtocol",  # as in the Procfile
            "--ws", "rtportal.ws.native:WebSocketProtocol",  # as in the Procfile
            "--ws-per-message-deflate", "false",
            "--log-level", "warning",
            "--timeout-graceful-shutdown", "5",
        ]  # fmt: skip
        self.process = ManagedProcess(argv, env=self.env, cwd=_REPO_ROOT, log_path=self.log_path)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        proc = self.process.proc
        return proc is not None and proc.poll() is None

    def log_text(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of the worker's log (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return "<no log>"

    async def start(self, within: float = 30.0, *, retries_left: int = 2) -> None:
        """Spawn the process and wait until it accepts TCP connections.

        uvicorn runs the lifespan startup (migrations, database, broker,
        hub) before it binds, so an accepted connection means ready. Polls
        with a deadline and fails early with the log if the process exits.
        """
        self.process.start()
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                if "address already in use" in self.log_text().lower() and retries_left > 0:
                    # Another process took the free port between our probe and bind.
                    self._rebuild(free_port())
                    await self.start(within, retries_left=retries_left - 1)
                    return
                raise WorkerDied(f"worker {self.name} exited during startup:\n{self.log_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"worker {self.name} not listening after {within}s:\n{self.log_text()}"
                    ) from None
                await asyncio.sleep(0.05)  # reason: polling a port that has no event to await
                continue
            writer.close()
            await writer.wait_closed()
            return

    def kill9(self) -> None:
        """SIGKILL by pid, as a crash would; the dead address then refuses connections."""
        self.process.kill9()
        self._hold_port()

    def _hold_port(self) -> None:
        """Bind (never listen on) the dead worker's port until ``stop()``.

        On a machine where other test runs pick free ports all the time, a
        freed port can be taken by someone else's server within seconds, and
        this test's clients would then talk to a stranger. A bound socket
        that does not listen keeps the port ours and makes every connect to
        it fail at once with "connection refused", as a dead worker should.
        """
        if self._tombstone is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            # TIME_WAIT leftovers of the dead server's connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                sock.close()
                return  # someone already has it; the test will say so if it matters
        self._tombstone = sock

    async def terminate(self, within: float = 20.0) -> int:
        """SIGTERM by pid and await the exit without blocking the event loop.

        The test's own websocket clients must keep running meanwhile: they
        answer the server's closing handshake (1012) while it shuts down.
        Returns the exit code; SIGKILL and ``TimeoutError`` after ``within`` s.
        """
        proc = self.process.proc
        assert proc is not None
        if proc.poll() is None:
            proc.terminate()
        deadline = time.monotonic() + within
        while proc.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill9()
                raise TimeoutError(f"worker {self.name} ignored SIGTERM for {within}s")
            await asyncio.sleep(0.05)  # reason: polling a child's exit (no awaitable here)
        self._hold_port()
        return int(proc.returncode)

    def stop(self) -> None:
        """SIGTERM by pid (graceful: websockets get 1012), SIGKILL if it hangs."""
        self.process.stop(timeout=10.0)
        if self._tombstone is not None:
            self._tombstone.close()
            self._tombstone = None


@asynccontextmanager
async def migrated_db(database_url: str) -> AsyncIterator[Database]:
    """The database the workers share, migrated and opened in the test process
    (a PostgreSQL that does not answer is ``service_unavailable``)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        try:
            socket.create_connection((url.host or "127.0.0.1", url.port or 5432), 3).close()
        except OSError as exc:
            service_unavailable(f"PostgreSQL at {url.host}:{url.port} ({exc!r})")
    await asyncio.wait_for(upgrade(database_url), 60)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.close()
