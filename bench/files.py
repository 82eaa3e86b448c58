"""Files: 5 MB uploads and downloads, and 50 concurrent uploads, beside a minimal peer.

    python -m bench.files [--quick] [--backend sqlite|pg] [--files 20] [--concurrent 50]
                          [--rounds 5] [--profile]
                          [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

Each system is its own uvicorn process (bench.systems.uvicorn_argv: one worker,
uvloop, httptools), started and stopped by its pid (bench.run's helpers), on a
fresh data directory:

* ``peer``: ``bench/servers/files_peer.py``, starlette + aiofiles + ``FileResponse``
  (no auth, no database, no checks): the floor;
* ``rtportal-sqlite``: rtportal, SQLite + in-process broker;
* ``rtportal-pg``: rtportal, PostgreSQL (database ``rtportal_bench_files``,
  recreated) + a private Redis broker.

rtportal is seeded by ``bench.rtportal_system.make_rtportal`` (two matters, one
contact member each, a bearer token each); the portal quota is raised for the
run (``RTPORTAL_PORTAL_QUOTA_BYTES``: 50 files of 5 MB are more than the
default 200 MiB of a matter). One 5 MB plaintext is encrypted once, here, with
``rtportal.crypto.attachment`` (an RTA1 blob of 5,001,253 bytes, under the
5 MiB file limit); every upload sends that blob with its ``Content-Digest``.

Phases, after a warm-up of 2 uploads and downloads (``--rounds`` of each
speed phase, 5, 1 in ``--quick``; the table gives each figure's median):

* ``upload``: ``--files`` uploads (20, 5 in ``--quick``) one after the other,
  then ``download``: each of them downloaded once. MB/s = ciphertext bytes /
  wall time; server CPU per MB = the server process's CPU time (user + system,
  all its threads, /proc by psutil) over the phase / MB; ``backend`` adds
  PostgreSQL's backends of the database and Redis;
* ``empty_files``: the same with 37-byte blobs (an empty file): the server CPU
  of one upload and its download whatever the size (auth, database, routing);
* ``concurrent``: ``--concurrent`` uploads at once, each on its own connection,
  as fast as the client sends;
* ``held_open``: ``--concurrent`` uploads that send half their body and wait
  until the server has all of them in flight (as many temporary files in its
  storage's ``tmp/``), then the rest: every upload open on the server at once.

Memory, in both concurrent phases: VmRSS right after the sequential phases is
the base; before each phase VmHWM is reset (``5`` into
``/proc/<pid>/clear_refs``) and a thread samples VmRSS and the number of
temporary files (uploads in flight) every 5 ms; the peak is the higher of
VmHWM at the end (the kernel updates it lazily) and the highest sample. The
growth (peak - base) is what 50 bodies of 5 MB cost the server: far below
250 MB when it streams them.

Nothing here asserts on time. stdout: one JSON line (machine, arguments,
results), then the Markdown table of docs/benchmarks.md; server logs in
``bench/results/files-<system>.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.machine import describe
from bench.run import (
    RESULTS,
    cpu_seconds,
    free_port,
    log,
    private_redis,
    start_profiler,
    stop_proc,
    stop_profiler,
    wait_for_port,
)
from bench.systems import ROOT, Layout, uvicorn_argv
from rtportal.crypto.attachment import encrypt_bytes

__all__ = ["main"]

PLAINTEXT = 5_000_000  # "a 5 MB file"
MB = 1_000_000
PG_DB = "rtportal_bench_files"
MATTERS = ["FILS0000", "FILC0000"]  # sequential phases, concurrent phases
PIECE = 64 * 1024  # a gated upload's pieces
HELD_WAIT_S = 20.0  # for all held uploads to be open on the server (under the 30 s idle timeout)


@dataclass
class Target:
    """One server under test: how to start it and how to reach its files."""

    name: str
    label: str
    argv: list[str]
    env: dict[str, str]
    upload_path: Callable[[str], str]  # matter -> path
    download_path: Callable[[str, str], str]  # matter, file id -> path
    headers: Callable[[int], dict[str, str]]  # matter index -> auth headers
    parts_dir: Path  # where bodies in flight are written
    backend_pids: Callable[[], list[int]] = list


def peer_target(port: int, tmp: Path) -> Target:
    root = tmp / "peer"
    return Target(
        "peer",
        "starlette + aiofiles + FileResponse (no auth, no database, no checks)",
        uvicorn_argv("bench.servers.files_peer:app", port, lifespan="off"),
        {"BENCH_FILES_DIR": str(root)},
        lambda m: "/files",
        lambda m, f: f"/files/{f}",
        lambda m: {},
        root / "tmp",
    )


def rtportal_target(name: str, port: int, tmp: Path, redis: tuple[str, int], pg_url: str) -> Target:
    from bench.rtportal_system import make_rtportal

    layout = Layout("files", MATTERS, 1, 1, len(MATTERS))
    system = make_rtportal(
        name, port, "FIL", 0, tmp, *redis, pg_url, layouts={"files": layout}, db_name=PG_DB
    )
    system.env["RTPORTAL_PORTAL_QUOTA_BYTES"] = str(2**34)
    auth = system.layouts["files"].headers
    return Target(
        name,
        system.label,
        system.argv,
        system.env,
        lambda m: f"/api/v1/matters/{m}/files",
        lambda m, f: f"/api/v1/matters/{m}/files/{f}",
        lambda m: dict(auth(m, 0)),
        tmp / name / "files" / "tmp",  # RTPORTAL_FILES_DIR's default under the data dir
        system.backend_pids,
    )


# --- /proc ------------------------------------------------------------------------------
def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


@contextmanager
def memory(pid: int, parts_dir: Path, base_kib: int) -> Iterator[dict[str, Any]]:
    """The server's RSS over the block, in MB: the peak (VmHWM, reset at the start, or
    the highest VmRSS sampled every 5 ms, whichever is higher) and its growth over
    ``base_kib``; and the most files seen at once in ``parts_dir`` (uploads in flight)."""
    before = _status_kib(pid, "VmRSS")
    hwm_reset = _reset_hwm(pid)
    peaks = {"rss_kib": before, "in_flight": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks["rss_kib"] = max(peaks["rss_kib"], _status_kib(pid, "VmRSS"))
            peaks["in_flight"] = max(peaks["in_flight"], len(os.listdir(parts_dir)))
            done.wait(0.005)  # reason: sampling /proc has no event to await

    out: dict[str, Any] = {}
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()
    hwm = _status_kib(pid, "VmHWM") if hwm_reset else 0
    peak = max(hwm, peaks["rss_kib"])
    out.update(
        in_flight_max=peaks["in_flight"],
        rss_before_mb=round(before * 1024 / MB, 1),
        rss_base_mb=round(base_kib * 1024 / MB, 1),
        rss_peak_mb=round(peak * 1024 / MB, 1),
        rss_growth_mb=round((peak - base_kib) * 1024 / MB, 1),
        rss_after_mb=round(_status_kib(pid, "VmRSS") * 1024 / MB, 1),
        peak_from="VmHWM" if hwm >= peaks["rss_kib"] else "sampled VmRSS",
    )


# --- the client ----------------------------------------------------------------------------
@dataclass
class Blob:
    data: bytes
    digest: str  # Content-Digest

    @classmethod
    def make(cls, plaintext: int = PLAINTEXT) -> Blob:
        _att_id, _fk, data = encrypt_bytes(secrets.token_bytes(plaintext))
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return cls(data, f"sha-256=:{digest}:")


async def upload(
    client: httpx.AsyncClient, t: Target, m: int, blob: Blob, gate: asyncio.Event | None = None
) -> str:
    """Upload ``blob`` to matter ``m``: in one write, or with a ``gate``, in 64 KiB
    pieces that stop at the half until the gate opens."""
    headers = {
        **t.headers(m),
        "Content-Type": "application/octet-stream",
        "Content-Digest": blob.digest,
        "Content-Length": str(len(blob.data)),
    }
    content: bytes | AsyncIterator[bytes] = blob.data
    if gate is not None:
        content = _gated(blob.data, gate)
    r = await client.post(t.upload_path(MATTERS[m]), content=content, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"{t.name}: upload answered {r.status_code} {r.text[:200]}")
    return str(r.json()["file"]["id"])


async def _gated(data: bytes, gate: asyncio.Event) -> AsyncIterator[bytes]:
    half = len(data) // 2
    for i in range(0, len(data), PIECE):
        if i >= half and not gate.is_set():
            await gate.wait()
        yield data[i : i + PIECE]


async def held_open(client: httpx.AsyncClient, t: Target, blob: Blob, k: int) -> dict[str, Any]:
    """``k`` uploads that send half their body, then wait until the server has all
    ``k`` in flight (``k`` temporary files in its storage) before sending the rest."""
    gate = asyncio.Event()
    tasks = [asyncio.create_task(upload(client, t, 1, blob, gate)) for _ in range(k)]
    deadline = time.monotonic() + HELD_WAIT_S
    while len(os.listdir(t.parts_dir)) < k and time.monotonic() < deadline:
        if any(task.done() for task in tasks):
            break  # one failed (or the server finished one: then not all are open)
        await asyncio.sleep(0.01)  # reason: the server's files, not an event of ours
    at_gate = len(os.listdir(t.parts_dir))
    gate.set()
    ids = await asyncio.gather(*tasks)
    return {"uploads": len(set(ids)), "in_flight_at_half": at_gate}


async def download(client: httpx.AsyncClient, t: Target, m: int, file_id: str) -> int:
    got = 0
    path = t.download_path(MATTERS[m], file_id)
    async with client.stream("GET", path, headers=t.headers(m)) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{t.name}: download answered {r.status_code}")
        async for piece in r.aiter_raw():
            got += len(piece)
    return got


class Phase:
    """Wall time, server and backend CPU and this client's CPU over one phase."""

    def __init__(self, t: Target, pid: int, nbytes: int) -> None:
        self.t, self.pid, self.nbytes = t, pid, nbytes

    def __enter__(self) -> Phase:
        self.backend = _cpu_by_pid(self.t.backend_pids())
        self.server = cpu_seconds([self.pid])
        self.client = time.process_time()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.client = time.process_time() - self.client
        self.server = cpu_seconds([self.pid]) - self.server
        after = _cpu_by_pid(self.t.backend_pids())  # a backend started meanwhile counts too
        self.backend = sum(cpu - self.backend.get(pid, 0.0) for pid, cpu in after.items())

    def figures(self) -> dict[str, Any]:
        mb = self.nbytes / MB
        return {
            "mb": round(mb, 1),
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(mb / self.seconds, 1),
            "server_cpu_ms_per_mb": round(self.server * 1000 / mb, 2),
            "backend_cpu_ms_per_mb": round(self.backend * 1000 / mb, 2),
            "client_cpu_ms_per_mb": round(self.client * 1000 / mb, 2),
        }


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


