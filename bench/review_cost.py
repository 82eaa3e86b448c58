"""What queueing a client's messages for review adds to the write path, per batch and per item.

    python -m bench.review_cost [--pg URL] [--rounds 200] [--sizes 1,16,64]

The group commit's write of a batch of client ``message`` items, with and
without the review inbox's companion rows (``rtportal.reviews.enqueue
.ReviewCompanion``), alternated round by round on the same database:

* ``write``: ``events.log.commit_batch`` alone (the baseline), then with
  the companion's rows (PostgreSQL: the same one statement with the
  INSERT as a CTE; SQLite: one ``executemany`` more in the same write
  transaction);
* ``read``: the companion's one query per batch (reviewers and firms'
  days of the batch's matters), in a read session that is open already,
  as the group commit's is for any batch holding a message: the firms' days,
  from the worker's cache after the first round (the reviewer is chosen by the write).

Prints one JSON line per backend and batch size: microseconds per batch
and per item for each (medians, and tenth percentiles: on a shared
machine the median carries its load), and what the reviews add. Against a fresh SQLite
file and, with ``--pg``, the given PostgreSQL database (migrated; rows
of a new firm are added).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rtportal.db import Database, migrate
from rtportal.db.models import Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.events.batch import AppendItem
from rtportal.events.companion import Also
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.reviews.enqueue import ReviewCompanion
from rtportal.settings import Settings

_MATTERS = 16


async def _world(db: Database) -> list[tuple[Matter, Principal]]:
    async with db.write() as session:
        firm = await create_firm(session, "Review cost")
        staff = await create_staff(
            session, firm, email=f"s{firm.id}@bench.test", display_name="S", role="org_admin"
        )
        out = []
        for i in range(_MATTERS):
            matter = await create_matter(session, firm, title=f"M{i}", responsible=staff)
            contact = await create_contact(session, firm, display_name=f"C{i}")
            await add_member(session, matter, contact)
            out.append((matter, contact))
    return out


def _items(world: list[tuple[Matter, Principal]], size: int, tag: str) -> list[AppendItem]:
    items = []
    for k in range(size):
        matter, contact = world[k % len(world)]
        client_id = f"{tag}-{k}"
        payload = {"thread": "t", "item": f"c{contact.id}.{client_id}", "to": [contact.id]}
        send = Send(matter.reference, "message", "portal", payload, b"x" * 256, client_id)
        items.append(AppendItem(matter, contact, send))
    return items


async def _one(url: str, rounds: int, size: int, data_dir: Path) -> dict[str, Any]:
    await migrate.upgrade(url)
    settings = Settings.from_env({"RTPORTAL_DATA_DIR": str(data_dir), "RTPORTAL_DATABASE_URL": url})
    db = Database(url)
    companion = ReviewCompanion(None)
    try:
        world = await _world(db)
        base: list[float] = []
        with_rows: list[float] = []
        reads: list[float] = []
        for r in range(rounds + 5):  # the first five warm up
            plain = _items(world, size, f"p{r}")
            t0 = time.perf_counter()
            await commit_batch(db, plain, settings)
            t1 = time.perf_counter()
            queued = _items(world, size, f"q{r}")
            async with db.read() as session:
                await session.connection()  # the group commit's session is open already
                t2 = time.perf_counter()
                made = await companion.rows(session, [(i.actor, i.matter, i.send) for i in queued])
                t3 = time.perf_counter()
            rows = {index: row for index, row in enumerate(made) if row is not None}
            also = Also(companion.pg, companion.sqlite, rows)
            t4 = time.perf_counter()
            results = await commit_batch(db, queued, settings, also)
            t5 = time.perf_counter()
            assert all(isinstance(x, tuple) for x in results)
            if r >= 5:
                base.append(t1 - t0)
                reads.append(t3 - t2)
                with_rows.append(t5 - t4)
    finally:
        await db.close()
    b, w, rd = (statistics.median(x) * 1e6 for x in (base, with_rows, reads))
    # The tenth percentile too: on a shared machine the median carries its load.
    b10, w10, rd10 = (statistics.quantiles(x, n=10)[0] * 1e6 for x in (base, with_rows, reads))
    return {
        "backend": "postgresql" if url.startswith("postgresql") else "sqlite",
        "batch": size,
        "rounds": rounds,
        "write_us": round(b, 1),
        "write_with_reviews_us": round(w, 1),
        "read_us": round(rd, 1),
        "added_per_batch_us": round(w - b + rd, 1),
        "added_per_item_us": round((w - b + rd) / size, 1),
        "p10_write_us": round(b10, 1),
        "p10_write_with_reviews_us": round(w10, 1),
        "p10_added_per_item_us": round((w10 - b10 + rd10) / size, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default=None)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sizes", default="1,16,64")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            url = f"sqlite+aiosqlite:///{tmp}/cost{size}.db"
            print(json.dumps(await _one(url, args.rounds, size, Path(tmp))), flush=True)
        if args.pg:
            for size in sizes:
                print(json.dumps(await _one(args.pg, args.rounds, size, Path(tmp))), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
