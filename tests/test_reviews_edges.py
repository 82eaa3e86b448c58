"""The review inbox reviewed as an attacker and as a newcomer (docs/reviews.md): each
test but the guard's is one finding, on the test backends: ids the database cannot
hold, the rows' place in the batch's statement beside other workers' batches, a
reviewer who is disabled (and a reassignment racing it), two writers queueing one
thing, and a send refused at the write. The guard's shows the rows go with the
batch's write when its guard refuses it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import select, text

from rtportal.access import staff as staff_service
from rtportal.db.models import Matter, Review
from rtportal.errors import BadRequest
from rtportal.events.batch import AppendItem
from rtportal.events.guards import GuardMoved
from rtportal.events.log import commit_batch
from rtportal.reviews.acts import hand_over, reassign
from rtportal.reviews.enqueue import enqueue
from rtportal.reviews.rows import Queued
from tests.conftest import FirmKit, MakeFirm
from tests.support.pgdb import waiting_on_locks
from tests.support.reviewworld import client_says, counts, inbox
from tests.test_reviews_writepath import _also, _item, _refs


async def test_ids_past_32_bits_are_no_such_thing_never_a_500(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Ids are 32-bit integers on PostgreSQL: a larger one names nothing (and must not
    reach the database, whose driver refuses it)."""
    kit = await make_firm()
    await client_says(http, kit, "t", "m1")
    (row,) = await inbox(http, kit.auth("staff"))
    staff, big = kit.auth("staff"), 2**31
    for method, path, body, status, code in (
        ("POST", f"/api/v1/reviews/{big}/reviewed", {}, 404, "not_found"),
        ("POST", "/api/v1/reviews/999999999999999999/reviewed", {}, 404, "not_found"),
        ("PATCH", f"/api/v1/reviews/{big}", {"review_on": row["review_on"]}, 404, "not_found"),
        ("POST", f"/api/v1/reviews/{big}/reassign", {"reviewer": kit.admin.id}, 404, "not_found"),
        ("POST", f"/api/v1/reviews/{row['id']}/reassign", {"reviewer": big}, 400, "bad_request"),
        ("POST", f"/api/v1/reviews/{row['id']}/reassign", {"reviewer": 2**62}, 400, "bad_request"),
        ("GET", f"/api/v1/reviews?after=2026-01-01.{big}", None, 400, "invalid_cursor"),
        ("PATCH", "/api/v1/firm", {"review_staff_id": big}, 400, "bad_request"),
    ):
        headers = kit.auth("admin") if path == "/api/v1/firm" else staff
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["error"]["code"] == code, (path, body, response.text)
    assert (await inbox(http, staff))[0]["reviewer"] == kit.staff.id


async def test_a_batch_its_guard_refuses_queues_nothing(make_firm: MakeFirm) -> None:
    """The rows go with the batch's write: a matter that moved since its checks
    (``GuardMoved``) leaves no event and no review, on both backends."""
    kit = await make_firm()
    async with kit.db.read() as session:
        version = await session.scalar(
            select(Matter.access_version).where(Matter.id == kit.matter.id)
        )
    assert version is not None
    items = [
        AppendItem(i.matter, i.actor, i.send, guard=version + 1)
        for i in (_item(kit, "g1"), _item(kit, "g2"))
    ]
    refused = None
    try:
        await commit_batch(kit.db, items, kit.settings, await _also(kit, items))
    except GuardMoved as moved:
        refused = moved
    assert refused is not None and kit.matter.id in refused.matter_ids
    assert await _refs(kit) == []
    items = [AppendItem(i.matter, i.actor, i.send, guard=version) for i in items]
    written = await commit_batch(kit.db, items, kit.settings, await _also(kit, items))
    assert all(isinstance(r, tuple) and r[1] for r in written)
    assert [r[0] for r in await _refs(kit)] == [f"c{kit.contact.id}.g{i}" for i in (1, 2)]


async def _blocked_or_done(kit: FirmKit, task: asyncio.Task[Any]) -> None:
    """Until ``task`` is done or another backend waits for a lock (``task``'s, for
    one the caller's open transaction holds)."""
    watcher = await asyncpg.connect(kit.settings.database_url.replace("+asyncpg", ""))
    try:
        waiting = asyncio.create_task(waiting_on_locks(watcher, 1))
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
    finally:
        await watcher.close()


