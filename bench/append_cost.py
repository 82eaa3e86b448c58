"""In-process cost of rtportal's write path per message, without sockets.

    python -m bench.append_cost [--n 500] [--pg URL] [--profile]

Runs exactly what the websocket endpoint runs for one ``send`` (``db.write()``
transaction: ``stream.can_access`` + ``stream.append``, commit) ``--n`` times
against a fresh SQLite file and, with ``--pg``, a fresh PostgreSQL database,
with 1 and with 8 concurrent writers (each on its own matter, like ``rooms``),
and prints messages/s, process CPU per message and append latency p50/p99
(one JSON line per backend and concurrency). With ``--profile``, cProfile's top functions by
cumulative time show which layer (SQLAlchemy ORM, driver, rtportal) the CPU
goes to. This isolates the persistence cost that the end-to-end benchmark
(``bench/run.py``) pays once per message before fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rtportal import migrate, stream
from rtportal.db import Database
from rtportal.demo import add_member, create_contact, create_firm, create_matter

__all__ = ["measure"]

_BLOB = os.urandom(256)


async def measure(
    url: str, n: int, profile: bool, concurrency: int = 1, writer_lock: bool = False
) -> dict[str, Any]:
    """``n`` appends by ``concurrency`` tasks, each on its own matter (as in ``rooms``)."""
    await migrate.upgrade(url)
    db = Database(url)
    refs = [f"APPC{i:04d}" for i in range(concurrency)]
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Append Cost")
            who = await create_contact(session, firm, display_name="Client")
            for ref in refs:
                matter = await create_matter(session, firm, title="append", reference=ref)
                await add_member(session, matter, who)

        latencies: list[float] = []

        # --writer-lock: what-if experiment, not rtportal's code: one asyncio.Lock
        # around each write transaction, so a process's writers queue in FIFO order
        # instead of meeting in SQLite's busy handler (which sleeps with back-off).
        lock = asyncio.Lock() if writer_lock else contextlib.nullcontext()

        async def one(ref: str, i: int) -> None:
            t = time.perf_counter()
            async with lock, db.write() as session:
                m = await stream.can_access(session, who, ref)
                await stream.append(
                    session,
                    matter=m,
                    actor=who,
                    kind="message",
                    audience="portal",
                    payload={"t": i, "s": 1},
                    blob=_BLOB,
                    client_id=f"ac-{ref}-{i}",
                )
            latencies.append(time.perf_counter() - t)

        async def writer(ref: str, count: int, start: int) -> None:
            for i in range(start, start + count):
                await one(ref, i)

        await asyncio.gather(*(writer(ref, 10, -1000) for ref in refs))  # warm caches, pool
        latencies.clear()
        prof = cProfile.Profile() if profile else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        await asyncio.gather(*(writer(ref, n // concurrency, 0) for ref in refs))
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await db.close()
    done = len(latencies)
    latencies.sort()
    out: dict[str, Any] = {
        "backend": url.split(":", 1)[0],
        "concurrency": concurrency,
        "writer_lock": writer_lock,
        "messages": done,
        "messages_per_s": round(done / wall, 1),
        "cpu_ms_per_message": round(1000 * cpu / done, 3),
        "latency_p50_ms": round(1000 * latencies[done // 2], 2),
        "latency_p99_ms": round(1000 * latencies[min(done - 1, int(done * 0.99))], 2),
    }
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(35)
        out["profile"] = buf.getvalue()
    return out


async def _recreate(admin_url: str, name: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument(
        "--pg", default=None, help="admin URL, e.g. postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated writer counts")
    parser.add_argument(
        "--writer-lock",
        action="store_true",
        help="what-if: serialise write transactions with an asyncio.Lock (not rtportal's code)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = ["sqlite"] + (["pg"] if args.pg else [])
        for i, url in enumerate(urls):
            for c in (int(x) for x in args.concurrency.split(",")):
                fresh = url if i else f"sqlite+aiosqlite:///{Path(tmp) / f'append-{c}.db'}"
                if i:
                    fresh = asyncio.run(_recreate(args.pg, f"rtportal_bench_append{c}"))
                res = asyncio.run(measure(fresh, args.n, args.profile, c, args.writer_lock))
                prof = res.pop("profile", None)
                print(json.dumps(res), flush=True)
                if prof:
                    print(prof, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
