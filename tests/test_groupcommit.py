"""GroupCommit and stream.append_batch against the real test database (SQLite or PostgreSQL).

Batches are made the way the worker makes them: sends queued in one loop
turn (``asyncio.gather``) are taken by the first lane as one batch; BEGINs
are counted on the engine to show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError

from rtportal.access import membership
from rtportal.access.membership import can_access
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.db import Database
from rtportal.db.models import Event, Matter, utcnow
from rtportal.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, RtPortalError
from rtportal.events import log as stream
from rtportal.events.batch import AppendItem
from rtportal.events.event import StoredEvent
from rtportal.events.groupcommit import GroupCommit
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.conftest import MakeFirm

TIMEOUT = 60.0


class Rec:
    """A hub listener recording the events it is given, in order."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.events: list[StoredEvent] = []
        self.closed: list[int] = []
        self._changed = asyncio.Event()

    def deliver(self, event: StoredEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def close(self, code: int) -> None:
        self.closed.append(code)
        self._changed.set()

    def seqs(self, matter_id: int) -> list[int]:
        return [e.seq for e in self.events if e.matter_id == matter_id]

    async def until(self, cond: Any) -> None:
        async def loop() -> None:
            while not cond():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), TIMEOUT)


@pytest.fixture
async def hub(db: Database, settings: Settings) -> AsyncIterator[Hub]:
    broker = broker_from_url("memory://")
    the_hub = Hub(db, broker, settings, ACCESS_QUERIES)
    await the_hub.start()
    try:
        yield the_hub
    finally:
        await the_hub.stop()
        await broker.close()


@pytest.fixture
def committer(db: Database, hub: Hub, settings: Settings) -> GroupCommit:
    return GroupCommit(db, hub.publish, settings, can_access)