async def test_two_workers_batches_on_one_matter_do_not_deadlock(make_firm: MakeFirm) -> None:
    """PostgreSQL: the batch's statement takes its matters' row locks in id order
    before anything else (its review rows' foreign-key checks take key-share locks on
    the same rows): two workers' batches of one matter queue, never deadlock.

    A third transaction holds the reviewer's row so that both batches are in their
    statements at once (a review's check of its reviewer waits for it)."""
    kit = await make_firm()
    if kit.db.backend != "postgresql":
        return  # SQLite: one writer, nothing to interleave
    one, two = [_item(kit, "w1"), _item(kit, "w1b")], [_item(kit, "w2"), _item(kit, "w2b")]
    also_one, also_two = await _also(kit, one), await _also(kit, two)
    dsn = kit.settings.database_url.replace("+asyncpg", "")
    holder, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM staff_users WHERE id = $1 FOR UPDATE", kit.staff.id)
        first = asyncio.create_task(commit_batch(kit.db, one, kit.settings, also_one))
        second = asyncio.create_task(commit_batch(kit.db, two, kit.settings, also_two))
        await waiting_on_locks(watcher, 2)
        await tx.commit()
        results = await asyncio.gather(first, second, return_exceptions=True)
    finally:
        await holder.close()
        await watcher.close()
    assert all(isinstance(r, list) for r in results), results
    assert all(isinstance(x, tuple) and x[1] for r in results for x in r), results  # type: ignore[union-attr]
    me = f"c{kit.contact.id}"
    assert [r[0] for r in await _refs(kit)] == [f"{me}.{c}" for c in ("w1", "w1b", "w2", "w2b")]


