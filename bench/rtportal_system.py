"""rtportal as a benchmarked system: environment, seed, credentials per client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]

from bench.systems import ROOT, RTPORTAL_WS, Layout, System, plain_layouts, uvicorn_argv

__all__ = ["make_rtportal"]

BENCH_DB = "rtportal_bench"
# The server and the seed share it: token hashes are keyed with it.
_SECRET_KEY = "bench-secret-key-0123456789abcdef"


async def _recreate_database(admin_url: str, name: str = BENCH_DB) -> None:
    """Drop and create ``name``: a database of its own, never the tests'."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


def _pg_backend_pids(name: str = BENCH_DB) -> list[int]:
    """PostgreSQL backends serving the bench database (their CPU is the DB's cost)."""
    pids = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
        except psutil.Error:
            continue
        if proc.info["name"] == "postgres" and name in cmd.split():
            pids.append(proc.pid)
    return pids


def make_rtportal(
    name: str,
    port: int,
    run_id: str,
    idle_n: int,
    tmp: Path,
    redis_url: str,
    redis_pid: int,
    pg_admin_url: str,
    sql_trace: Path | None = None,
    tracemalloc: bool = False,
    layouts: dict[str, Layout] | None = None,
    db_name: str = BENCH_DB,
) -> System:
    # rtportal-pg2: the same as rtportal-pg with two uvicorn worker processes
    # (Redis carries events between them), CPU and RSS summed over the tree.
    workers = 2 if name == "rtportal-pg2" else 1
    prefix = {"rtportal-pg": "P", "rtportal-pg2": "Q"}.get(name, "S")
    # Another bench (bench.files) seeds its own matters and database.
    if layouts is None:
        layouts = plain_layouts(run_id + prefix, idle_n)
    data_dir = tmp / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if name in ("rtportal-pg", "rtportal-pg2"):
        asyncio.run(_recreate_database(pg_admin_url, db_name))
        base = pg_admin_url.rsplit("/", 1)[0]
        db_url = base.replace("postgresql://", "postgresql+asyncpg://") + "/" + db_name
        broker_url = redis_url
        label = "rtportal, PostgreSQL + Redis broker" + (
            f", {workers} workers" if workers > 1 else ""
        )

        def backend() -> list[int]:
            return [redis_pid, *_pg_backend_pids(db_name)]
    else:
        db_url = f"sqlite+aiosqlite:///{data_dir / 'rtportal.db'}"
        broker_url = "memory://"
        label = "rtportal, SQLite + in-process broker"

        def backend() -> list[int]:
            return []

    spec = {
        "layouts": {k: [[ref, lay.members] for ref in lay.matters] for k, lay in layouts.items()}
    }
    seeded = subprocess.run(  # the seed runs apart: no DB threads in the forking runner
        [sys.executable, "-m", "bench.rtportal_seed", db_url, json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, "RTPORTAL_SECRET_KEY": _SECRET_KEY},
        check=True,
        capture_output=True,
        text=True,
    )
    tokens: dict[str, list[list[str]]] = json.loads(seeded.stdout.strip().splitlines()[-1])

    def headers_for(layout: str) -> Callable[[int, int], tuple[tuple[str, str], ...]]:
        def headers(m: int, k: int) -> tuple[tuple[str, str], ...]:
            return (("Authorization", "Bearer " + tokens[layout][m][k]),)

        return headers

    with_auth = {
        k: Layout(
            lay.name, lay.matters, lay.members, lay.senders_per_matter, lay.clients, headers_for(k)
        )
        for k, lay in layouts.items()
    }
    env = {
        "RTPORTAL_DATA_DIR": str(data_dir),
        "RTPORTAL_DATABASE_URL": db_url,
        "RTPORTAL_BROKER_URL": broker_url,
        "RTPORTAL_SECRET_KEY": _SECRET_KEY,
        "RTPORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RTPORTAL_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        # The load generator's senders write far faster than a person: the
        # per-user write rate (default 20/s) stays out of the measurement.
        "RTPORTAL_WRITE_RATE": "1000000",
        "RTPORTAL_WRITE_BURST": "1000000",
    }
    target = "rtportal.app:create_app_from_env"
    if sql_trace is not None:
        target = "bench.servers.rtportal_traced:create_app"
        env["BENCH_SQL_TRACE"] = str(sql_trace / f"sql-{name}.txt")
        if tracemalloc:
            env["BENCH_TRACEMALLOC"] = str(sql_trace / f"memory-{name}.txt")
    argv = uvicorn_argv(target, port, factory=True, ws=RTPORTAL_WS[0])
    if workers > 1:
        argv += ["--workers", str(workers)]
    return System(name, label, argv, env, with_auth, backend_pids=backend)