class _Begins:
    """Write transactions begun: those run outside SQLAlchemy (the group
    commit's: ``Database.direct_writes``), plus, on SQLite, SQLAlchemy's
    BEGIN IMMEDIATE on the write engine (reads have their own engine there;
    on PostgreSQL SQLAlchemy begins only reads on that engine)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sa = 0
        self.start = db.direct_writes

    def __len__(self) -> int:
        direct = self.db.direct_writes - self.start
        return direct if self.db.backend == "postgresql" else direct + self.sa


@contextmanager
def counting_begins(db: Database) -> Iterator[_Begins]:
    begins = _Begins(db)

    def began(_conn: Any) -> None:
        begins.sa += 1

    sa_event.listen(db.engine.sync_engine, "begin", began)
    try:
        yield begins
    finally:
        sa_event.remove(db.engine.sync_engine, "begin", began)


async def rows(db: Database, matter_id: int) -> list[tuple[int, str | None, str]]:
    async with db.read() as session:
        result = await session.execute(
            select(Event.seq, Event.client_id, Event.payload)
            .where(Event.matter_id == matter_id)
            .order_by(Event.seq)
        )
        return [(int(s), c, p) for s, c, p in result.all()]


async def head(db: Database, matter_id: int) -> int:
    async with db.read() as session:
        return await stream.head(session, matter_id)


async def cached(db: Database, who: Principal, ref: str) -> Matter:
    async with db.read() as session:
        return await membership.can_access(session, who, ref)


def send(
    ref: str,
    client_id: str | None,
    payload: dict[str, Any] | None = None,
    *,
    kind: str = "message",
    audience: str = "portal",
    blob: bytes | None = None,
) -> Send:
    return Send(ref, kind, audience, payload if payload is not None else {}, blob, client_id)


async def settle(
    committer: GroupCommit, calls: Sequence[tuple[Principal, Send, Matter | None]]
) -> list[tuple[StoredEvent, bool, Matter] | BaseException]:
    """Queue every call in one loop turn (one batch) and wait for all of them."""
    async with asyncio.timeout(TIMEOUT):
        return await asyncio.gather(
            *(committer.append(who, action, matter) for who, action, matter in calls),
            return_exceptions=True,
        )


async def test_concurrent_senders_get_gapless_seqs_in_commit_order(
    db: Database, hub: Hub, committer: GroupCommit, make_firm: MakeFirm
) -> None:
    """Many senders (one send in flight each, like connections) on shared and own matters."""
    kit = await make_firm()
    matters = [kit.matter, await kit.add_matter(title="B"), await kit.add_matter(title="C")]
    refs = [m.reference for m in matters]
    watcher = Rec(kit.staff)
    for m in matters:
        await hub.join(m.id, watcher)
    senders, per_sender = 24, 6
    whos = [kit.staff, kit.contact, kit.bot, kit.admin]
    caches = {(w.kind, r): await cached(db, w, r) for w in whos for r in refs}

    async def sender(k: int) -> list[tuple[int, int]]:
        who, ref = whos[k % len(whos)], refs[k % len(refs)]
        acked = []
        for i in range(per_sender):
            action = send(ref, f"s{k}-{i}", {"thread": f"s{k}", "sent_at": i})
            event, created, matter = await committer.append(who, action, caches[(who.kind, ref)])
            assert created and matter.reference == ref
            acked.append((event.matter_id, event.seq))
        return acked

    with counting_begins(db) as begins:
        async with asyncio.timeout(TIMEOUT):
            acks = await asyncio.gather(*(sender(k) for k in range(senders)))
    total = senders * per_sender
    assert len(begins) < total  # batches, not one transaction per send
    for acked in acks:
        assert [s for _, s in acked] == sorted(s for _, s in acked)  # a sender's order kept
    for m in matters:
        stored = await rows(db, m.id)
        count = sum(1 for k in range(senders) if refs[k % len(refs)] == m.reference) * per_sender
        assert [s for s, _, _ in stored] == list(range(1, count + 1))  # gapless
        assert await head(db, m.id) == count
        # Each sender's rows are in its send order.
        for k in range(senders):
            mine = [c for _, c, _ in stored if c and c.startswith(f"s{k}-")]
            assert mine == sorted(mine, key=lambda c: int(c.split("-")[1]))
        # Published after commit, once each, in seq order.
        await watcher.until(lambda m=m, count=count: len(watcher.seqs(m.id)) >= count)
        assert watcher.seqs(m.id) == list(range(1, count + 1))
    assert watcher.closed == []


async def test_one_batch_mixes_new_events_retries_conflicts_and_bad_items(
    db: Database, committer: GroupCommit, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    other = await make_firm()
    b = await kit.add_matter(title="B")
    m_a, m_b = await cached(db, kit.contact, kit.ref), await cached(db, kit.contact, b.reference)
    too_big = {"x": "y" * (settings.event_payload_max + 1)}
    calls: list[tuple[Principal, Send, Matter | None]] = [
        (kit.contact, send(kit.ref, "r1", {"sent_at": 1}), m_a),  # 0 new: seq 1
        (kit.contact, send(kit.ref, "r1", {"sent_at": 1}), m_a),  # 1 in-batch retry of 0
        (kit.contact, send(kit.ref, "r1", {"sent_at": 2}), m_a),  # 2 same id, other content
        (kit.contact, send(kit.ref, "bad", kind="Not A Kind"), m_a),  # 3 bad_request
        (kit.contact, send(kit.ref, "big", too_big), m_a),  # 4 payload_too_large
        (kit.contact, send(kit.ref, "st", audience="staff"), m_a),  # 5 contact -> staff: bad
        (kit.contact, send(other.ref, "x1"), None),  # 6 another firm's matter: not_found
        (kit.contact, send(b.reference, "r1", {"sent_at": 9}), m_b),  # 7 same id, other matter: new
        (kit.contact, send(kit.ref, None, {"sent_at": 3}), m_a),  # 8 no client_id: seq 2
        (kit.staff, send(kit.ref, "r1", {"sent_at": 1}), None),  # 9 same id, other actor: seq 3
        (kit.contact, send(kit.ref, "r2", {"sent_at": 4}, blob=b""), m_a),  # 10 new: seq 4
        (kit.contact, send(kit.ref, "r2", {"sent_at": 4}), m_a),  # 11 retry; b"" == no blob
    ]
    with counting_begins(db) as begins:
        out = await settle(committer, calls)
    assert len(begins) == 1  # one transaction for the lot

    def ok(i: int) -> tuple[int, bool]:
        result = out[i]
        assert not isinstance(result, BaseException), result
        return result[0].seq, result[1]

    assert ok(0) == (1, True)
    assert ok(1) == (1, False)
    assert isinstance(out[2], Conflict)
    assert isinstance(out[3], BadRequest)
    assert isinstance(out[4], PayloadTooLarge)
    assert isinstance(out[5], BadRequest)
    assert isinstance(out[6], NotFound)
    assert ok(7) == (1, True)
    assert ok(8) == (2, True)
    assert ok(9) == (3, True)
    assert ok(10) == (4, True)
    assert ok(11) == (4, False)
    assert [(s, c) for s, c, _ in await rows(db, kit.matter.id)] == [
        (1, "r1"),
        (2, None),
        (3, "r1"),
        (4, "r2"),
    ]
    assert await head(db, kit.matter.id) == 4
    assert [(s, c) for s, c, _ in await rows(db, b.id)] == [(1, "r1")]

    # Across batches: retries return the stored events, other content conflicts.
    again = await settle(
        committer,
        [
            (kit.contact, send(kit.ref, "r1", {"sent_at": 1}), m_a),
            (kit.contact, send(kit.ref, "r1", {"sent_at": 5}), m_a),
            (kit.staff, send(kit.ref, "r1", {"sent_at": 1}), None),
            (kit.contact, send(kit.ref, "r3", {"sent_at": 6}), m_a),
            (kit.contact, send(kit.ref, "r2", {"sent_at": 7}), m_a),  # conflicts...
            (
                kit.contact,
                send(kit.ref, "r2", {"sent_at": 4}, blob=b""),
                m_a,
            ),  # ...this one retries
        ],
    )
    first = out[0]
    assert not isinstance(first, BaseException)
    retry = again[0]
    assert not isinstance(retry, BaseException)
    assert (retry[0].seq, retry[1]) == (1, False)
    assert retry[0].created_at == first[0].created_at and retry[0].payload == {"sent_at": 1}
    assert isinstance(again[1], Conflict)
    assert not isinstance(again[2], BaseException) and again[2][0].seq == 3
    assert not isinstance(again[3], BaseException) and again[3][1] is True
    assert again[3][0].seq == 5  # no gap left by the retries and the conflict
    assert isinstance(again[4], Conflict)
    assert not isinstance(again[5], BaseException) and (again[5][0].seq, again[5][1]) == (4, False)
    assert await head(db, kit.matter.id) == 5


async def test_a_matter_deleted_after_the_access_check_fails_only_its_sends(
    db: Database, committer: GroupCommit, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    gone = await kit.add_matter(title="Deleted")
    m_a, m_gone = await cached(db, kit.staff, kit.ref), await cached(db, kit.staff, gone.reference)
    async with db.write() as session:
        await session.execute(delete(Matter).where(Matter.id == gone.id))
    out = await settle(
        committer,
        [
            (kit.staff, send(kit.ref, "a1"), m_a),
            (kit.staff, send(gone.reference, "g1"), m_gone),
            (kit.staff, send(gone.reference, "g1"), m_gone),  # retry of a send that fails
            (kit.staff, send(kit.ref, "a2"), m_a),
        ],
    )
    assert isinstance(out[1], NotFound) and isinstance(out[2], NotFound)
    assert [r[0].seq for r in (out[0], out[3]) if not isinstance(r, BaseException)] == [1, 2]
    assert [s for s, _, _ in await rows(db, kit.matter.id)] == [1, 2]


async def test_a_failing_batch_rolls_back_and_its_sends_are_retried_alone(
    db: Database, hub: Hub, committer: GroupCommit, make_firm: MakeFirm
) -> None:
    """A database error (here a planted row holding the next seq of one matter)
    spoils the whole transaction: nothing of the batch stays written, and each
    send is retried alone, so only the broken matter's send fails."""
    kit = await make_firm()
    broken = await kit.add_matter(title="Broken")
    m_a, m_broken = (
        await cached(db, kit.staff, kit.ref),
        await cached(db, kit.staff, broken.reference),
    )
    async with db.write() as session:  # seq 1 taken without moving last_seq
        await session.execute(
            insert(Event).values(
                matter_id=broken.id,
                seq=1,
                kind="message",
                audience="portal",
                actor_kind="staff",
                actor_id=kit.staff.id,
                actor_name="planted",
                payload="{}",
                client_id="planted",
                created_at=utcnow(),
            )
        )
    watcher = Rec(kit.staff)
    await hub.join(kit.matter.id, watcher)
    with counting_begins(db) as begins:
        out = await settle(
            committer,
            [
                (kit.staff, send(kit.ref, "a1"), m_a),
                (kit.staff, send(broken.reference, "b1"), m_broken),
                (kit.staff, send(kit.ref, "a2"), m_a),
            ],
        )
    assert len(begins) == 1 + 3  # the batch, then one transaction per send
    assert isinstance(out[1], Exception) and not isinstance(out[1], RtPortalError)
    assert [r[0].seq for r in (out[0], out[2]) if not isinstance(r, BaseException)] == [1, 2]
    # Nothing half-written: the broken matter's counter and rows are as before.
    assert await head(db, broken.id) == 0
    assert [(s, c) for s, c, _ in await rows(db, broken.id)] == [(1, "planted")]
    assert [(s, c) for s, c, _ in await rows(db, kit.matter.id)] == [(1, "a1"), (2, "a2")]
    await watcher.until(lambda: len(watcher.events) >= 2)
    assert watcher.seqs(kit.matter.id) == [1, 2]  # published once each, after their commit


