"""The per-matter event log against the real test database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from typing import Any

import pytest
from sqlalchemy import func, select

from rtportal.access import membership
from rtportal.db import Database
from rtportal.db.models import Event, Matter
from rtportal.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unavailable
from rtportal.events import log as stream
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.settings import DEFAULT_EVENT_BLOB_MAX, Settings
from tests.conftest import FirmKit, MakeFirm


async def _append(
    db: Database,
    kit: FirmKit,
    actor: Principal,
    *,
    client_id: str | None = None,
    kind: str = "message",
    audience: str = "portal",
    payload: dict[str, Any] | None = None,
    blob: bytes | None = None,
    settings: Settings | None = None,
) -> tuple[StoredEvent, bool]:
    async with db.write() as session:
        matter = await membership.can_access(session, actor, kit.ref)
        return await stream.append(
            session,
            matter=matter,
            actor=actor,
            kind=kind,
            audience=audience,
            payload=payload if payload is not None else {"sent_at": 1},
            blob=blob,
            client_id=client_id,
            settings=settings,
        )


async def _rows(db: Database, matter_id: int) -> list[tuple[int, str | None]]:
    async with db.read() as session:
        result = await session.execute(
            select(Event.seq, Event.client_id)
            .where(Event.matter_id == matter_id)
            .order_by(Event.seq)
        )
        return [(int(s), c) for s, c in result.all()]


async def _head(db: Database, matter_id: int) -> int:
    async with db.read() as session:
        return await stream.head(session, matter_id)


async def test_concurrent_writers_get_gapless_ordered_seqs(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    writers, per_writer = 12, 8

    async def writer(w: int) -> list[int]:
        seqs = []
        for k in range(per_writer):
            event, created = await _append(
                db, kit, kit.staff, client_id=f"w{w}-{k}", payload={"thread": f"w{w}", "sent_at": k}
            )
            assert created
            seqs.append(event.seq)
        return seqs

    results = await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(writers))), 60)
    total = writers * per_writer
    assert sorted(s for seqs in results for s in seqs) == list(range(1, total + 1))
    for seqs in results:
        assert seqs == sorted(seqs)  # each writer's events keep its order
    rows = await _rows(db, kit.matter.id)
    assert [s for s, _ in rows] == list(range(1, total + 1))
    assert await _head(db, kit.matter.id) == total


def _process_writer(
    url: str, ref: str, actor: tuple[Any, ...], tag: str, count: int, start: Any
) -> None:
    """Runs in a separate OS process: ``count`` sequential appends to one matter."""

    async def main() -> None:
        db = Database(url)
        principal = Principal(*actor)
        try:
            for k in range(count):
                async with db.write() as session:
                    matter = await membership.can_access(session, principal, ref)
                    await stream.append(
                        session,
                        matter=matter,
                        actor=principal,
                        kind="message",
                        audience="portal",
                        payload={"thread": tag, "sent_at": k},
                        blob=None,
                        client_id=f"{tag}-{k}",
                    )
        finally:
            await db.close()

    start.wait(30)  # all processes begin together to maximise contention
    asyncio.run(main())


async def test_several_processes_write_one_matter_without_gaps(
    db: Database, make_firm: MakeFirm, settings: Settings
) -> None:
    """Several OS processes (separate engines, pools, interpreters) on one matter."""
    kit = await make_firm()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs, per_proc = 3, 25
    actor = (kit.staff.kind, kit.staff.id, kit.staff.firm_id, kit.staff.display_name)
    children = [
        ctx.Process(
            target=_process_writer,
            args=(settings.database_url, kit.ref, actor, f"p{i}", per_proc, start),
        )
        for i in range(procs)
    ]
    for child in children:
        child.start()
    try:
        start.set()
        loop = asyncio.get_running_loop()
        for child in children:
            await asyncio.wait_for(loop.run_in_executor(None, child.join, 90), 95)
            assert child.exitcode == 0, f"writer process {child.pid} failed: {child.exitcode}"
    finally:
        for child in children:
            if child.is_alive():
                os.kill(child.pid or 0, 9)
                child.join(5)
    rows = await _rows(db, kit.matter.id)
    assert [s for s, _ in rows] == list(range(1, procs * per_proc + 1))
    for i in range(procs):
        mine = [(s, c) for s, c in rows if c and c.startswith(f"p{i}-")]
        assert [c for _, c in mine] == [f"p{i}-{k}" for k in range(per_proc)]  # order kept
    assert await _head(db, kit.matter.id) == procs * per_proc


async def test_retry_returns_stored_event_without_new_row(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    first, created = await _append(db, kit, kit.contact, client_id="msg-1", blob=b"\x00ct")
    assert created and first.seq == 1
    again, created_again = await _append(db, kit, kit.contact, client_id="msg-1", blob=b"\x00ct")
    assert created_again is False
    assert again.seq == 1 and again.payload == first.payload and again.blob == b"\x00ct"
    assert again.created_at == first.created_at
    assert await _rows(db, kit.matter.id) == [(1, "msg-1")]
    # The give-back of the tentative seq leaves no gap.
    nxt, _ = await _append(db, kit, kit.contact, client_id="msg-2")
    assert nxt.seq == 2
    assert await _head(db, kit.matter.id) == 2


async def test_retry_of_an_empty_blob_is_a_duplicate_not_a_conflict(
    db: Database, make_firm: MakeFirm
) -> None:
    """An empty blob ("" on the wire) is stored as NULL or b"": a retry must still match."""
    kit = await make_firm()
    first, created = await _append(db, kit, kit.contact, client_id="empty-1", blob=b"")
    assert created
    again, created_again = await _append(db, kit, kit.contact, client_id="empty-1", blob=b"")
    assert created_again is False and again.seq == first.seq
    with pytest.raises(Conflict):  # an empty blob is still not a non-empty one
        await _append(db, kit, kit.contact, client_id="empty-1", blob=b"x")
    assert await _head(db, kit.matter.id) == 1


async def test_reused_client_id_with_other_content_conflicts(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await _append(db, kit, kit.staff, client_id="x", payload={"sent_at": 1}, blob=b"one")
    for change in (
        {"payload": {"sent_at": 2}, "blob": b"one"},
        {"payload": {"sent_at": 1}, "blob": b"two"},
        {"payload": {}, "blob": b"one", "kind": "note", "audience": "staff"},
        {"payload": {"sent_at": 1, "thread": "t"}, "blob": b"one"},
    ):
        with pytest.raises(Conflict):
            await _append(db, kit, kit.staff, client_id="x", **change)  # type: ignore[arg-type]
    assert await _rows(db, kit.matter.id) == [(1, "x")]
    assert await _head(db, kit.matter.id) == 1


async def test_client_id_is_scoped_per_actor(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    a, ca = await _append(db, kit, kit.staff, client_id="same")
    b, cb = await _append(db, kit, kit.contact, client_id="same")
    assert ca and cb and (a.seq, b.seq) == (1, 2)


async def test_concurrent_retries_of_one_id_make_one_event(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                _append(db, kit, kit.staff, client_id="dup", payload={"sent_at": 1})
                for _ in range(6)
            )
        ),
        60,
    )
    assert sum(1 for _, created in results if created) == 1
    assert {e.seq for e, _ in results} == {1}
    assert await _rows(db, kit.matter.id) == [(1, "dup")]
    assert await _head(db, kit.matter.id) == 1


async def test_read_since_pages_in_order(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    for i in range(25):
        await _append(db, kit, kit.staff, payload={"sent_at": i})
    async with db.read() as session:
        pages, after = [], 0
        while True:
            page = await stream.read_since(session, kit.matter.id, after, 10)
            if not page:
                break
            pages.append([e.seq for e in page])
            after = page[-1].seq
        assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
        assert await stream.read_since(session, kit.matter.id, 25, 10) == []
        assert await stream.read_since(session, kit.matter.id, 0, 0) == []
        events = await stream.read_since(session, kit.matter.id, 4, 1)
        assert events[0].payload == {"sent_at": 4} and events[0].matter == kit.ref
        assert await stream.heads(session, [kit.matter.id, -1]) == {kit.matter.id: 25}


async def test_limits_and_validation_leave_nothing_behind(
    db: Database, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    small = Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": str(settings.data_dir),
            "RTPORTAL_SECRET_KEY": "ab" * 32,
            "RTPORTAL_EVENT_PAYLOAD_MAX": "100",
            "RTPORTAL_EVENT_BLOB_MAX": "10",
        }
    )
    with pytest.raises(PayloadTooLarge):
        await _append(db, kit, kit.staff, payload={"x": "a" * 200}, settings=small)
    with pytest.raises(PayloadTooLarge):
        await _append(db, kit, kit.staff, blob=b"b" * 11, settings=small)
    with pytest.raises(PayloadTooLarge):  # default limits apply without settings
        await _append(db, kit, kit.staff, blob=b"b" * (DEFAULT_EVENT_BLOB_MAX + 1))
    bad: list[dict[str, Any]] = [
        {"kind": ""},
        {"kind": "Message"},
        {"kind": "x" * 33},
        {"audience": "everyone"},
        {"client_id": ""},
        {"client_id": "a" * 65},
        {"client_id": "has space"},
        {"payload": ["not", "an", "object"]},
        {"payload": {"x": {1, 2}}},
        # not JSON: stored, no reader could encode the matter's log again
        {"payload": {"x": float("nan")}},
        {"payload": {"x": [float("-inf")]}},
        {"payload": {"x": "\ud800"}},  # a lone surrogate is not UTF-8
    ]
    for kwargs in bad:
        with pytest.raises(BadRequest):
            await _append(db, kit, kit.staff, **kwargs)
    # A contact writes only what clients may see.
    with pytest.raises(BadRequest):
        await _append(db, kit, kit.contact, audience="staff")
    with pytest.raises(BadRequest):
        await _append(db, kit, kit.contact, payload={"staff_note": "sneaky"})
    assert await _rows(db, kit.matter.id) == []
    assert await _head(db, kit.matter.id) == 0
    ok, _ = await _append(
        db, kit, kit.staff, payload={"thread": "a" * 50}, blob=b"b" * 10, settings=small
    )
    assert ok.seq == 1


async def test_rollback_leaves_no_gap_and_no_row(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.write() as session:
            matter = await membership.can_access(session, kit.staff, kit.ref)
            event, _ = await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind="message",
                audience="portal",
                payload={},
                blob=None,
                client_id="lost",
            )
            assert event.seq == 1
            raise Boom
    assert await _rows(db, kit.matter.id) == []
    assert await _head(db, kit.matter.id) == 0
    event, created = await _append(db, kit, kit.staff, client_id="lost")
    assert created and event.seq == 1


async def test_can_access_scopes_by_firm_and_membership(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    private = await kit.add_matter(members=())
    async with db.read() as session:
        for who in (kit.staff, kit.admin, kit.contact, kit.bot):
            assert (await membership.can_access(session, who, kit.ref)).id == kit.matter.id
        assert (await membership.can_access(session, kit.staff, private.reference)).id == private.id
        for who, ref in (
            (kit.contact, private.reference),
            (kit.bot, private.reference),
            (other.staff, kit.ref),
            (other.contact, kit.ref),
            (other.bot, kit.ref),
            (kit.staff, other.ref),
            (kit.contact, other.ref),
            (kit.staff, "aaaa0000"),
            (kit.staff, "AAAA00000"),
            (kit.staff, "' OR 1=1 --"),
        ):
            with pytest.raises(NotFound):
                await membership.can_access(session, who, ref)
        assert [m.reference for m in await membership.list_matters(session, kit.contact)] == [
            kit.ref
        ]
        staff_refs = {m.reference for m in await membership.list_matters(session, kit.staff)}
        assert staff_refs == {kit.ref, private.reference}
    await kit.remove_member(kit.contact)
    async with db.read() as session:
        with pytest.raises(NotFound):
            await membership.can_access(session, kit.contact, kit.ref)
        assert await membership.list_matters(session, kit.contact) == []


async def test_append_refuses_a_matter_of_another_firm(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    async with db.write() as session:
        matter = await session.get(Matter, other.matter.id)
        assert matter is not None
        with pytest.raises(NotFound):
            await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind="message",
                audience="portal",
                payload={},
                blob=None,
                client_id=None,
            )
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Event).where(Event.matter_id == other.matter.id)
        )
    assert count == 0


async def test_wire_round_trip(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    event, _ = await _append(
        db,
        kit,
        kit.bot,
        client_id="rt",
        payload={"thread": "ü", "parent": "s1.x", "item": f"b{kit.bot.id}.rt"},
        blob=bytes(range(256)),
        kind="note",
        audience="staff",
    )
    wire = event.to_wire()
    assert wire["actor"] == {"kind": "bot", "id": kit.bot.id, "name": "Robo"}
    assert wire["created_at"].endswith("Z")
    assert StoredEvent.from_wire(kit.matter.id, wire) == event
    async with db.read() as session:
        (stored,) = await stream.read_since(session, kit.matter.id, 0, 10)
    assert stored == event


async def test_no_free_pooled_connection_is_unavailable(db: Database) -> None:
    """A checkout that waits past ``pool_timeout`` (a reconnect storm holding
    every pooled connection) is ``unavailable`` (503 / retry), not ``internal``."""
    small = Database(db.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with small.read() as holder:
            await holder.execute(select(func.count()).select_from(Matter))
            with pytest.raises(Unavailable):
                async with small.read() as session:
                    await session.execute(select(func.count()).select_from(Matter))
            if small.backend == "postgresql":  # one engine: writers share the pool
                with pytest.raises(Unavailable):
                    async with small.write() as session:
                        await session.execute(select(func.count()).select_from(Matter))
        # The pool recovers once the holder is done.
        async with small.read() as session:
            count = (await session.execute(select(func.count()).select_from(Matter))).scalar()
            assert count is not None
    finally:
        await small.close()


async def test_sqlite_writers_of_one_process_queue(db: Database, make_firm: MakeFirm) -> None:
    """Concurrent write transactions of one process all commit in turn
    (SQLite: on the process's write lock), gapless, none ``unavailable``."""
    kit = await make_firm()
    results = await asyncio.gather(
        *(_append(db, kit, kit.bot, payload={"sent_at": k}) for k in range(24))
    )
    assert sorted(event.seq for event, _ in results) == list(range(1, 25))
    assert await _head(db, kit.matter.id) == 24
