"""How long a bare PostgreSQL commit takes on this machine (its disk's fsync).

    python -m bench.pg_commit_probe [--url postgresql://postgres@127.0.0.1:5432/test] [--seconds 10]

One connection, one single-row INSERT per 10 ms in its own transaction
(``synchronous_commit`` as the server is configured: on by default, so each
commit waits for the WAL fsync), for ``--seconds``. Prints commit latency
p50/p99/p99.9/max and how many commits took over 50 and 100 ms. No rtportal
code runs: this is the floor that every durable commit on the machine pays,
and the runner (``bench/run.py``) records it beside the rtportal-pg rows,
because a fsync stall of a few hundred ms holds every message being
committed at that moment and shows directly in a p99 (fan-out to 1,000
members turns one stalled message into 1,000 late deliveries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import asyncpg

__all__ = ["probe"]


async def probe(url: str, seconds: float = 10.0) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    table = f"rtportal_commit_probe_{int(time.time() * 1000)}"
    try:
        await conn.execute(f"CREATE TABLE {table} (x int)")
        setting = await conn.fetchval("SHOW synchronous_commit")
        latencies: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            await conn.execute(f"INSERT INTO {table} VALUES (1)")  # autocommit: one commit
            latencies.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.01)  # reason: a steady 100 commits/s, not a busy loop
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
    latencies.sort()
    n = len(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(n - 1, int(q / 100 * n))], 2)

    return {
        "commits": n,
        "synchronous_commit": setting,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": round(latencies[-1], 1),
        "over_50ms": sum(1 for v in latencies if v > 50),
        "over_100ms": sum(1 for v in latencies if v > 100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.url, args.seconds))))


if __name__ == "__main__":
    main()
