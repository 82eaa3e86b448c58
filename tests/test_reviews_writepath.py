"""The review inbox's rows on the log's write path (docs/reviews.md "How it is written"):
written with their events in one transaction, never for an item that is not written,
never twice, including a batch that holds a retry (PostgreSQL: the append function's
statement fails on the idempotency key and the batch goes again through the other)."""

from __future__ import annotations

from sqlalchemy import select, text

from rtportal.db.models import Review, utcnow
from rtportal.events import store_sqlite
from rtportal.events.batch import AppendItem
from rtportal.events.companion import Also
from rtportal.events.log import append_batch, commit_batch
from rtportal.events.send import Send
from rtportal.reviews.choose import REVIEWER, today_in
from rtportal.reviews.enqueue import ReviewCompanion
from tests.conftest import FirmKit, MakeFirm


def _item(kit: FirmKit, client_id: str, thread: str = "t") -> AppendItem:
    payload = {"thread": thread, "item": f"c{kit.contact.id}.{client_id}", "to": [kit.contact.id]}
    send = Send(kit.ref, "message", "portal", payload, None, client_id)
    return AppendItem(kit.matter, kit.contact, send)


async def _write(kit: FirmKit, items: list[AppendItem]) -> list[object]:
    return list(await commit_batch(kit.db, items, kit.settings, await _also(kit, items)))


async def _refs(kit: FirmKit) -> list[tuple[str, int, str]]:
    async with kit.db.read() as session:
        rows = await session.execute(
            select(Review.ref, Review.reviewer_id, Review.review_on).where(
                Review.matter_id == kit.matter.id
            )
        )
        return sorted((ref, who, on.isoformat()) for ref, who, on in rows.all())


async def test_a_batch_with_a_retry_an_invalid_item_and_a_repeat_queues_each_new_item_once(
    make_firm: MakeFirm,
) -> None:
    kit = await make_firm()
    first = await _write(kit, [_item(kit, "a")])
    assert isinstance(first[0], tuple) and first[0][1] is True
    bad = _item(kit, "bad", thread="x" * 65)  # validate refuses it: nothing written
    batch = [_item(kit, "a"), _item(kit, "b"), bad, _item(kit, "c"), _item(kit, "b")]
    results = await _write(kit, batch)
    created = [r[1] if isinstance(r, tuple) else type(r).__name__ for r in results]
    assert created == [False, True, "BadRequest", True, False]
    me = f"c{kit.contact.id}"
    today = today_in(None).isoformat()
    assert await _refs(kit) == [(f"{me}.{c}", kit.staff.id, today) for c in ("a", "b", "c")]


async def test_a_batch_over_several_matters_and_firms(make_firm: MakeFirm) -> None:
    one, two = await make_firm(), await make_firm()
    items = [_item(one, "x"), _item(two, "y"), _item(one, "z")]
    results = await commit_batch(
        one.db,
        items,
        one.settings,
        await _also(one, items),
    )
    assert all(isinstance(r, tuple) and r[1] for r in results)
    assert [r[0] for r in await _refs(one)] == [f"c{one.contact.id}.x", f"c{one.contact.id}.z"]
    assert [(r[0], r[1]) for r in await _refs(two)] == [(f"c{two.contact.id}.y", two.staff.id)]


async def _also(kit: FirmKit, items: list[AppendItem]) -> Also:
    companion = ReviewCompanion(None)
    async with kit.db.read() as session:
        made = await companion.rows(session, [(i.actor, i.matter, i.send) for i in items])
    return Also(companion.pg, companion.sqlite, {i: r for i, r in enumerate(made) if r is not None})


async def test_rows_written_in_a_sessions_transaction(make_firm: MakeFirm) -> None:
    """In-memory SQLite's batches: the rows through the session's own driver connection."""
    kit = await make_firm()
    if kit.db.backend != "sqlite":
        return  # PostgreSQL's batches never take this path
    items = [_item(kit, "s1"), _item(kit, "s2")]
    also = await _also(kit, items)
    async with kit.db.write() as session:
        await append_batch(session, items[:1], kit.settings)  # s2's event is not written
        await store_sqlite.write_also(session, also.sqlite, also.kept([0, 1]), utcnow())
        await store_sqlite.write_also(session, also.sqlite, also.kept([0]), utcnow())  # again
    assert [r[0] for r in await _refs(kit)] == [f"c{kit.contact.id}.s1"]


async def test_postgresqls_function_chooses_by_the_same_rule(make_firm: MakeFirm) -> None:
    """Migration 0019's ``rtp_queue_reviews`` holds ``choose.REVIEWER`` as it is."""
    kit = await make_firm()
    if kit.db.backend != "postgresql":
        return  # SQLite's statement is built from the rule itself
    async with kit.db.read() as session:
        source = await session.scalar(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'rtp_queue_reviews'")
        )
    assert isinstance(source, str) and REVIEWER in source
