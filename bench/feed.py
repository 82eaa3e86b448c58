"""The staff activity feed's first page, SQLite and PostgreSQL side by side.

    python -m bench.feed [--matters 500] [--events 200000] [--noise 200000]
                         [--runs 200] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

One firm with ``--matters`` matters and ``--events`` events spread over them
(bench.threads_seed: client and staff messages, notes, phases, access
records, bot cards, key events), a second firm as busy (``--noise`` events on
100 matters, interleaved in time) whose rows the first firm's feed must
skip, read marks for half of each matter's threads and a tag on one message
in 97. The last case (``unread=1, all read``) reads as another staff member
who wrote nothing and has read every thread to its end: the unread filter
with nothing to show (3 warm-up reads, at most 20 timed, server time of 10).
Each case reads a page of 50 exactly as ``GET /api/v1/feed`` does
(``rtportal.threads.feed.read_feed`` in a read session of ``Database``:
statements, rows, the wire views), ``--runs`` times after 20 warm-up reads;
the table gives the median and p95 in ms. On PostgreSQL the server's own
time for the page's statements is measured too (``server``: planning +
execution by ``EXPLAIN (ANALYZE, TIMING OFF)``, summed over the statements,
median and min of 30): the database's cost apart from the client process.
The PostgreSQL database ``--pg-name`` is recreated beside the ``--pg`` URL
and vacuumed and analysed after the seed (as autovacuum would have).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event as sa_event
from sqlalchemy import text

from bench.append_cost import _recreate
from bench.machine import describe
from bench.threads_seed import seed_events, seed_matters, seed_read_marks, seed_tag
from rtportal.db import Database, migrate
from rtportal.demo import create_contact, create_firm, create_staff
from rtportal.events.cursor import FeedCursor
from rtportal.principal import Principal
from rtportal.threads.feed import FeedQuery, read_feed

__all__ = ["analyse", "main", "table", "timed"]

TAG = "benchTAGbenchTAGbench0"
THREADS = 10
PAGE = 50


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 20) -> dict[str, float]:
    """Best, median and p95 (ms) of ``runs`` calls after 20 warm-up calls, and the
    median CPU time of this process per call (SQLite runs in it; PostgreSQL not)."""
    for _ in range(warmup):
        await fn()
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        await fn()
        times.append((time.perf_counter_ns() - start) / 1e6)
        cpu.append((time.process_time_ns() - start_cpu) / 1e6)
    times.sort()
    return {
        "min": round(times[0], 2),
        "p50": round(statistics.median(times), 2),
        "cpu": round(statistics.median(cpu), 2),
        "p95": round(times[int(len(times) * 0.95) - 1], 2),
    }


async def _seed(url: str, matters: int, events: int, noise: int) -> tuple[Principal, Principal]:
    await migrate.upgrade(url)
    db = Database(url)
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Feed & Co")
            staff = await create_staff(session, firm, email="f@f.test", display_name="Fay")
            bot = await create_staff(session, firm, email="b@f.test", display_name="B", role="bot")
            contact = await create_contact(session, firm, display_name="Cal")
            other = await create_firm(session, "Noise & Co")
            await seed_matters(session, firm.id, "FEED", matters)
            await seed_matters(session, other.id, "NOIS", 100)
            firm_id, other_id = firm.id, other.id
            ids = {"staff_id": staff.id, "contact_id": contact.id, "bot_id": bot.id}
            principal = Principal("staff", staff.id, firm.id, "Fay", role="staff")
            dee = await create_staff(session, firm, email="d@f.test", display_name="Dee")
            reader = Principal("staff", dee.id, firm.id, "Dee", role="staff")
        # Interleave the two firms in time: half of each, then the other halves.
        for label in ("a", "b"):
            async with db.write() as session:
                half = {"threads": THREADS, "label": label, **ids}
                await seed_events(session, firm_id=firm_id, n=events // 2, **half)
                if noise:
                    await seed_events(session, firm_id=other_id, n=noise // 2, **half)
        async with db.write() as session:
            await seed_read_marks(session, firm_id, f"s{principal.id}", THREADS, behind=5)
            # Dee wrote nothing and has read every thread to its end.
            await seed_read_marks(session, firm_id, f"s{reader.id}", 2 * THREADS, behind=0)
            await seed_tag(session, firm_id, TAG, every=97)
        await analyse(db)
        return principal, reader
    finally:
        await db.close()


async def analyse(db: Database) -> None:
    """Statistics (and PostgreSQL's visibility map) as a database that ran a while has."""
    if db.backend == "postgresql":
        async with db.autocommit() as conn:
            await conn.execute("VACUUM ANALYZE")
    else:
        async with db.write() as session:
            await session.execute(text("ANALYZE"))


CASES: dict[str, dict[str, Any]] = {
    "all types": {},
    "type=client_message": {"type": "client_message"},
    "type=phase": {"type": "phase"},
    "unread=1": {"unread": True},
    "tag": {"tag": TAG},
    "matter=FEED0007": {"matter": "FEED0007"},
}


ALL_READ = "unread=1, all read"  # the unread filter's worst case: nothing to show


async def measure(
    url: str, principal: Principal, reader: Principal, runs: int
) -> dict[str, dict[str, float]]:
    db = Database(url)
    out: dict[str, dict[str, float]] = {}
    try:
        for name, params in CASES.items():
            q = FeedQuery(limit=PAGE, **params)

            async def page(q: FeedQuery = q) -> Any:
                async with db.read() as session:
                    return await read_feed(session, principal, q)

            first = await page()
            assert first.rows, name  # every case has rows to show
            out[name] = await timed(page, runs)
            if db.backend == "postgresql":
                out[name].update(await server_time(db, page))
            if name == "all types":  # and the page after it, by its cursor
                before = FeedCursor(first.last_id).before if first.last_id else None
                second = FeedQuery(limit=PAGE, before=before)

                async def next_page(second: FeedQuery = second) -> Any:
                    async with db.read() as session:
                        return await read_feed(session, principal, second)

                out["all types, 2nd page"] = await timed(next_page, runs)

        async def all_read() -> Any:
            async with db.read() as session:
                return await read_feed(session, reader, FeedQuery(limit=PAGE, unread=True))

        assert not (await all_read()).rows  # every matter walked to its start
        out[ALL_READ] = await timed(all_read, min(runs, 20), warmup=3)
        if db.backend == "postgresql":
            out[ALL_READ].update(await server_time(db, all_read, repeat=10))
    finally:
        await db.close()
    return out


async def server_time(
    db: Database, page: Callable[[], Awaitable[Any]], repeat: int = 30
) -> dict[str, float]:
    """PostgreSQL's planning + execution time (ms) of the statements one page sends,
    summed: median and min of ``repeat`` ``EXPLAIN (ANALYZE, TIMING OFF)`` runs."""
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, params))

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await page()
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    totals = []
    async with db.autocommit() as conn:
        for _ in range(repeat):
            total = 0.0
            for statement, params in sent:
                explain = "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + statement
                value = await conn.fetchval(explain, *params)  # decoded or not, per codec
                plan = (json.loads(value) if isinstance(value, str) else value)[0]
                total += plan["Planning Time"] + plan["Execution Time"]
            totals.append(total)
    return {"server": round(statistics.median(totals), 2), "server_min": round(min(totals), 2)}


