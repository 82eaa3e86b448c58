"""Log pages bounded in bytes as well as in count (read_since, read_before, HTTP history)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets

import httpx

from rtportal.access import membership
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.app import create_app
from rtportal.db import Database
from rtportal.events import log as stream
from rtportal.events.event import StoredEvent, canonical_json
from rtportal.principal import Principal
from rtportal.realtime.broker import from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.conftest import MakeFirm


async def test_pages_are_bounded_by_stored_bytes_and_stay_gapless(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    # Stored sizes: payload text + blob. Non-ASCII text counts in bytes.
    sizes = []
    for i in range(12):
        payload = {"text": "é" * (100 * (i % 3))}
        blob = bytes(1000 + 500 * (i % 4))
        async with db.write() as session:
            matter = await membership.can_access(session, kit.staff, kit.ref)
            await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind="note",
                audience="staff",
                payload=payload,
                blob=blob,
                client_id=None,
            )
        sizes.append(len(canonical_json(payload).encode()) + len(blob))
    budget = 4000

    def expected_forward(after: int, limit: int) -> list[int]:
        page: list[int] = []
        total = 0
        for seq in range(after + 1, min(after + limit, 12) + 1):
            if page and total >= budget:
                break
            page.append(seq)
            total += sizes[seq - 1]
        return page

    async with db.read() as session:
        seen: list[int] = []
        after = 0
        while True:
            page = await stream.read_since(session, kit.matter.id, after, 10, budget)
            seqs = [e.seq for e in page]
            assert seqs == expected_forward(after, 10)
            if not page:
                break
            assert sum(sizes[s - 1] for s in seqs[:-1]) < budget
            seen += seqs
            after = seqs[-1]
        assert seen == list(range(1, 13))
        # One event larger than the budget still makes a page (the reader never stalls).
        (only,) = await stream.read_since(session, kit.matter.id, 0, 10, 1)
        assert only.seq == 1
        # Backward: the newest events first, then on before the page's first seq.
        back: list[int] = []
        before = 13
        while True:
            page = await stream.read_before(session, kit.matter.id, before, 10, budget)
            if not page:
                break
            seqs = [e.seq for e in page]
            assert seqs == sorted(seqs) and seqs[-1] == before - 1
            assert sum(sizes[s - 1] for s in seqs[1:]) < budget
            back = seqs + back
            before = seqs[0]
        assert back == list(range(1, 13))
        assert [e.seq for e in await stream.read_before(session, kit.matter.id, 13, 3)] == [
            10,
            11,
            12,
        ]


async def test_history_page_is_bounded_in_bytes_and_next_continues(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    small = dataclasses.replace(settings, history_page_bytes=1024)
    app = create_app(small)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            url = f"/api/v1/matters/{kit.ref}/events"
            blob = base64.b64encode(bytes(600)).decode()
            for i in range(7):
                body = {"kind": "message", "payload": {"thread": "t", "sent_at": i}, "blob": blob}
                r = await http.post(url, json=body, headers=kit.auth("staff"))
                assert r.status_code == 201, r.text
            # ~610 stored bytes per event: a page stops at the second event.
            pages: list[list[int]] = []
            after = "0"
            while True:
                r = await http.get(
                    url, params={"after": after, "limit": 100}, headers=kit.auth("staff")
                )
                assert r.status_code == 200, r.text
                body = r.json()
                pages.append([e["seq"] for e in body["events"]])
                after = str(body["next"])
                if not body["more"]:
                    break
            assert pages == [[1, 2], [3, 4], [5, 6], [7]]
            # A client pages the same way by cursor tokens (it never sees a seq).
            sizes: list[int] = []
            params: dict[str, str | int] = {"limit": 100}
            while True:
                r = await http.get(url, params=params, headers=kit.auth("contact"))
                assert r.status_code == 200, r.text
                body = r.json()
                assert all("seq" not in e and isinstance(e["cursor"], str) for e in body["events"])
                sizes.append(len(body["events"]))
                params = {"after": body["next"], "limit": 100}
                if not body["more"]:
                    break
            assert sizes == [2, 2, 2, 1]
            back: list[list[int]] = []
            before = "8"
            while True:
                r = await http.get(
                    url, params={"before": before, "limit": 100}, headers=kit.auth("staff")
                )
                body = r.json()
                back.append([e["seq"] for e in body["events"]])
                before = str(body["prev"])
                if not body["more"]:
                    break
            assert back == [[6, 7], [4, 5], [2, 3], [1]]


class _Listener:
    """A hub listener that records what it gets and wakes the test on each event."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.seqs: list[int] = []
        self.changed = asyncio.Event()

    def deliver(self, event: StoredEvent) -> None:
        self.seqs.append(event.seq)
        self.changed.set()

    def close(self, code: int) -> None:
        self.changed.set()


async def test_hub_gap_fill_reads_pages_bounded_in_bytes(
    settings: Settings, db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    small = dataclasses.replace(settings, backlog_page_bytes=1024, hub_poll_interval=60.0)
    bus = f"memory://pages-{secrets.token_hex(4)}"
    dbs = [Database(settings.database_url) for _ in range(2)]
    brokers = [from_url(bus) for _ in range(2)]
    hubs = [Hub(d, b, small, ACCESS_QUERIES) for d, b in zip(dbs, brokers, strict=True)]
    for hub in hubs:
        await hub.start()
    try:
        receiver, publisher = hubs
        listener = _Listener(kit.contact)
        await receiver.join(kit.matter.id, listener)
        # Six ~620-byte events committed and never published (lost broker
        # messages), then a seventh published: the gap is read in pages of two.
        events: list[StoredEvent] = []
        async with db.write() as session:
            matter = await membership.can_access(session, kit.staff, kit.ref)
            for i in range(7):
                event, _ = await stream.append(
                    session,
                    matter=matter,
                    actor=kit.staff,
                    kind="message",
                    audience="portal",
                    payload={"sent_at": i},
                    blob=bytes(600),
                    client_id=None,
                )
                events.append(event)
        await publisher.publish(events[-1:])
        async with asyncio.timeout(10):
            while listener.seqs != [1, 2, 3, 4, 5, 6, 7]:
                listener.changed.clear()
                await listener.changed.wait()
        assert receiver.gap_reads == 3
    finally:
        for hub, broker, worker_db in zip(hubs, brokers, dbs, strict=True):
            await hub.stop()
            await broker.close()
            await worker_db.close()


async def test_a_cursor_past_any_seq_is_a_bad_request_not_a_server_error(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Seqs are 32-bit columns (and the PostgreSQL append function's types): a larger
    cursor names no event and must be refused as such, not fail in the driver."""
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/events"
    for name in ("after", "before"):
        for value, status in ((2**31 - 1, 200), (2**31, 400), (2**40, 400), (2**53 - 1, 400)):
            r = await http.get(url, params={name: str(value)}, headers=kit.auth("staff"))
            assert r.status_code == status, (name, value, r.text)
            if status == 400:
                assert r.json()["error"]["details"]["reason"] == "not_a_cursor"
    threads = f"/api/v1/matters/{kit.ref}/threads"
    for path in (threads, f"{threads}/t1/items"):
        r = await http.get(path, params={"before": str(2**40)}, headers=kit.auth("staff"))
        assert r.status_code == 400, (path, r.text)
