"""Benchmark runner: every system side by side in one run, one JSON line each.

    python bench/run.py --quick          # ~3 minutes
    python bench/run.py                  # the full run recorded in docs/benchmarks.md
    python bench/run.py --systems relay,channels --workloads fanout

Systems (each its own uvicorn process: one worker, uvloop, httptools,
websockets-sansio, no per-message deflate; started and stopped by pid):

* ``rtportal-sqlite``  rtportal, SQLite (WAL) + in-process broker
* ``rtportal-pg``      rtportal, PostgreSQL + Redis broker
* ``relay``            raw in-memory relay, no persistence (the ceiling)
* ``channels``         Django Channels consumer + channels_redis (the peer)

Workloads: ``rooms`` (100 matters x 10 members), ``fanout`` (1 matter x
1,000 members), ``idle`` (5,000 subscribed idle connections; 1,000 in
--quick). For rooms/fanout the offered send rate is stepped up until p99 >
100 ms, a message is lost or a send fails; the best passing step gives the
figures. Redis is a private redis-server the runner starts on a free port;
PostgreSQL is the local server, database ``rtportal_bench`` (recreated).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # type: ignore[import-untyped]

from bench.loadgen import ClientSpec, raise_nofile, worker_main
from bench.machine import describe
from bench.report import write_markdown
from bench.systems import ROOT, RTPORTAL_WS, WS_IMPL, Layout, System, make_channels, make_relay

RESULTS = ROOT / "bench" / "results"
P99_TARGET_MS = 100.0


def log(*parts: object) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {timeout}s") from None
            time.sleep(0.05)  # reason: polling a port that has no event to await


def stop_proc(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a process this runner started, by its own pid."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@contextmanager
def private_redis() -> Iterator[tuple[str, int]]:
    """A redis-server of our own (nothing on disk): no key or pub/sub collisions
    with the team's tests on the shared Redis, and its CPU is measurable by pid."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "20000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        stop_proc(proc)