def _cell(r: dict[str, float]) -> str:
    cell = f"{r['min']} / {r['p50']} / {r['p95']} ({r['cpu']})"
    if "server" in r:
        cell += f" [server {r['server']} ({r['server_min']})]"
    return cell


def table(what: str, results: dict[str, dict[str, dict[str, float]]]) -> None:
    """The markdown table of docs/benchmarks.md: one row per case, backends side by side."""
    backends = list(results)
    head = " | ".join(f"{b}: min / p50 / p95 (cpu p50) ms" for b in backends)
    print(f"\n| {what} | {head} |")
    print("| --- | " + " | ".join("---" for _ in backends) + " |")
    for case in results[backends[0]]:
        cells = [_cell(results[b][case]) for b in backends]
        print(f"| {case} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--matters", type=int, default=500)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--noise", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-name", default="rtportal_bench_feed", help="database to recreate")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'feed.db'}"}
        if not args.no_pg:
            urls["postgresql"] = asyncio.run(_recreate(args.pg, args.pg_name))
        for backend, url in urls.items():
            start = time.monotonic()
            principal, reader = asyncio.run(_seed(url, args.matters, args.events, args.noise))
            print(f"# {backend}: seeded in {time.monotonic() - start:.1f} s", flush=True)
            results[backend] = asyncio.run(measure(url, principal, reader, args.runs))
    print(json.dumps({"machine": describe(), "args": vars(args), "results": results}))
    table("first page of 50", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
