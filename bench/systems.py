"""The systems under test: how each server is started and what its clients look like."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import ClientSpec

__all__ = [
    "ROOT",
    "Layout",
    "System",
    "make_channels",
    "make_relay",
    "plain_layouts",
    "uvicorn_argv",
]

ROOT = Path(__file__).resolve().parent.parent
# uvicorn's websocket implementation for every system (run.py --ws sets it):
# one stack for all, so the comparison is of the apps, not of ws libraries.
WS_IMPL = ["websockets-sansio"]
# rtportal runs its own uvicorn websocket protocol, as in its Procfile
# (run.py --rtportal-ws websockets-sansio puts it on the shared stack instead).
RTPORTAL_WS = ["rtportal.ws.native:WebSocketProtocol"]


def uvicorn_argv(
    target: str, port: int, *, factory: bool = False, lifespan: str = "on", ws: str = ""
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws",
        ws or WS_IMPL[0],
        "--ws-per-message-deflate",
        "false",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        lifespan,
        "--backlog",
        "4096",
    ]
    if factory:
        argv.append("--factory")
    return argv


# --- systems -------------------------------------------------------------------------
@dataclass
class Layout:
    """Matters and members of one workload, with per-client credentials."""

    name: str
    matters: list[str]
    members: int
    senders_per_matter: int
    clients: int  # total connections (idle may reuse members several times)
    headers: Callable[[int, int], tuple[tuple[str, str], ...]] = lambda m, k: ()

    def specs(self) -> list[ClientSpec]:
        out = []
        for i in range(self.clients):
            m = i % len(self.matters)
            k = (i // len(self.matters)) % self.members  # member index inside its matter
            sender = (i // len(self.matters)) < self.senders_per_matter
            members = min(self.members, self.clients // len(self.matters))
            out.append(ClientSpec(i, self.matters[m], members, sender, self.headers(m, k)))
        return out


@dataclass
class System:
    name: str
    label: str
    argv: list[str]
    env: dict[str, str]
    layouts: dict[str, Layout]
    backend_pids: Callable[[], list[int]] = list
    cleanup: Callable[[], None] = lambda: None


def plain_layouts(prefix: str, idle_n: int) -> dict[str, Layout]:
    """Matter references are rtportal's "ABCD1234": 3 letters of run/system, 1 of workload."""
    assert len(prefix) == 3 and prefix.isalpha() and prefix.isupper()
    return {
        "rooms": Layout("rooms", [f"{prefix}R{m:04d}" for m in range(100)], 10, 1, 1000),
        "fanout": Layout("fanout", [f"{prefix}F0000"], 1000, 4, 1000),
        "idle": Layout("idle", [f"{prefix}I{m:04d}" for m in range(100)], 10, 0, idle_n),
    }


def make_relay(port: int, run_id: str, idle_n: int) -> System:
    return System(
        "relay",
        "raw relay (in-memory, no persistence)",
        uvicorn_argv("bench.servers.relay:app", port),
        {},
        plain_layouts(run_id + "X", idle_n),
    )


def make_channels(port: int, run_id: str, idle_n: int, redis_url: str, redis_pid: int) -> System:
    return System(
        "channels",
        "Django Channels + channels_redis",
        uvicorn_argv("bench.servers.channels_peer:application", port, lifespan="off"),
        {"BENCH_REDIS_URL": redis_url, "BENCH_RUN_ID": run_id},
        plain_layouts(run_id + "C", idle_n),
        backend_pids=lambda: [redis_pid],
    )