# --- measurement ------------------------------------------------------------------------
def _tree(pid: int) -> list[psutil.Process]:
    """The process and its children (uvicorn --workers N forks its workers)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for proc in _tree(pid):
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        try:
            total += int(proc.memory_info().rss)
        except psutil.Error:
            pass
    return total


def percentile(sorted_values: array[int] | list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[idx])


@dataclass
class Generator:
    """The coordinator's handle on the load-generator processes."""

    port: int
    n: int
    pipes: list[Connection] = field(default_factory=list)
    procs: list[mp.process.BaseProcess] = field(default_factory=list)

    def start(self) -> None:
        ctx = mp.get_context("fork")
        for wid in range(self.n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(child, "127.0.0.1", self.port, "/ws", wid), daemon=True
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def ask_all(self, msgs: list[tuple[Any, ...]], timeout: float = 300) -> list[Any]:
        for pipe, msg in zip(self.pipes, msgs, strict=True):
            pipe.send(msg)
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError(f"load generator did not answer {msgs[0][0]!r}")
            out.append(pipe.recv()[1])
        return out

    def broadcast(self, msg: tuple[Any, ...], timeout: float = 300) -> list[Any]:
        return self.ask_all([msg] * self.n, timeout)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(timeout=5)
        self.pipes.clear()
        self.procs.clear()


def connect(gen: Generator, layout: Layout) -> dict[str, Any]:
    specs = layout.specs()
    shares: list[list[ClientSpec]] = [[] for _ in range(gen.n)]
    for i, spec in enumerate(specs):
        shares[i % gen.n].append(spec)
    answers = gen.ask_all([("connect", share, 50) for share in shares])
    outcome: dict[str, int] = {}
    for a in answers:
        for k, v in a["outcome"].items():
            outcome[k] = outcome.get(k, 0) + v
    return {"outcome": outcome, "seconds": round(max(a["seconds"] for a in answers), 2)}


def _merged(stats: list[dict[str, Any]], key: str) -> array[int]:
    """Latency samples of every worker, sorted (microseconds)."""
    merged = array("I")
    for s in stats:
        part = array("I")
        part.frombytes(s[key])
        merged.extend(part)
    return array("I", sorted(merged))


def run_step(
    gen: Generator,
    server_pid: int,
    backend: list[int],
    step_id: int,
    rate: float,
    duration: float,
    drain: float,
    members: int,
) -> dict[str, Any]:
    """Offer ``rate`` sends/s for ``duration`` s, wait for delivery, aggregate."""
    cpu0 = cpu_seconds([server_pid])
    bcpu0 = cpu_seconds(backend)
    gcpu0 = cpu_seconds(gen.pids)
    t0 = time.monotonic()
    # Every worker must count this step's deliveries before anyone sends.
    gen.broadcast(("prepare", step_id))
    total = max(1, round(rate * duration))
    shares = [total // gen.n + (1 if w < total % gen.n else 0) for w in range(gen.n)]
    gen.ask_all([("step", step_id, share, duration) for share in shares])
    deadline = time.monotonic() + drain
    while True:
        counts = gen.broadcast(("count", step_id))
        sent = sum(c["sent"] for c in counts)
        answered = sum(c["acked"] + c["errors"] for c in counts)
        expected = sum(c["expected"] for c in counts)
        received = sum(c["received"] for c in counts)
        if (answered >= sent and received >= expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # reason: polling counters in other processes
    wall = time.monotonic() - t0
    cpu = cpu_seconds([server_pid]) - cpu0
    bcpu = cpu_seconds(backend) - bcpu0
    gcpu = cpu_seconds(gen.pids) - gcpu0
    stats = gen.broadcast(("collect", step_id))
    lat = _merged(stats, "latencies_us")
    ack = _merged(stats, "ack_latencies_us")
    sent = sum(s["sent"] for s in stats)
    received = sum(s["received"] for s in stats)
    expected = sum(s["expected"] for s in stats)
    errors = sum(s["errors"] for s in stats)
    codes: dict[str, int] = {}
    closes: dict[str, int] = {}
    for s in stats:
        for k, v in s["error_codes"].items():
            codes[k] = codes.get(k, 0) + v
        for k, v in s["closes"].items():
            closes[k] = closes.get(k, 0) + v
    p50 = percentile(lat, 50) / 1000
    p99 = percentile(lat, 99) / 1000
    lost = max(0, expected - received)
    result = {
        "step": step_id,
        "offered_sends_per_s": round(rate, 1),
        "offered_deliveries_per_s": round(sent * members / duration, 1),
        "sent": sent,
        "acked": sum(s["acked"] for s in stats),
        "errors": errors,
        "error_codes": codes,
        "expected": expected,
        "received": received,
        "lost": lost,
        "duplicates": sum(s["duplicates"] for s in stats),
        "out_of_order": sum(s["out_of_order"] for s in stats),
        "delivered_per_s": round(received / duration, 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(lat[-1] / 1000, 2) if lat else None,
        "ack_p50_ms": round(percentile(ack, 50) / 1000, 2),
        "ack_p99_ms": round(percentile(ack, 99) / 1000, 2),
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "server_cpu_us_per_delivery": round(1e6 * cpu / received, 2) if received else None,
        "backend_cpu_us_per_delivery": round(1e6 * bcpu / received, 2) if received else None,
        "generator_cpu_pct": round(100 * gcpu / wall, 1),
        "machine_cpu_pct": round(psutil.cpu_percent(interval=None), 1),
        "closes": closes,
        "open": sum(s["open"] for s in stats),
        "seconds": round(wall, 2),
    }
    result["pass"] = bool(
        received > 0
        and p99 <= P99_TARGET_MS
        and lost == 0
        and errors == 0
        and not any(k not in ("1000",) for k in closes)
        and sent >= 0.9 * total
    )
    return result


def stepped(
    gen: Generator,
    server_pid: int,
    backend: list[int],
    layout: Layout,
    start_rate: float,
    factor: float,
    max_steps: int,
    duration: float,
    drain: float,
    bisect: int,
    retry: bool = True,
    rates: tuple[float, ...] = (),
) -> dict[str, Any]:
    members = layout.members
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    fail_rate: float | None = None

    def step(rate: float, what: str) -> dict[str, Any]:
        r = run_step(gen, server_pid, backend, len(steps) + 1, rate, duration, drain, members)
        log(
            f"  {layout.name} {what} {len(steps) + 1}: offered {r['offered_deliveries_per_s']}/s "
            f"delivered {r['delivered_per_s']}/s p50 {r['p50_ms']} p99 {r['p99_ms']} ms "
            f"(ack p50 {r['ack_p50_ms']} p99 {r['ack_p99_ms']}) "
            f"lost {r['lost']} err {r['errors']} srv {r['server_cpu_pct']}% "
            f"gen {r['generator_cpu_pct']}% {'PASS' if r['pass'] else 'FAIL'}"
        )
        steps.append(r)
        return r

    # Background CPU with every client connected and nobody sending (pings,
    # the hub's safety poll, ...): per-delivery CPU is also reported net of it.
    c0, t0 = cpu_seconds([server_pid]), time.monotonic()
    time.sleep(min(3.0, duration))  # reason: measuring CPU over an interval
    baseline = (cpu_seconds([server_pid]) - c0) / (time.monotonic() - t0)
    log(f"  {layout.name} baseline: server CPU {100 * baseline:.1f}% with nobody sending")

    def net(r: dict[str, Any]) -> float | None:
        if not r["received"]:
            return None
        spare = float(r["server_cpu_pct"]) / 100 - baseline
        return round(1e6 * max(0.0, spare) * float(r["seconds"]) / int(r["received"]), 2)

    # Up by ``factor`` until a step fails ...
    # (A failing step is run once more before it counts: on a shared 2-core
    # machine one scheduling hiccup can push a p99 over 100 ms.)
    for fixed in rates:  # --rates: exactly these steps (e.g. how a system recovers)
        r = step(fixed / members, "fixed")
        if r["pass"] and (best is None or r["delivered_per_s"] > best["delivered_per_s"]):
            best = r
        elif not r["pass"]:
            fail_rate = fixed / members
    rate = start_rate
    for _ in range(0 if rates else max_steps):
        r = step(rate, "step")
        if not r["pass"] and retry:
            r = step(rate, "retry")
        if not r["pass"]:
            fail_rate = rate
            break
        best = r
        rate *= factor
    # ... or down, if even the first step failed (a slow system still gets a figure) ...
    down = rate
    for _ in range(3 if best is None and not rates else 0):
        if round(down * duration) <= 1:
            break  # already one message per step: nothing lower to offer
        down /= factor
        r = step(down, "down")
        if r["pass"]:
            best = r
            break
        fail_rate = down
    # ... then narrow the gap between the best pass and the first failure.
    for _ in range(0 if rates else bisect):
        if best is None or fail_rate is None:
            break
        mid = (best["offered_sends_per_s"] * fail_rate) ** 0.5
        r = step(mid, "bisect")
        if r["pass"]:
            if r["delivered_per_s"] > best["delivered_per_s"]:
                best = r
            else:
                break
        else:
            fail_rate = mid
    late = wait_for_late(gen, sum(s["lost"] for s in steps))
    summary: dict[str, Any] = {
        "workload": layout.name,
        "baseline_cpu_pct": round(100 * baseline, 1),
        "steps": steps,
        # A step's "lost" counts what had not arrived when the step was
        # collected (it fails the step); what arrived later is "late".
        "late_total": late,
        "lost_total": max(0, sum(s["lost"] for s in steps) - late),
    }
    if best is None:
        summary.update(
            max_delivered_per_s=0.0,
            p50_ms=None,
            p99_ms=None,
            lost=None,
            server_cpu_us_per_delivery=None,
            backend_cpu_us_per_delivery=None,
            generator_cpu_pct=None,
        )
    else:
        summary.update(
            max_delivered_per_s=best["delivered_per_s"],
            p50_ms=best["p50_ms"],
            p99_ms=best["p99_ms"],
            lost=best["lost"],
            server_cpu_us_per_delivery=best["server_cpu_us_per_delivery"],
            server_cpu_us_per_delivery_net=net(best),
            backend_cpu_us_per_delivery=best["backend_cpu_us_per_delivery"],
            server_cpu_pct=best["server_cpu_pct"],
            ack_p50_ms=best["ack_p50_ms"],
            ack_p99_ms=best["ack_p99_ms"],
            generator_cpu_pct=best["generator_cpu_pct"],
        )
    failed = [st for st in steps if not st["pass"]]
    summary["saturated_by"] = None if fail_rate is None or not failed else _why(failed[-1])
    return summary


def wait_for_late(gen: Generator, missing: int, timeout: float = 30.0) -> int:
    """Deliveries that arrived after their step was collected, once they
    stop coming (all ``missing`` arrived, or ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        late = sum(c["late"] for c in gen.broadcast(("late",)))
        if late >= missing or time.monotonic() > deadline:
            return late
        time.sleep(0.1)  # reason: polling counters in other processes


def _why(step: dict[str, Any]) -> str:
    reasons = []
    if step["p99_ms"] != step["p99_ms"] or step["p99_ms"] > P99_TARGET_MS:
        reasons.append(f"p99 {step['p99_ms']} ms")
    if step["lost"]:
        reasons.append(f"{step['lost']} lost")
    if step["errors"]:
        reasons.append(f"errors {step['error_codes']}")
    if any(k != "1000" for k in step["closes"]):
        reasons.append(f"closes {step['closes']}")
    if not reasons:
        reasons.append("sent < 90% of planned (the generator fell behind)")
    return "; ".join(reasons)


def idle(gen: Generator, server_pid: int, layout: Layout, warm_layout: Layout) -> dict[str, Any]:
    # Warm-up: 200 clients connect and subscribe first and *stay* (closing them
    # would leave freed memory for the measured clients to reuse for free), so
    # one-off allocations (database pool connections and their page caches,
    # statement caches, imports on first use) are not charged to the measured
    # connections. They subscribe to the idle layout's matters, which nobody
    # sends to, so when --quick goes on to load these clients they receive nothing.
    connect(gen, dataclasses.replace(warm_layout, clients=min(200, warm_layout.clients)))
    time.sleep(1.0)  # reason: let the server settle after the warm-up handshakes
    rss0 = rss_bytes(server_pid)
    info = connect(gen, layout)
    ok = info["outcome"].get("subscribed", 0)
    # RSS settles once the handshakes' garbage is collected; poll until stable.
    deadline = time.monotonic() + 5
    last = rss_bytes(server_pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)  # reason: sampling RSS of another process
        now = rss_bytes(server_pid)
        if abs(now - last) < 64 * 1024:
            break
        last = now
    rss1 = rss_bytes(server_pid)
    return {
        "workload": "idle",
        "connections": ok,
        "connect": info,
        "rss_before_mib": round(rss0 / 2**20, 1),
        "rss_after_mib": round(rss1 / 2**20, 1),
        "bytes_per_connection": round((rss1 - rss0) / ok) if ok else None,
        "kib_per_connection": round((rss1 - rss0) / ok / 1024, 1) if ok else None,
    }


# --- profiling ------------------------------------------------------------------------------
def start_profiler(pid: int, system: str, workload: str) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy samples the server (by pid) while the steps run; SIGINT writes the file.

    ``--gil``: only the thread holding the GIL is sampled, i.e. Python CPU time;
    without it, idle threads blocked in C (aiosqlite's workers waiting on their
    queue, the loop in epoll) are sampled as busy and drown the real costs.
    """
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    out = RESULTS / f"profile-{system}-{workload}.txt"
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--gil",
            "--subprocesses",  # uvicorn --workers N: the workers are the master's children
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, out


def stop_profiler(proc: subprocess.Popen[bytes], out: Path) -> str:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_proc(proc)
    from bench.profile_summary import summarize

    summary = RESULTS / (out.stem + "-summary.txt")
    summary.write_text(summarize(out.read_text()) if out.exists() else "no profile written\n")
    log(f"  profile: {out} (summary {summary})")
    return str(summary)


# --- main ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    quick: bool
    step_seconds: float
    drain_seconds: float
    factor: float
    max_steps: int
    bisect: int  # rounds of narrowing between the best pass and the first failure
    idle_n: int
    workers: int
    profile: bool = False
    rates: tuple[float, ...] = ()  # deliveries/s of fixed steps (--rates): no search

    @staticmethod
    def make(quick: bool, workers: int, idle_n: int | None, profile: bool = False) -> Plan:
        if quick:
            return Plan(True, 2.0, 3.0, 2.0, 10, 0, idle_n or 1000, workers, profile)
        return Plan(False, 5.0, 5.0, 2.0, 12, 2, idle_n or 5000, workers, profile)


START_RATES = {"rooms": 10.0, "fanout": 0.5}  # sends/s: 100 and 500 deliveries/s


def _workload(
    system: System,
    pid: int,
    gen: Generator,
    plan: Plan,
    name: str,
    share_idle: bool,
    connected: str | None,
) -> dict[str, Any]:
    if name == "idle":
        layout = system.layouts["rooms" if share_idle else "idle"]
        profiler = start_profiler(pid, system.name, "connect") if plan.profile else None
        res = idle(gen, pid, layout, system.layouts["idle"])
        if profiler is not None:
            res["profile"] = stop_profiler(*profiler)
        log(f"  idle: {res['connections']} connections, {res['kib_per_connection']} KiB each")
        # Failed connects are reported (connect.outcome), not fatal: the memory
        # figure is per connection actually open and subscribed.
        res["failed_connections"] = layout.clients - res["connections"]
        return res
    layout = system.layouts[name]
    if connected == name:
        info: dict[str, Any] = {"reused": "idle connections"}
    else:
        info = connect(gen, layout)
        log(f"  {name}: connected {info}")
        if info["outcome"] != {"subscribed": layout.clients}:
            raise RuntimeError(f"not every client subscribed: {info}")
    profiler = start_profiler(pid, system.name, name) if plan.profile else None
    res = stepped(
        gen,
        pid,
        system.backend_pids(),
        layout,
        START_RATES[name],
        plan.factor,
        plan.max_steps,
        plan.step_seconds,
        plan.drain_seconds,
        bisect=plan.bisect,
        retry=not plan.quick,
        rates=plan.rates,
    )
    res["connect"] = info
    if profiler is not None:
        res["profile"] = stop_profiler(*profiler)
    return res


def bench_system(
    system: System, port: int, plan: Plan, workloads: list[str], run_id: str = "run"
) -> list[dict[str, Any]]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"{system.name}-{run_id}.log"  # runs may overlap: own log each
    env = {**os.environ, **system.env}
    with open(log_path, "wb") as out:  # one log per system and run
        proc = subprocess.Popen(
            system.argv,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    results: list[dict[str, Any]] = []
    gen = Generator(port, plan.workers)
    try:
        wait_for_port(port, proc)
        log(f"{system.name}: server pid {proc.pid} on port {port}")
        gen.start()
        # In --quick the 1,000 idle connections are the rooms clients themselves
        # (same layout): measured idle first, then loaded; saves a reconnect.
        share_idle = plan.idle_n == system.layouts["rooms"].clients and "rooms" in workloads
        connected: str | None = None
        for name in workloads:
            try:
                res = _workload(system, proc.pid, gen, plan, name, share_idle, connected)
            except Exception as exc:  # one workload failing must not hide the others
                log(f"  {name}: FAILED: {exc!r} (server log: {log_path})")
                res = {"workload": name, "error": repr(exc)}
                connected = None
                gen.broadcast(("close",))
            else:
                complete = res.get("failed_connections") == 0
                connected = "rooms" if (name == "idle" and share_idle and complete) else None
                if connected is None:
                    gen.broadcast(("close",))
            res = {"system": system.name, "label": system.label, **res}
            results.append(res)
            print(json.dumps({k: v for k, v in res.items() if k != "steps"}), flush=True)
    except Exception as exc:  # one system failing must not hide the others' figures
        log(f"{system.name}: FAILED: {exc!r} (server log: {log_path})")
        results.append({"system": system.name, "label": system.label, "error": repr(exc)})
        print(json.dumps(results[-1]), flush=True)
    finally:
        gen.stop()
        stop_proc(proc)
        system.cleanup()
    return results


_KEY_FIGURES = (
    "max_delivered_per_s",
    "p50_ms",
    "p99_ms",
    "lost_total",
    "server_cpu_us_per_delivery",
    "kib_per_connection",
    "connections",
    "error",
)


def system_lines(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary object per system: its workloads' key figures side by side."""
    lines: dict[str, dict[str, Any]] = {}
    for r in results:
        line = lines.setdefault(r["system"], {"system": r["system"], "summary": True})
        figures = {k: r[k] for k in _KEY_FIGURES if k in r}
        line[r.get("workload", "setup")] = figures
    return list(lines.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short steps, 1,000 idle (~3 min)")
    parser.add_argument(
        "--systems", default="rtportal-sqlite,rtportal-pg,rtportal-pg2,relay,channels"
    )
    parser.add_argument("--workloads", default="idle,rooms,fanout")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--idle", type=int, default=None, help="idle connections")
    parser.add_argument(
        "--sql-trace",
        action="store_true",
        help="serve rtportal through bench.servers.rtportal_traced: SQL time per statement "
        "in bench/results/sql-<system>.txt",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="serve rtportal through bench.servers.rtportal_traced with tracemalloc: Python "
        "memory growth by source line in bench/results/memory-<system>.txt (slow)",
    )
    parser.add_argument(
        "--ws",
        default="websockets-sansio",
        choices=["websockets-sansio", "websockets"],
        help="uvicorn websocket implementation of the relay and Channels (and of rtportal "
        "with --rtportal-ws shared)",
    )
    parser.add_argument(
        "--rtportal-ws",
        default="native",
        choices=["native", "shared"],
        help="rtportal's websocket transport: its own uvicorn protocol (rtportal.ws.native, "
        "as deployed) or the --ws implementation shared with the other systems",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server with py-spy during rooms/fanout (collapsed stacks and a "
        "hot-spot summary in bench/results/)",
    )
    parser.add_argument(
        "--start",
        type=float,
        default=None,
        help="deliveries/s of the first rooms/fanout step (default: 100 rooms, 500 fanout); "
        "with --steps, a quick side-by-side of CPU per delivery at fixed rates",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="at most this many doubling steps per workload"
    )
    parser.add_argument(
        "--rates",
        default=None,
        help="comma-separated deliveries/s: run exactly these rooms/fanout steps, in order "
        "(no search), e.g. 36000,72000,36000 to see how a system recovers from overload",
    )
    parser.add_argument(
        "--step-seconds", type=float, default=None, help="seconds per step (default 5, quick 2)"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to connect to for creating rtportal_bench",
    )
    args = parser.parse_args(argv)
    raise_nofile()
    WS_IMPL[0] = args.ws
    if args.rtportal_ws == "shared":
        RTPORTAL_WS[0] = args.ws
    plan = Plan.make(args.quick, args.workers, args.idle, args.profile)
    if args.steps is not None:
        plan = dataclasses.replace(plan, max_steps=args.steps)
    if args.rates:
        plan = dataclasses.replace(plan, rates=tuple(float(x) for x in args.rates.split(",")))
    if args.step_seconds is not None:
        plan = dataclasses.replace(plan, step_seconds=args.step_seconds)
    if args.start is not None:
        for workload, members in (("rooms", 10), ("fanout", 1000)):
            START_RATES[workload] = args.start / members
    run_id = "".join(random.choice(string.ascii_uppercase) for _ in range(2))
    machine = describe()
    log(
        f"run {run_id} on {machine['cpu']} x{machine['cores']}, load {machine['load_avg_at_start']}"
    )
    if any(s.startswith("rtportal-pg") for s in args.systems.split(",")):
        # The machine's own durable-commit latency (its disk's fsync), no
        # rtportal code: a stall here is a stall of every message in flight.
        import asyncio

        from bench.pg_commit_probe import probe

        try:
            seconds = 5.0 if args.quick else 15.0
            machine["pg_commit_probe"] = asyncio.run(probe(args.pg_url, seconds))
            log(f"PostgreSQL commit probe: {machine['pg_commit_probe']}")
        except Exception as exc:
            log(f"PostgreSQL commit probe failed: {exc!r}")
    psutil.cpu_percent(interval=None)
    workloads = [w for w in args.workloads.split(",") if w]
    all_results: list[dict[str, Any]] = []
    with private_redis() as (redis_url, redis_pid), tempfile.TemporaryDirectory() as tmp:
        for name in [s for s in args.systems.split(",") if s]:
            port = free_port()
            if name == "relay":
                system = make_relay(port, run_id, plan.idle_n)
            elif name == "channels":
                system = make_channels(port, run_id, plan.idle_n, redis_url, redis_pid)
            elif name in ("rtportal-sqlite", "rtportal-pg", "rtportal-pg2"):
                from bench.rtportal_system import make_rtportal

                try:
                    system = make_rtportal(
                        name,
                        port,
                        run_id,
                        plan.idle_n,
                        Path(tmp),
                        redis_url,
                        redis_pid,
                        args.pg_url,
                        RESULTS if (args.sql_trace or args.tracemalloc) else None,
                        args.tracemalloc,
                    )
                except Exception as exc:
                    log(f"{name}: cannot set up: {exc!r}")
                    all_results.append({"system": name, "error": repr(exc)})
                    print(json.dumps(all_results[-1]), flush=True)
                    continue
            else:
                parser.error(f"unknown system {name}")
            log(f"== {name}: {system.label}")
            all_results.extend(bench_system(system, port, plan, workloads, run_id))
    # Then one line per system with its key figures (what --quick is read by).
    for line in system_lines(all_results):
        print(json.dumps(line), flush=True)
    md = write_markdown(all_results, machine, plan.quick, RESULTS)
    log(f"markdown table: {md}")
    with open(RESULTS / f"run-{run_id}.json", "w") as f:
        json.dump({"machine": machine, "quick": plan.quick, "results": all_results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
