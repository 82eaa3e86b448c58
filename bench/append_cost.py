"""In-process cost of rtportal's write path per message, without sockets.

    python -m bench.append_cost [--n 2000] [--pg URL] [--concurrency 1,8,64,256]
                                [--matters 100] [--mode groupcommit|direct|batch] [--profile]

``--mode groupcommit`` (default) runs exactly what the websocket endpoint
runs for a ``send``: ``GroupCommit.append(principal, action, matter)`` with
the matter from the connection's access cache, so concurrent sends share a
transaction and one ``hub.publish`` (memory broker, no listeners). Each of
``--concurrency`` senders is a connection with one send in flight at a
time, on matter ``sender % --matters`` (256 senders on 100 matters: two or
three senders per matter, so a batch often holds several sends of one
matter). ``--mode direct`` is the older one-transaction-per-send path
(a ``Unit``: ``membership.can_access`` + ``append``, commit, publish), kept to
compare. ``--mode batch`` isolates the write path's cost per event from
group commit's timing (whose batch sizes vary with the speed of a commit):
one sender commits batches of exactly ``--concurrency`` sends
(``stream.commit_batch``, what GroupCommit calls, the sends spread over the
matters as above), then publishes them. Against a fresh SQLite file and,
with ``--pg``, a fresh PostgreSQL database per run; prints one JSON line
per backend and concurrency: messages/s, messages per write transaction,
this process's CPU per message (not the PostgreSQL server's), and per-send
latency p50/p99 (call to ack). With ``--profile``, cProfile's top
functions (``APPEND_COST_SORT``, default cumulative time) go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
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

from sqlalchemy import event as sa_event

from rtportal.access import membership
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.db import Database, migrate
from rtportal.db.models import Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter
from rtportal.events import log as stream
from rtportal.events.batch import AppendItem
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.send import Send
from rtportal.events.unit import Unit
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings

__all__ = ["measure"]

_BLOB = os.urandom(256)


async def measure(
    url: str,
    n: int,
    *,
    concurrency: int = 1,
    matters: int = 100,
    mode: str = "groupcommit",
    profile: bool = False,
    data_dir: Path,
) -> dict[str, Any]:
    """``n`` sends by ``concurrency`` senders (one in flight each) over ``matters`` matters."""
    await migrate.upgrade(url)
    settings = Settings.from_env({"RTPORTAL_DATA_DIR": str(data_dir), "RTPORTAL_DATABASE_URL": url})
    db = Database(url)
    n_matters = max(1, min(matters, concurrency))
    refs = [f"APPC{i:04d}" for i in range(n_matters)]
    hub = Hub(db, broker_from_url("memory://"), settings, ACCESS_QUERIES)
    committer = GroupCommit(db, hub.publish, settings, membership.can_access)
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Append Cost")
            who = await create_contact(session, firm, display_name="Client")
            for ref in refs:
                matter = await create_matter(session, firm, title="append", reference=ref)
                await add_member(session, matter, who)
        cached: dict[str, Matter] = {}
        async with db.read() as session:
            for ref in refs:  # the endpoint's per-connection access cache
                cached[ref] = await membership.can_access(session, who, ref)

        latencies: list[float] = []

        async def one(ref: str, sender: int, i: int) -> None:
            t = time.perf_counter()
            client_id = f"ac-{sender}-{i}"
            payload = {"sent_at": i, "thread": str(sender)}
            if mode == "groupcommit":
                send = Send(ref, "message", "portal", payload, _BLOB, client_id)
                await committer.append(who, send, cached[ref])
            else:
                async with Unit(db, hub.publish, settings) as unit:
                    m = await membership.can_access(unit.session, who, ref)
                    await unit.append(
                        matter=m,
                        actor=who,
                        kind="message",
                        audience="portal",
                        payload=payload,
                        blob=_BLOB,
                        client_id=client_id,
                    )
            latencies.append(time.perf_counter() - t)

        async def sender(k: int, count: int, start: int) -> None:
            ref = refs[k % n_matters]
            for i in range(start, start + count):
                await one(ref, k, i)

        async def batches(count: int, start: int) -> None:
            # One batch per round: "sender" k's i-th send, for every k.
            for i in range(start, start + count):
                t = time.perf_counter()
                items = [
                    AppendItem(
                        cached[refs[k % n_matters]],
                        who,
                        Send(
                            refs[k % n_matters],
                            "message",
                            "portal",
                            {"sent_at": i, "thread": str(k)},
                            _BLOB,
                            f"ac-{k}-{i}",
                        ),
                    )
                    for k in range(concurrency)
                ]
                results = await stream.commit_batch(db, items, settings)
                events = [r[0] for r in results if not isinstance(r, Exception) and r[1]]
                if len(events) != concurrency:
                    raise SystemExit(f"batch failed: {results}")
                await hub.publish(events)
                latencies.extend([time.perf_counter() - t] * concurrency)

        async def run(count: int, start: int) -> None:
            if mode == "batch":
                await batches(count, start)
            else:
                await asyncio.gather(*(sender(k, count, start) for k in range(concurrency)))

        # Warm caches and the pool.
        await run(3, 10**9)  # ids and sent_at values the measured run never uses
        latencies.clear()
        per_sender = max(1, n // concurrency)
        prof = cProfile.Profile() if profile else None
        begins = 0

        def began(_conn: Any) -> None:
            nonlocal begins
            begins += 1

        # Write transactions (group commit: batches): CPU per message falls
        # with the batch size, which depends on how long a commit takes.
        sa_event.listen(db.engine.sync_engine, "begin", began)
        cpu0, t0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        await run(per_sender, 0)
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        sa_event.remove(db.engine.sync_engine, "begin", began)
        async with db.read() as session:  # every send landed, no gaps
            heads = await stream.heads(session, [m.id for m in cached.values()])
        expected = (per_sender + 3) * concurrency
        if sum(heads.values()) != expected:
            raise SystemExit(f"lost sends: heads sum {sum(heads.values())} != {expected}")
    finally:
        await db.close()
    done = len(latencies)
    latencies.sort()
    out: dict[str, Any] = {
        "backend": url.split(":", 1)[0],
        "mode": mode,
        "concurrency": concurrency,
        "matters": n_matters,
        "messages": done,
        "messages_per_s": round(done / wall, 1),
        "cpu_ms_per_message": round(1000 * cpu / done, 3),
        "messages_per_transaction": round(done / max(1, begins), 1),
        "latency_p50_ms": round(1000 * latencies[done // 2], 2),
        "latency_p99_ms": round(1000 * latencies[min(done - 1, int(done * 0.99))], 2),
    }
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(
            os.environ.get("APPEND_COST_SORT", "cumulative")
        ).print_stats(35)
        out["profile"] = buf.getvalue()
    return out


async def _recreate(admin_url: str, name: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
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
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument(
        "--pg",
        default=None,
        help="admin URL (a fresh database is made beside it), "
        "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--concurrency", default="1,8,64,256", help="comma-separated senders")
    parser.add_argument("--matters", type=int, default=100)
    parser.add_argument("--mode", choices=("groupcommit", "direct", "batch"), default="groupcommit")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backends = ([] if args.no_sqlite else ["sqlite"]) + (["pg"] if args.pg else [])
        for backend in backends:
            for c in (int(x) for x in args.concurrency.split(",")):
                if backend == "pg":
                    url = asyncio.run(_recreate(args.pg, f"rtportal_bench_append{c}"))
                else:
                    url = f"sqlite+aiosqlite:///{Path(tmp) / f'append-{c}.db'}"
                res = asyncio.run(
                    measure(
                        url,
                        args.n,
                        concurrency=c,
                        matters=args.matters,
                        mode=args.mode,
                        profile=args.profile,
                        data_dir=Path(tmp),
                    )
                )
                prof = res.pop("profile", None)
                print(json.dumps(res), flush=True)
                if prof:
                    print(prof, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
