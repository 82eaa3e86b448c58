"""A history page of 50 in a matter of 1,000,000 events, SQLite and PostgreSQL side by side.

    python -m bench.history [--events 1000000] [--threads 1000] [--runs 200]
                            [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

One matter holds ``--events`` events (bench.threads_seed: messages and notes
in ``--threads`` threads with 192-byte blobs, phases, access records, bot
cards, key events). Cases, each ``--runs`` times after 20 warm-up reads, in
a read session of ``Database``, with the staff wire views built:

* the matter's history, a page of 50 before the head and one in the middle
  (``rtportal.events.log.read_before``, what ``GET /matters/{ref}/events``
  runs, byte bound included);
* a thread's page of 50 items, newest and in the middle, through migration
  0010's thread index (``ix_events_thread``: the matter, the thread
  expression of ``rtportal.threads.sql``, the item kinds, by seq).

The PostgreSQL database ``rtportal_bench_history`` is recreated beside the
``--pg`` URL, vacuumed and analysed after the seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, select

from bench.append_cost import _recreate
from bench.feed import analyse, table, timed
from bench.machine import describe
from bench.threads_seed import seed_events, seed_matters
from rtportal.db import Database, migrate
from rtportal.db.models import Event, Matter
from rtportal.demo import create_contact, create_firm, create_staff
from rtportal.events import log
from rtportal.events.audience import view_for
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_HISTORY_PAGE_BYTES
from rtportal.threads.sql import ITEM_KINDS, thread_expr

__all__ = ["main", "thread_page"]

PAGE = 50
# Literals, as the partial index's predicate (SQLite matches the term, not a parameter).
_ITEM_KINDS = bindparam(None, ITEM_KINDS, expanding=True, literal_execute=True)


async def _seed(url: str, events: int, threads: int) -> tuple[Principal, int]:
    await migrate.upgrade(url)
    db = Database(url)
    try:
        async with db.write() as session:
            firm = await create_firm(session, "History & Co")
            staff = await create_staff(session, firm, email="h@h.test", display_name="Hal")
            bot = await create_staff(session, firm, email="b@h.test", display_name="B", role="bot")
            contact = await create_contact(session, firm, display_name="Cy")
            await seed_matters(session, firm.id, "HIST", 1)
            principal = Principal("staff", staff.id, firm.id, "Hal", role="staff")
            ids = {"staff_id": staff.id, "contact_id": contact.id, "bot_id": bot.id}
            firm_id = firm.id
        async with db.write() as session:
            await seed_events(session, firm_id=firm_id, n=events, threads=threads, **ids)
        async with db.read() as session:
            matter_id = (
                await session.execute(select(Matter.id).where(Matter.firm_id == firm_id))
            ).scalar_one()
        await analyse(db)
        return principal, matter_id
    finally:
        await db.close()


async def thread_page(
    db: Database, matter_id: int, thread: str, before: int, principal: Principal
) -> list[dict[str, Any]]:
    """The newest ``PAGE`` items of ``thread`` below seq ``before``, by the thread index."""
    async with db.read() as session:
        expr = thread_expr(session.get_bind().dialect.name)
        query = (
            select(Event, Matter.reference)
            .join(Matter, Matter.id == Event.matter_id)
            .where(Event.matter_id == matter_id, expr == thread, Event.kind.in_(_ITEM_KINDS))
            .where(Event.seq < before)
            .order_by(Event.seq.desc())
            .limit(PAGE)
        )
        rows = (await session.execute(query)).all()
    views = [view_for(log.event_of_row(e, ref), principal) for e, ref in rows]
    return [v for v in views if v is not None]


async def measure(url: str, principal: Principal, matter_id: int, runs: int) -> dict[str, Any]:
    db = Database(url)
    out: dict[str, Any] = {}
    try:
        async with db.read() as session:
            head = await log.head(session, matter_id)

        def history(before: int) -> Any:
            async def page() -> list[dict[str, Any]]:
                async with db.read() as session:
                    events = await log.read_before(
                        session, matter_id, before, PAGE, DEFAULT_HISTORY_PAGE_BYTES
                    )
                views = [view_for(e, principal) for e in events]
                assert len(views) == PAGE
                return [v for v in views if v is not None]

            return page

        def in_thread(before: int) -> Any:
            async def page() -> list[dict[str, Any]]:
                views = await thread_page(db, matter_id, "t7", before, principal)
                assert len(views) == PAGE
                return views

            return page

        cases = {
            "matter history, newest 50": history(head + 1),
            "matter history, 50 from the middle": history(head // 2),
            "thread page, newest 50": in_thread(head + 1),
            "thread page, 50 from the middle": in_thread(head // 2),
        }
        for name, fn in cases.items():
            out[name] = await timed(fn, runs)
    finally:
        await db.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'history.db'}"}
        if not args.no_pg:
            urls["postgresql"] = asyncio.run(_recreate(args.pg, "rtportal_bench_history"))
        for backend, url in urls.items():
            start = time.monotonic()
            principal, matter_id = asyncio.run(_seed(url, args.events, args.threads))
            print(f"# {backend}: seeded in {time.monotonic() - start:.1f} s", flush=True)
            results[backend] = asyncio.run(measure(url, principal, matter_id, args.runs))
    print(json.dumps({"machine": describe(), "args": vars(args), "results": results}))
    table("page of 50", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