async def test_a_disabled_reviewers_open_reviews_go_to_whoever_the_rule_names_now(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Nobody else can see a staff member's inbox: disabling them hands their open
    reviews over, in the same transaction, to the reviewer the firm's rule names
    without them (here the matter's responsible member is the one disabled: the
    firm's first org admin); their reviewed ones keep who reviewed them."""
    kit = await make_firm()
    other = await make_firm()
    for c in ("d1", "d2", "d3"):
        assert (await client_says(http, kit, "t", c)).status_code == 201
    await client_says(http, other, "t", "o1")
    rows = await inbox(http, kit.auth("staff"))
    done = await http.post(f"/api/v1/reviews/{rows[0]['id']}/reviewed", headers=kit.auth("staff"))
    assert done.status_code == 200, done.text
    off = await http.patch(
        f"/api/v1/staff/{kit.staff.id}", json={"status": "disabled"}, headers=kit.auth("admin")
    )
    assert off.status_code == 200, off.text
    moved = await inbox(http, kit.auth("admin"))
    assert sorted(r["id"] for r in moved) == sorted(r["id"] for r in rows[1:])
    assert {r["reviewer"] for r in moved} == {kit.admin.id}
    assert await counts(http, kit.auth("admin")) == {"open": 2, "due": 2, "overdue": 0}
    async with kit.db.read() as session:
        reviewed = await session.get(Review, rows[0]["id"])
        assert reviewed is not None and reviewed.reviewer_id == kit.staff.id
        assert reviewed.reviewed_by == kit.staff.id
        theirs = await session.scalar(
            text("SELECT count(*) FROM reviews WHERE firm_id = :f AND reviewer_id = :s"),
            {"f": other.firm_id, "s": other.staff.id},
        )
    assert theirs == 1  # another firm's are not touched


async def test_a_reassignment_racing_the_disabling_of_its_new_reviewer_is_refused(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """PostgreSQL: a reassignment to a member whom an uncommitted transaction is
    disabling (and whose open reviews it hands over) waits for it, then finds no
    active member (``no_such_reviewer``): it never gives them a review after their
    hand-over read theirs. (SQLite: one writer at a time, nothing to interleave.)"""
    kit = await make_firm()
    if kit.db.backend != "postgresql":
        return
    await client_says(http, kit, "t", "r1")
    (row,) = await inbox(http, kit.auth("staff"))
    given = await http.post(
        f"/api/v1/reviews/{row['id']}/reassign",
        json={"reviewer": kit.admin.id},
        headers=kit.auth("admin"),
    )
    assert given.status_code == 200, given.text
    async with kit.db.write() as session:
        changed = await staff_service.change(
            session, kit.admin, kit.staff.id, role=None, status="disabled", address=None
        )
        assert changed.disabled and await hand_over(session, kit.staff.id) == []
        racing = asyncio.create_task(
            http.post(
                f"/api/v1/reviews/{row['id']}/reassign",
                json={"reviewer": kit.staff.id},
                headers=kit.auth("admin"),
            )
        )
        await _blocked_or_done(kit, racing)
    answer = await racing
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["reason"] == "no_such_reviewer"
    (mine,) = await inbox(http, kit.auth("admin"))
    assert mine["id"] == row["id"]


async def test_two_transactions_queueing_one_thing_queue_it_once(make_firm: MakeFirm) -> None:
    """``enqueue`` in two transactions at once (a writer that does not hold the
    matter's lock): the second waits for the first and queues nothing, no error."""
    kit = await make_firm()
    if kit.db.backend != "postgresql":
        return  # SQLite: one writer at a time

    async def second() -> object:
        async with kit.db.write() as session:
            return await enqueue(session, kit.matter, "document", "u.1", kit.contact.id)

    async with kit.db.write() as session:
        first = await enqueue(session, kit.matter, "document", "u.1", kit.contact.id)
        racing = asyncio.create_task(second())
        await _blocked_or_done(kit, racing)
    again = await racing
    assert first is not None and again is None
    async with kit.db.read() as session:
        n = await session.scalar(
            text("SELECT count(*) FROM reviews WHERE matter_id = :m"), {"m": kit.matter.id}
        )
    assert n == 1


async def test_a_send_refused_for_a_client_id_another_kind_used_queues_nothing(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """The idempotency key is the sender's ``client_id`` whatever the kind: a message
    reusing a delete's is ``conflict``, nothing written, and no review of the item it
    would have been (the review's row is written only with its message's event)."""
    kit = await make_firm()
    me = f"c{kit.contact.id}"
    for n in ("1", "2"):
        assert (await client_says(http, kit, "t", f"m{n}")).status_code == 201
        delete = {"kind": "delete", "audience": "portal", "payload": {"item": f"{me}.m{n}"}}
        gone = await http.post(
            f"/api/v1/matters/{kit.ref}/events",
            json={**delete, "client_id": f"d{n}"},
            headers=kit.auth("contact"),
        )
        assert gone.status_code == 201, gone.text
    lone = await client_says(http, kit, "t", "d1")  # a batch of one
    assert lone.status_code == 409, lone.text
    # In a batch with a new item (PostgreSQL: the retry's statement, not the fresh one).
    both = await asyncio.gather(
        client_says(http, kit, "t", "d2"), client_says(http, kit, "t", "n1")
    )
    assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]
    assert [r[0] for r in await _refs(kit)] == [f"{me}.m1", f"{me}.m2", f"{me}.n1"]
    assert await counts(http, kit.auth("staff")) == {"open": 3, "due": 3, "overdue": 0}


async def test_a_retried_reassignment_racing_its_reviewers_disabling_does_not_deadlock(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """PostgreSQL: a reassignment takes its new reviewer's row before the review's, in
    the order the disabling of that reviewer takes them (their row, then their reviews
    to hand over): a reassignment again to the reviewer being disabled (a retry) waits
    for it and is refused; taken the other way round the two deadlocked."""
    kit = await make_firm()
    if kit.db.backend != "postgresql":
        return
    await client_says(http, kit, "t", "x1")
    (row,) = await inbox(http, kit.auth("staff"))

    async def again() -> object:
        async with kit.db.write() as session:
            return await reassign(session, kit.admin, str(row["id"]), kit.staff.id)

    async with kit.db.write() as session:
        changed = await staff_service.change(
            session, kit.admin, kit.staff.id, role=None, status="disabled", address=None
        )
        assert changed.disabled  # flushed: the member's row is locked until the commit
        racing = asyncio.create_task(again())
        await _blocked_or_done(kit, racing)
        handed = await hand_over(session, kit.staff.id)
    assert handed == [Queued(kit.admin.id, kit.matter.id)]
    refused = None
    try:
        await racing
    except BadRequest as err:
        refused = err
    assert refused is not None and refused.details["reason"] == "no_such_reviewer"
    (mine,) = await inbox(http, kit.auth("admin"))
    assert mine["id"] == row["id"]
