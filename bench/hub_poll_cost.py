"""Cost of one hub safety poll (heads + session and membership re-checks).

    python -m bench.hub_poll_cost                      # SQLite (temp file)
    python -m bench.hub_poll_cost --pg postgresql+asyncpg://postgres@127.0.0.1:5432/hubpoll

Builds a real ``Hub`` (memory broker, no poll task) on a real database
seeded with contacts, their login tokens and their memberships (every
listener is a distinct contact with its own session, as in the benchmark),
joins N fake listeners and times complete polls:

* ``wall``  the time from start to end of the poll (``time.perf_counter``),
* ``cpu``   the process CPU time it took (every thread, so SQLite's
  driver thread too),
* ``block`` the longest synchronous stretch of the event loop during it: a
  ticker task yields (``asyncio.sleep(0)``) in a loop and records the
  largest gap between two of its turns, in wall time (``block``: includes
  being preempted by other processes) and in the loop thread's CPU time
  (``block_cpu``: the stretch itself). That is what an in-flight message
  would wait behind. Measured in a second run of the same poll, as the
  ticker burns CPU of its own.

Two kinds of pass: ``poll`` (one periodic poll: heads and one slice of the
re-checks) and ``full`` (heads and every re-check, what a broker reset
runs). A hub without ``Hub.poll`` (one pass that re-checks everything)
has that pass timed as both, so two versions compare on one machine.

Layouts: ``fanout`` (1 matter x N listeners) and ``rooms`` (N/10 matters x 10).
Runs on uvloop (as the server does) unless ``--no-uvloop``. ``--pg`` must
name a scratch database: the migrations create its tables and every run
adds its own firm, matters, contacts and tokens (nothing is deleted; drop
the database afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from rtportal.access.queries import ACCESS_QUERIES
from rtportal.access.sessions import hash_token
from rtportal.db import Database, migrate
from rtportal.db.models import AuthToken, Contact, Firm, Matter, MatterMember, utcnow
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.realtime.broker import from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings

__all__ = ["main"]

# The re-check compares stored hashes with the listeners' session ids; any key does.
_KEY = b"hub-poll-cost"


class FakeListener:
    __slots__ = ("closed", "principal")

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.closed: list[int] = []

    def deliver(self, event: StoredEvent) -> None:
        pass

    def close(self, code: int) -> None:
        self.closed.append(code)


class LoopLag:
    """The longest gap between two turns of the event loop while it runs.

    ``worst`` in wall time (includes the OS running other processes: noisy
    on a shared machine) and ``worst_cpu`` in this thread's CPU time (what
    the loop itself spent between two turns: the synchronous stretch).
    """

    def __init__(self) -> None:
        self.stop = False
        self.worst = 0.0
        self.worst_cpu = 0.0

    async def run(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not self.stop:
            await asyncio.sleep(0)  # reason: one turn of the loop per iteration
            now, now_cpu = time.perf_counter(), time.thread_time()
            self.worst = max(self.worst, now - last)
            self.worst_cpu = max(self.worst_cpu, now_cpu - last_cpu)
            last, last_cpu = now, now_cpu


async def seed(db: Database, n: int, per_matter: int) -> list[tuple[int, Principal]]:
    """n contacts with a token each, ``per_matter`` to a matter: ``(matter_id, principal)``."""
    tag = uuid.uuid4().hex[:8]
    async with db.write() as session:
        firm_id = (
            await session.execute(insert(Firm).values(name=f"poll {tag}").returning(Firm.id))
        ).scalar_one()
        n_matters = (n + per_matter - 1) // per_matter
        await session.execute(
            insert(Matter),
            [
                {"firm_id": firm_id, "reference": f"P{tag}{i:06d}", "title": "t", "last_seq": 0}
                for i in range(n_matters)
            ],
        )
        matter_ids = list(
            (
                await session.execute(
                    select(Matter.id).where(Matter.firm_id == firm_id).order_by(Matter.id)
                )
            ).scalars()
        )
        await session.execute(
            insert(Contact), [{"firm_id": firm_id, "display_name": f"c{i}"} for i in range(n)]
        )
        contact_ids = list(
            (
                await session.execute(
                    select(Contact.id).where(Contact.firm_id == firm_id).order_by(Contact.id)
                )
            ).scalars()
        )
        await session.execute(
            insert(MatterMember),
            [
                {
                    "matter_id": matter_ids[i // per_matter],
                    "principal_kind": "contact",
                    "principal_id": cid,
                    "role": "client",
                }
                for i, cid in enumerate(contact_ids)
            ],
        )
        now = utcnow()
        tokens = [uuid.uuid4().hex for _ in contact_ids]
        await session.execute(
            insert(AuthToken),
            [
                {
                    "token_hash": hash_token(_KEY, tok),
                    "principal_kind": "contact",
                    "principal_id": cid,
                    "firm_id": firm_id,
                    "label": "poll",
                    "created_at": now,
                    "expires_at": None,
                }
                for tok, cid in zip(tokens, contact_ids, strict=True)
            ],
        )
    return [
        (
            matter_ids[i // per_matter],
            Principal("contact", cid, firm_id, f"c{i}", session_id=hash_token(_KEY, tok).hex()),
        )
        for i, (cid, tok) in enumerate(zip(contact_ids, tokens, strict=True))
    ]


async def measure(
    db_url: str, settings: Settings, n: int, per_matter: int, polls: int
) -> dict[str, Any]:
    db = Database(db_url)
    broker = from_url(f"memory://poll-{uuid.uuid4().hex}")
    hub = Hub(db, broker, dataclasses.replace(settings, hub_poll_interval=0), ACCESS_QUERIES)
    await hub.start()
    try:
        members = await seed(db, n, per_matter)
        for matter_id, principal in members:
            listener = FakeListener(principal)
            hub.register(listener)
            await hub.join(matter_id, listener)
        out: dict[str, Any] = {"n": n, "per_matter": per_matter}
        # "poll": one periodic poll (heads + one slice of the re-checks);
        # "full": heads + every session and membership (what a broker reset
        # runs); a hub with a single pass runs it for both.
        periodic = getattr(hub, "poll", None) or hub._poll_and_recheck  # type: ignore[attr-defined]
        full = getattr(hub, "_recheck_all", None) or hub._poll_and_recheck  # type: ignore[attr-defined]
        for name, fn in (("poll", periodic), ("full", full)):
            await fn()  # warm-up: pooled connections, statement caches
            walls: list[float] = []
            cpus: list[float] = []
            blocks: list[float] = []
            block_cpus: list[float] = []
            for _ in range(polls):
                # Timed alone (the ticker would add its own CPU to the figure)...
                t0, c0 = time.perf_counter(), time.process_time()
                await fn()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                # ...and once more with the ticker, for the longest stretch.
                lag = LoopLag()
                tick = asyncio.create_task(lag.run())
                await asyncio.sleep(0)  # reason: let the ticker take its first turn
                await fn()
                lag.stop = True
                await tick
                blocks.append(lag.worst)
                block_cpus.append(lag.worst_cpu)
            out[name] = {
                "wall_ms_med": round(statistics.median(walls) * 1000, 1),
                "wall_ms_max": round(max(walls) * 1000, 1),
                "cpu_ms_med": round(statistics.median(cpus) * 1000, 1),
                "block_ms_med": round(statistics.median(blocks) * 1000, 1),
                "block_ms_max": round(max(blocks) * 1000, 1),
                "block_cpu_ms_med": round(statistics.median(block_cpus) * 1000, 1),
                "block_cpu_ms_max": round(max(block_cpus) * 1000, 1),
            }
        return out
    finally:
        await hub.stop()
        await broker.close()
        await db.close()


async def run(args: argparse.Namespace) -> None:
    if args.pg:
        url = args.pg
    else:
        tmp = Path(tempfile.mkdtemp(prefix="hubpoll-"))
        url = f"sqlite+aiosqlite:///{tmp / 'poll.db'}"
    await migrate.upgrade(url)
    settings = Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": tempfile.mkdtemp(prefix="hubpoll-data-"),
            "RTPORTAL_DATABASE_URL": url,
            "RTPORTAL_SECRET_KEY": "5e" * 32,
        }
    )
    backend = "postgresql" if args.pg else "sqlite"
    for n in args.n:
        for layout, per_matter in (("fanout", n), ("rooms", 10)):
            result = await measure(url, settings, n, per_matter, args.polls)
            print({"backend": backend, "layout": layout, **result}, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="postgresql+asyncpg:// URL of a scratch database")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if args.no_uvloop:
        asyncio.run(run(args))
    else:
        import uvloop

        uvloop.run(run(args))


if __name__ == "__main__":
    main()
