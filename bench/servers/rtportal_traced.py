"""rtportal's app with SQL statement timing, for finding where the time goes.

``uvicorn --factory bench.servers.rtportal_traced:create_app`` serves exactly
``rtportal.app.create_app_from_env()`` and additionally times every SQL
statement (SQLAlchemy cursor events on the ``Engine`` class, so every engine
rtportal creates is covered). On shutdown it writes a table of statements by
total time to ``$BENCH_SQL_TRACE`` (run.py --sql-trace sets it). Statement
time is wall time between the cursor events: on SQLite that includes waiting
for the single writer; on PostgreSQL the round trip.

With ``$BENCH_TRACEMALLOC`` (run.py --tracemalloc) it also traces Python
allocations and writes, every few seconds, the biggest growths since the app
was created, by source line: with N idle connections open, lines with about
N (or k x N) new blocks are the per-connection memory.

With ``$BENCH_CPROFILE`` set to a path, the event loop's thread runs under
cProfile and its stats are written to PATH.1, PATH.2, ... every 5 s (``pstats``
format; cumulative, so two of them subtract to one phase). Call counts per delivered message are
the point: greenlet switches blur the times SQLAlchemy's async layer takes.

With ``$BENCH_STALLS`` set to a path, it records what holds deliveries up:
the event loop's lag (a timer due every 5 ms, how late it ran) and every
group-commit batch slower than 20 ms with its size and phases (the reads
before the write, the write, PostgreSQL's round trip within it, the
publish), the phases' time per send over every batch, and the cyclic
garbage collector's pauses per generation, written to PATH every 5 s: a
p99 over 100 ms at a modest CPU is a stall, and this names it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import cProfile
import gc
import os
import re
import threading
import time
import tracemalloc
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from rtportal.app import create_app_from_env

__all__ = ["create_app"]

_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # count, total s, max s
_SPACES = re.compile(r"\s+")


def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    conn.info.setdefault("bench_t0", []).append(time.perf_counter())


def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    stack = conn.info.get("bench_t0")
    if not stack:
        return
    took = time.perf_counter() - stack.pop()
    key = _SPACES.sub(" ", statement).strip()[:160]
    row = _stats[key]
    row[0] += 1
    row[1] += took
    row[2] = max(row[2], took)


def _dump() -> None:
    path = os.environ.get("BENCH_SQL_TRACE")
    if not path or not _stats:
        return
    rows = sorted(list(_stats.items()), key=lambda kv: kv[1][1], reverse=True)
    total = sum(r[1] for _, r in rows)
    with open(path, "w") as f:
        f.write(
            f"{'calls':>8} {'total s':>8} {'share':>6} {'mean ms':>8} {'max ms':>8}  statement\n"
        )
        for stmt, (n, tot, mx) in rows[:40]:
            f.write(
                f"{int(n):8d} {tot:8.2f} {100 * tot / total:5.1f}% {1000 * tot / n:8.2f} "
                f"{1000 * mx:8.1f}  {stmt}\n"
            )


def _dump_every(seconds: float) -> None:
    # Also while running: a server stopped with SIGKILL still leaves its table.
    while True:
        time.sleep(seconds)
        _dump()
        _dump_memory()


_baseline: list[tracemalloc.Snapshot] = []


def _dump_memory() -> None:
    path = os.environ.get("BENCH_TRACEMALLOC")
    if not path or not _baseline:
        return
    stats = tracemalloc.take_snapshot().compare_to(_baseline[0], "lineno")
    grown = [st for st in stats if st.size_diff > 0]
    total = sum(st.size_diff for st in grown)
    with open(path, "w") as f:
        f.write(f"python heap growth since start: {total / 2**20:.1f} MiB (traced)\n")
        f.write(f"{'KiB':>9} {'blocks':>8}  source line\n")
        for st in grown[:40]:
            frame = st.traceback[0]
            f.write(
                f"{st.size_diff / 1024:9.1f} {st.count_diff:8d}  {frame.filename}:{frame.lineno}\n"
            )


def _profile_loop(path: str) -> None:
    # Enabled from the loop's own thread (cProfile hooks the enabling thread)
    # and dumped there too: dump_stats disables the profiler, so re-enable.
    prof = cProfile.Profile()
    prof.enable()
    count = [0]

    def dump() -> None:
        # Numbered, so two dumps give one phase alone (bench/profile_diff.py).
        count[0] += 1
        prof.dump_stats(f"{path}.{count[0]}")
        prof.enable()
        asyncio.get_running_loop().call_later(5.0, dump)

    asyncio.get_running_loop().call_later(5.0, dump)


_SLOW_BATCH_S = 0.020
_lags: list[float] = []
_slow: list[tuple[float, str]] = []  # (seconds, what)
_batches: list[float] = [0, 0, 0.0]  # batches, sends, seconds writing
_totals: dict[str, float] = {}  # phase -> seconds, over every batch
_gc: list[list[float]] = [[0, 0.0, 0.0] for _ in range(3)]  # per generation: count, s, max s


def _trace_stalls(path: str) -> None:
    """Loop lag and slow batches (``$BENCH_STALLS``), from the loop's thread."""
    from rtportal.events import groupcommit, log, store_pg

    loop = asyncio.get_running_loop()
    tick = 0.005

    def lag(due: float) -> None:
        _lags.append(loop.time() - due)
        loop.call_at(loop.time() + tick, lag, loop.time() + tick)

    loop.call_at(loop.time() + tick, lag, loop.time() + tick)
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        # The cyclic collector's pauses: each one holds every delivery up.
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - gc_started[0]
        gen = info["generation"]
        _gc[gen][0] += 1
        _gc[gen][1] += took
        _gc[gen][2] = max(_gc[gen][2], took)

    gc.callbacks.append(on_gc)
    # Per batch, in its write task's context: two batches are in flight at once
    # (the group commit's lanes), and one shared map would mix their phases.
    batch_phases: contextvars.ContextVar[dict[str, float]] = contextvars.ContextVar(
        "bench_batch_phases"
    )
    orig_write_all = groupcommit.GroupCommit._write_all
    orig_publish = groupcommit.GroupCommit._publish

    def timed(name: str, fn: Any) -> Any:
        """``fn`` (a coroutine function), its time added to the batch's phase ``name``."""

        async def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                phases = batch_phases.get(None)
                if phases is not None:
                    phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    async def write_all(self: Any, batch: list[Any], *a: Any, **k: Any) -> Any:
        phases: dict[str, float] = {}
        batch_phases.set(phases)  # this task's (the drain creates one per batch)
        t0 = time.perf_counter()
        try:
            return await orig_write_all(self, batch, *a, **k)
        finally:
            took = time.perf_counter() - t0
            _batches[0] += 1
            _batches[1] += len(batch)
            _batches[2] += took
            for name, seconds in phases.items():
                _totals[name] = _totals.get(name, 0.0) + seconds
            if took > _SLOW_BATCH_S:
                parts = " ".join(f"{k} {1000 * v:.1f}" for k, v in phases.items())
                _slow.append((took, f"batch of {len(batch)}: {1000 * took:.1f} ms ({parts})"))

    async def publish(self: Any, outcomes: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await orig_publish(self, outcomes)
        finally:
            took = time.perf_counter() - t0
            if took > _SLOW_BATCH_S:
                _slow.append((took, f"publish of {len(outcomes[0])}: {1000 * took:.1f} ms"))

    groupcommit.GroupCommit._write_all = write_all  # type: ignore[method-assign]
    groupcommit.GroupCommit._ready = timed("ready", groupcommit.GroupCommit._ready)  # type: ignore[method-assign]
    groupcommit.GroupCommit._publish = publish  # type: ignore[method-assign]
    groupcommit.commit_batch = timed("commit", log.commit_batch)  # type: ignore[attr-defined]
    store_pg.commit = timed("pg", store_pg.commit)  # the round trip, in the commit

    def dump() -> None:
        lags = sorted(_lags)
        with open(path, "w") as f:
            n = len(lags)
            if n:
                f.write(
                    f"loop lag over {n} ticks: p50 {1000 * lags[n // 2]:.1f} ms, "
                    f"p99 {1000 * lags[int(n * 0.99)]:.1f} ms, max {1000 * lags[-1]:.1f} ms, "
                    f"over 20 ms: {sum(1 for x in lags if x > 0.02)}\n"
                )
            if _batches[0]:
                f.write(
                    f"batches {_batches[0]}, sends {_batches[1]} "
                    f"({_batches[1] / _batches[0]:.2f} per batch), writing"
                    f" {1e6 * _batches[2] / _batches[1]:.0f} us per send ("
                    + " ".join(
                        f"{k} {1e6 * v / _batches[1]:.0f}" for k, v in sorted(_totals.items())
                    )
                    + ")\n"
                )
            for gen, (count, total, longest) in enumerate(_gc):
                if count:
                    f.write(
                        f"gc generation {gen}: {count:.0f} collections, {1000 * total:.1f} ms"
                        f" in all, longest {1000 * longest:.1f} ms\n"
                    )
            f.write(f"slow (> {1000 * _SLOW_BATCH_S:.0f} ms), in order:\n")
            for _, what in _slow[-300:]:
                f.write(f"  {what}\n")
        loop.call_later(5.0, dump)

    loop.call_later(5.0, dump)


def create_app() -> Starlette:
    cprofile = os.environ.get("BENCH_CPROFILE")
    stalls = os.environ.get("BENCH_STALLS")
    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start(1)
        _baseline.append(tracemalloc.take_snapshot())
    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)
    atexit.register(_dump)
    threading.Thread(target=_dump_every, args=(5.0,), name="sql-trace", daemon=True).start()
    app = create_app_from_env()
    if cprofile or stalls:
        started: list[bool] = []
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Starlette) -> AsyncIterator[Any]:
            async with inner(a) as state:
                if not started:
                    started.append(True)
                    if cprofile:
                        _profile_loop(cprofile)
                    if stalls:
                        _trace_stalls(stalls)
                yield state

        app.router.lifespan_context = lifespan
    return app