async def sequential(
    client: httpx.AsyncClient, t: Target, pid: int, blob: Blob, n: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``n`` uploads one after the other, then each downloaded: their figures."""
    size = len(blob.data)
    with Phase(t, pid, n * size) as up:
        ids = [await upload(client, t, 0, blob) for _ in range(n)]
    with Phase(t, pid, n * size) as down:
        for file_id in ids:
            if await download(client, t, 0, file_id) != size:
                raise RuntimeError(f"{t.name}: a download came back short")
    return up.figures(), down.figures()


async def measure(
    t: Target, port: int, pid: int, blob: Blob, n: int, k: int, rounds: int, where: list[str]
) -> dict[str, Any]:
    """The figures of one server; ``where[0]`` names the phase running (for a failure)."""
    size = len(blob.data)
    # Idle connections are dropped here well before uvicorn's keep-alive timeout
    # (5 s) closes them: httpx's default expiry is those same 5 s, a race.
    limits = httpx.Limits(
        max_connections=k + 4, max_keepalive_connections=k + 4, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits
    ) as client:
        for _ in range(2):  # warm-up: imports, pools, first writes
            assert await download(client, t, 0, await upload(client, t, 0, blob)) == size
        out: dict[str, Any] = {"load_avg": [round(x, 2) for x in os.getloadavg()]}
        where[0] = "sequential"
        seq = [await sequential(client, t, pid, blob, n) for _ in range(rounds)]
        ups, downs = [up for up, _ in seq], [down for _, down in seq]
        out.update(upload=_median(ups), download=_median(downs))
        out.update(upload_rounds=ups, download_rounds=downs)
        # The same with empty files (37 bytes): what a request costs whatever its size.
        where[0] = "empty files"
        empty = Blob.make(0)
        with Phase(t, pid, 0) as up:
            ids = [await upload(client, t, 0, empty) for _ in range(n * rounds)]
        with Phase(t, pid, 0) as down:
            for file_id in ids:
                await download(client, t, 0, file_id)
        out["empty_files"] = {
            f"{what}_{cpu}_ms": round(getattr(phase, cpu) * 1000 / len(ids), 2)
            for what, phase in (("upload", up), ("download", down))
            for cpu in ("server", "backend")
        }
        # Growth is counted from the RSS after the sequential phases (pools, caches
        # and the allocator's arenas at their steady size), for every round after.
        base = _status_kib(pid, "VmRSS")
        together = []
        where[0] = "concurrent"
        for _ in range(rounds):
            with memory(pid, t.parts_dir, base) as mem, Phase(t, pid, k * size) as phase:
                ids = await asyncio.gather(*(upload(client, t, 1, blob) for _ in range(k)))
            together.append({"uploads": len(set(ids)), **phase.figures(), **mem})
        worst = max(together, key=lambda r: r["rss_growth_mb"])
        out["concurrent"] = {
            **_median([{f: v for f, v in r.items() if f != "peak_from"} for r in together]),
            **{f: v for f, v in worst.items() if f.startswith("rss_") or f == "peak_from"},
            "in_flight_max": max(r["in_flight_max"] for r in together),
        }
        out["concurrent_rounds"] = together
        where[0] = "held open"
        with memory(pid, t.parts_dir, base) as mem:
            held = await held_open(client, t, blob, k)
        out["held_open"] = {**held, **mem}
    return out


def bench_target(
    t: Target, port: int, blob: Blob, n: int, k: int, rounds: int, profile: bool = False
) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"files-{t.name}-{time.strftime('%H%M%S')}.log"  # one per run
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            t.argv,
            env={**os.environ, **t.env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    where = ["start"]
    try:
        wait_for_port(port, proc)
        log(f"{t.name}: server pid {proc.pid} on port {port}")
        profiler = start_profiler(proc.pid, t.name, "files") if profile else None
        res = asyncio.run(measure(t, port, proc.pid, blob, n, k, rounds, where))
        if profiler is not None:
            res["profile"] = stop_profiler(*profiler)
    except Exception as exc:  # one system failing must not hide the others' figures
        log(f"{t.name}: FAILED in {where[0]}: {exc!r} (server log: {log_path})")
        res = {"error": f"{where[0]}: {exc!r}"}
    finally:
        stop_proc(proc)
    return {"system": t.name, "label": t.label, **res}


def table(results: list[dict[str, Any]], k: int) -> None:
    """The Markdown tables of docs/benchmarks.md: speed and CPU, then memory."""
    ok = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            print(f"\n{r['system']}: {r['error']}")

    def cpu(p: dict[str, Any]) -> str:
        extra = f" (+{p['backend_cpu_ms_per_mb']} backend)" if p["backend_cpu_ms_per_mb"] else ""
        return f"{p['server_cpu_ms_per_mb']}{extra}"

    print(
        "\n| system | upload MB/s | server CPU ms/MB | download MB/s | server CPU ms/MB "
        f"| {k} at once: MB/s | server CPU ms/MB | empty file: server CPU ms, up + down |"
    )
    print("| --- " * 8 + "|")
    for r in ok:
        up, down, c, e = r["upload"], r["download"], r["concurrent"], r["empty_files"]
        fixed = f"{e['upload_server_ms']} + {e['download_server_ms']}"
        if e["upload_backend_ms"] or e["download_backend_ms"]:
            fixed += f" (+{e['upload_backend_ms']} + {e['download_backend_ms']} backend)"
        print(
            f"| {r['system']} | {up['mb_per_s']} | {cpu(up)} | {down['mb_per_s']} "
            f"| {cpu(down)} | {c['mb_per_s']} | {cpu(c)} | {fixed} |"
        )
    print(
        f"\n| system | {k} at once: RSS base → peak (growth) MB | in flight (max) "
        f"| {k} held open at the half: RSS base → peak (growth) MB | in flight |"
    )
    print("| --- " * 5 + "|")
    for r in ok:
        c, h = r["concurrent"], r["held_open"]
        print(
            f"| {r['system']} | {c['rss_base_mb']} → {c['rss_peak_mb']} (+{c['rss_growth_mb']}) "
            f"| {c['in_flight_max']} | {h['rss_base_mb']} → {h['rss_peak_mb']} "
            f"(+{h['rss_growth_mb']}) | {h['in_flight_at_half']} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 sequential files, 1 round")
    parser.add_argument("--backend", choices=["sqlite", "pg"], default=None, help="default both")
    parser.add_argument("--files", type=int, default=None, help="sequential files (20)")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=None, help="of each speed phase (5)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server with py-spy over its whole run (figures then include py-spy's "
        "cost): bench/results/profile-<system>-files-summary.txt",
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    n = args.files or (5 if args.quick else 20)
    rounds = args.rounds or (1 if args.quick else 5)
    names = ["peer"] + [f"rtportal-{b}" for b in ("sqlite", "pg") if args.backend in (None, b)]
    machine = describe()
    log(f"files on {machine['cpu']} x{machine['cores']}, load {machine['load_avg_at_start']}")
    blob = Blob.make()
    results: list[dict[str, Any]] = []
    need_redis = "rtportal-pg" in names
    with private_redis() if need_redis else nullcontext(("", 0)) as redis:
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                port = free_port()
                try:
                    if name == "peer":
                        target = peer_target(port, Path(tmp))
                    else:
                        target = rtportal_target(name, port, Path(tmp), redis, args.pg_url)
                except Exception as exc:
                    log(f"{name}: cannot set up: {exc!r}")
                    results.append({"system": name, "error": repr(exc)})
                    continue
                log(f"== {name}: {target.label}")
                results.append(
                    bench_target(target, port, blob, n, args.concurrent, rounds, args.profile)
                )
    summary = {"machine": machine, "args": vars(args), "blob_bytes": len(blob.data)}
    print(json.dumps({**summary, "results": results}))
    table(results, args.concurrent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
