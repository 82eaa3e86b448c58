"""CPU of one client send through the served app's group commit, part by part.

    python -m bench.send_cost [--n 2000] [--rounds 3] [--concurrency 1,64] [--pg URL]

What a client's ``message`` costs the worker, without sockets: one at a
time (a batch of one: the rooms benchmark's low rates) or ``--concurrency``
senders at once, one matter each (batches of about that many: its high
rates). The app
is built by ``create_app`` and its lifespan runs (real wiring, real
database; each matter has ten clients and a responsible staff member, who
reviews: every message queues a review, as in the rooms benchmark), then
``--n`` sends by one contact go through
``GroupCommit.append``. Variants, alternated round by round on the same
database, each a ``GroupCommit`` over the app's own database and hub with
some of the app's parts:

* ``full``: the app's committer as served (thread rules, the key
  directory's check, the review inbox's rows, the reviewer's live count);
* ``no-reviews``: without the review companion;
* ``no-reviews-prepare``: also without the thread rules;
* ``bare``: nothing before the write (no read session at all).

Prints one JSON line per backend and variant: the lowest process CPU per
send over the rounds (this process: the event loop and the SQLite writer
thread, not the PostgreSQL server) and the wall time per send. The lowest
is the figure: on a shared machine the others carry its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from rtportal.access import membership
from rtportal.app import create_app
from rtportal.db import Database, migrate
from rtportal.db.models import Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["measure"]

VARIANTS = ("full", "no-reviews", "no-reviews-prepare", "bare")


def _variant(full: GroupCommit, name: str) -> GroupCommit:
    """A committer over ``full``'s database and publisher with some of its parts."""
    if name == "full":
        return full
    keep_prepare = name == "no-reviews"
    return GroupCommit(
        full.db,
        full.publish,
        full.settings,
        full.authorize,
        full.check if name != "bare" else None,
        full.check_kinds if name != "bare" else frozenset(),
        full.prepare if keep_prepare else None,
        full.prepare_kinds if keep_prepare else frozenset(),
        full.alone,
        full.alone_kinds,
        full.alone_if,
        full.guards if name != "bare" else None,
        None,
    )


async def _seed(url: str, refs: list[str]) -> list[tuple[Principal, Matter]]:
    """Per matter: its first client and the matter as their connection caches it."""
    await migrate.upgrade(url)
    db = Database(url)
    senders = []
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Send Cost")
            # The matters' reviewer: a client's message queues a review row (``full``).
            staff = await create_staff(session, firm, email="rev@x.test", display_name="Rev")
            for ref in refs:
                matter = await create_matter(
                    session, firm, title="send cost", reference=ref, responsible=staff
                )
                clients = []
                for k in range(10):  # the rooms benchmark's matters: ten clients each
                    name = f"Client {ref} {k}"
                    clients.append(await create_contact(session, firm, display_name=name))
                    await add_member(session, matter, clients[-1])
                senders.append((clients[0], ref))
        async with db.read() as session:
            return [(who, await membership.can_access(session, who, ref)) for who, ref in senders]
    finally:
        await db.close()


async def measure(
    url: str, data_dir: Path, n: int, rounds: int, concurrency: int
) -> list[dict[str, Any]]:
    # Random references: a PostgreSQL database may be reused.
    refs = sorted({"SEND" + f"{secrets.randbelow(10_000):04d}" for _ in range(concurrency)})
    senders = await _seed(url, refs)
    settings = Settings.from_env({"RTPORTAL_DATA_DIR": str(data_dir), "RTPORTAL_DATABASE_URL": url})
    app = create_app(settings)
    best: dict[str, tuple[float, float]] = {}
    async with app.router.lifespan_context(app):
        full: GroupCommit = app.state.committer
        made: dict[str, GroupCommit] = {v: _variant(full, v) for v in VARIANTS}
        counter = iter(range(10**9))

        async def sender(committer: GroupCommit, k: int, count: int) -> None:
            who, matter = senders[k % len(senders)]
            for _ in range(count):
                i = next(counter)
                payload = {"sent_at": i, "thread": "7"}
                blob = os.urandom(256)
                send = Send(matter.reference, "message", "portal", payload, blob, f"sc{i}")
                await committer.append(who, send, matter)

        async def run(committer: GroupCommit, count: int) -> None:
            # ``concurrency`` senders, one send in flight each: batches of about that many.
            each = max(1, count // concurrency)
            await asyncio.gather(*(sender(committer, k, each) for k in range(concurrency)))

        for committer in made.values():
            await run(committer, 50 * concurrency)  # caches, the pool, the thread's opener
        for _ in range(rounds):
            for name, committer in made.items():
                cpu0, wall0 = time.process_time(), time.perf_counter()
                await run(committer, n)
                sent = max(1, n // concurrency) * concurrency
                cpu = (time.process_time() - cpu0) / sent
                wall = (time.perf_counter() - wall0) / sent
                old = best.get(name)
                best[name] = (min(cpu, old[0]), min(wall, old[1])) if old else (cpu, wall)
        await app.state.review_counts.idle()
    backend = url.split(":", 1)[0]
    return [
        {
            "backend": backend,
            "variant": name,
            "concurrency": concurrency,
            "sends": n,
            "cpu_us_per_send": round(1e6 * cpu, 1),
            "wall_us_per_send": round(1e6 * wall, 1),
        }
        for name, (cpu, wall) in best.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--concurrency", default="1", help="comma-separated: senders at once (one matter each)"
    )
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (a fresh database) as well")
    args = ap.parse_args()
    urls = []
    with tempfile.TemporaryDirectory() as tmp:
        urls.append((f"sqlite+aiosqlite:///{tmp}/send_cost.db", Path(tmp)))
        if args.pg:
            urls.append((args.pg, Path(tmp)))
        for url, data_dir in urls:
            for c in (int(x) for x in args.concurrency.split(",")):
                for line in asyncio.run(measure(url, data_dir, args.n, args.rounds, c)):
                    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