async def test_append_batch_rolled_back_leaves_no_trace(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    matter = await cached(db, kit.staff, kit.ref)
    items = [
        AppendItem(matter, kit.staff, Send(matter.reference, "message", "portal", {"sent_at": i}))
        for i in range(5)
    ]

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.write() as session:
            results = await stream.append_batch(session, items)
            assert [r[0].seq for r in results if not isinstance(r, RtPortalError)] == [
                1,
                2,
                3,
                4,
                5,
            ]
            raise Abort
    assert await head(db, kit.matter.id) == 0
    assert await rows(db, kit.matter.id) == []
    async with db.write() as session:
        results = await stream.append_batch(session, items[:2])
    assert [r[0].seq for r in results if not isinstance(r, RtPortalError)] == [1, 2]


@pytest.mark.parametrize("case", ["one", "one-retry", "batch"])
async def test_the_driver_statements_run_in_the_sessions_transaction(
    db: Database, make_firm: MakeFirm, case: str
) -> None:
    """append_batch runs its statements on the driver's connection: they must
    run in the session's transaction. Their rows are seen by the session's
    own SQLAlchemy statements, not by another connection before the commit,
    and a rollback leaves nothing (each path: a batch of one, a retry of a
    stored key, a batch over two matters)."""
    kit = await make_firm()
    other = await kit.add_matter()
    one = await cached(db, kit.staff, kit.ref)
    two = await cached(db, kit.staff, other.reference)
    async with db.write() as session:
        await stream.append_batch(
            session,
            [AppendItem(one, kit.staff, Send(one.reference, "message", "portal", {}, None, "k"))],
        )
    before = [await rows(db, m.id) for m in (one, two)]
    retry = AppendItem(one, kit.staff, Send(one.reference, "message", "portal", {}, None, "k"))
    items = {
        "one": [
            AppendItem(
                two,
                kit.staff,
                Send(two.reference, "message", "portal", {"sent_at": 1}, b"x", "new"),
            )
        ],
        "one-retry": [retry],
        "batch": [
            retry,
            AppendItem(
                one,
                kit.staff,
                Send(one.reference, "message", "portal", {"sent_at": 2}, None, "new"),
            ),
            AppendItem(two, kit.staff, Send(two.reference, "message", "portal", {"sent_at": 3})),
            AppendItem(
                two,
                kit.staff,
                Send(two.reference, "message", "portal", {"sent_at": 4}, b"y", "new"),
            ),
        ],
    }[case]

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.write() as session:
            results = await stream.append_batch(session, items)
            created = [r[0] for r in results if not isinstance(r, RtPortalError) and r[1]]
            assert len(created) == sum(1 for i in items if i is not retry)
            # The session sees the driver's writes: one transaction, one connection...
            for event in created:
                assert await stream.head(session, event.matter_id) >= event.seq
            # ...another connection does not, before the commit.
            assert [await rows(db, m.id) for m in (one, two)] == before
            raise Abort
    assert [await rows(db, m.id) for m in (one, two)] == before
    assert await head(db, one.id) == 1 and await head(db, two.id) == 0


@pytest.mark.parametrize("size", [1, 2])
async def test_a_driver_error_is_raised_as_sqlalchemys(
    db: Database, make_firm: MakeFirm, size: int
) -> None:
    """The driver's own exception (here the unique (matter, seq) of a planted
    row) reaches callers as the SQLAlchemy error it always was, and the
    rollback leaves the planted row alone."""
    kit = await make_firm()
    matter = await cached(db, kit.staff, kit.ref)
    async with db.write() as session:  # seq 1 taken without moving last_seq
        await session.execute(
            insert(Event).values(
                matter_id=matter.id,
                seq=1,
                kind="message",
                audience="portal",
                actor_kind="staff",
                actor_id=kit.staff.id,
                actor_name="planted",
                payload="{}",
                created_at=utcnow(),
            )
        )
    items = [
        AppendItem(matter, kit.staff, Send(matter.reference, "message", "portal", {"sent_at": i}))
        for i in range(size)
    ]
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await stream.append_batch(session, items)
    assert await head(db, matter.id) == 0
    assert [(s, c) for s, c, _ in await rows(db, matter.id)] == [(1, None)]


async def test_two_workers_batches_on_overlapping_matters(
    db: Database, settings: Settings, make_firm: MakeFirm
) -> None:
    """Two committers on their own engines (two workers) write batches naming
    the same matters in opposite orders at once: every send lands, gapless."""
    kit = await make_firm()
    matters = [kit.matter] + [await kit.add_matter(title=f"M{i}") for i in range(4)]
    other_db = Database(settings.database_url)
    hubs = [Hub(d, broker_from_url("memory://"), settings, ACCESS_QUERIES) for d in (db, other_db)]
    workers = [
        GroupCommit(d, h.publish, settings, can_access)
        for d, h in zip((db, other_db), hubs, strict=True)
    ]
    try:
        caches = [
            [await cached(d, kit.staff, m.reference) for m in matters] for d in (db, other_db)
        ]
        rounds = 6

        async def batch(w: int, r: int) -> list[Any]:
            order = list(range(len(matters)))
            if w:
                order.reverse()
            calls = [
                (kit.staff, send(matters[i].reference, f"w{w}-r{r}-m{i}"), caches[w][i])
                for i in order
            ]
            return await settle(workers[w], calls)

        with counting_begins(db) as begins, counting_begins(other_db) as other_begins:
            for r in range(rounds):
                out = await asyncio.gather(batch(0, r), batch(1, r))
                for results in out:
                    assert all(not isinstance(x, BaseException) for x in results), results
        # One transaction per batch: none failed (a deadlock would have been
        # retried one send at a time, and counted here).
        assert len(begins) + len(other_begins) == 2 * rounds
    finally:
        await other_db.close()
    for m in matters:
        assert [s for s, _, _ in await rows(db, m.id)] == list(range(1, 2 * rounds + 1))
        assert await head(db, m.id) == 2 * rounds


async def test_http_posts_share_the_group_commit(
    app: Any, http: Any, make_firm: MakeFirm, db: Database
) -> None:
    """Concurrent HTTP posts (some retries of one client_id) are gapless and
    idempotent; they go through app.state.committer."""
    kit = await make_firm()
    assert isinstance(app.state.committer, GroupCommit)
    url = f"/api/v1/matters/{kit.ref}/events"

    async def post(client_id: str, n: int) -> Any:
        payload = {"thread": "t", "to": [kit.contact.id], "sent_at": n}
        body = {"kind": "message", "client_id": client_id, "payload": payload}
        return await http.post(url, json=body, headers=kit.auth("staff"))

    async with asyncio.timeout(TIMEOUT):
        answers = await asyncio.gather(
            *(post(f"h{i}", i) for i in range(12)), *(post("same", 0) for _ in range(4))
        )
    for r in answers:
        assert r.status_code in (200, 201), r.text
    created = [r.json() for r in answers if r.status_code == 201]
    dups = [r.json() for r in answers if r.status_code == 200]
    assert len(created) == 13 and len(dups) == 3
    assert sorted(a["seq"] for a in created) == list(range(1, 14))
    same = {a["seq"] for a in created + dups if a["event"]["client_id"] == "same"}
    assert len(same) == 1
    conflict = await http.post(
        url,
        json={
            "kind": "message",
            "client_id": "same",
            "payload": {"thread": "t", "to": [kit.contact.id], "sent_at": 1},
        },
        headers=kit.auth("staff"),
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Event).where(Event.matter_id == kit.matter.id)
        )
    assert count == 13


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "in-a-batch"])
async def test_the_same_send_on_two_workers_at_once_is_stored_once(
    db: Database, settings: Settings, make_firm: MakeFirm, batched: bool
) -> None:
    """A client's retry reaching another worker while the first attempt commits:
    the second batch takes the matter lock after the first commits, then finds
    the stored key (a duplicate with the same seq), never a unique violation.
    ``batched``: each worker's batch also holds a send to another matter (the
    multi-row statements); alone: a batch of one (the two-statement path)."""
    kit = await make_firm()
    side = await kit.add_matter(title="Side")
    other_db = Database(settings.database_url)
    workers = [
        GroupCommit(
            d,
            Hub(d, broker_from_url("memory://"), settings, ACCESS_QUERIES).publish,
            settings,
            can_access,
        )
        for d in (db, other_db)
    ]
    try:
        matters = [await cached(d, kit.contact, kit.ref) for d in (db, other_db)]
        sides = [await cached(d, kit.contact, side.reference) for d in (db, other_db)]

        async def one_round(r: int) -> None:
            action = send(kit.ref, f"same-{r}", {"sent_at": r})
            calls = [
                w.append(kit.contact, action, m) for w, m in zip(workers, matters, strict=True)
            ]
            if batched:  # queued in the same loop turn: the same batch
                calls += [
                    w.append(kit.contact, send(side.reference, f"side-{r}-{i}"), m)
                    for i, (w, m) in enumerate(zip(workers, sides, strict=True))
                ]
            async with asyncio.timeout(TIMEOUT):
                out = (await asyncio.gather(*calls))[:2]
            assert sorted(created for _, created, _ in out) == [False, True]
            assert {event.seq for event, _, _ in out} == {r + 1}

        rounds = 15
        with counting_begins(db) as begins, counting_begins(other_db) as other_begins:
            for r in range(rounds):
                await one_round(r)
        # One transaction per worker and round: no batch failed and was retried
        # one send at a time (which would hide a unique violation).
        assert len(begins) + len(other_begins) == 2 * rounds
    finally:
        await other_db.close()
    assert [(s, c) for s, c, _ in await rows(db, kit.matter.id)] == [
        (r + 1, f"same-{r}") for r in range(rounds)
    ]
    assert await head(db, kit.matter.id) == rounds
    assert await head(db, side.id) == (2 * rounds if batched else 0)
