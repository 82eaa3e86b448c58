"""The conversation stream across real worker processes (issue 2's proof).

Every test starts its own ``uvicorn`` workers (tests/support/worker.py) that
share one database and one Redis, drives them with real websocket clients
(tests/support/wsclient.py), breaks things the way production breaks
(disconnects, ``kill -9``, a deploy's SIGTERM, a Redis outage, a client that
stops reading, a client removed or logged out while connected elsewhere) and
then compares what every client accepted with the database log:

* 0 lost: every client's per-matter log equals the database's;
* 0 duplicated: no seq accepted twice, every client id exactly once;
* one order: (seq -> client_id) is the same for every receiver;
* audience: a contact gets exactly the portal events, never a ``staff_*`` key.

Set ``RTPORTAL_TEST_SEED`` to replay scenario 2's random disconnects.

Backends: the database is ``RTPORTAL_TEST_DATABASE_URL`` when set (CI's
PostgreSQL run), otherwise one SQLite file per test shared by its workers.
Redis is always a private ``redis-server`` of this module (or of the test
that stops it), never the machine's.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import signal
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rtportal.access.queries import ACCESS_QUERIES
from rtportal.access.removal import remove_member
from rtportal.access.sessions import issue_token, revoke_principal_tokens
from rtportal.db import Database
from rtportal.db.models import (
    Contact,
    Event,
    Firm,
    Matter,
    MatterMember,
    OutboxMessage,
    StaffUser,
)
from rtportal.events.cursor import CursorCodec
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.conftest import FAST_LOGIN_ENV
from tests.support.logins import secret_for
from tests.support.procs import RedisProcess
from tests.support.worker import Worker, migrated_db, worker_env
from tests.support.wsclient import ConnectionLost, ServerError, StreamClient, wait_until

pytestmark = pytest.mark.timeout(300)

SEED = int(os.environ.get("RTPORTAL_TEST_SEED", "0")) or secrets.randbelow(2**31)
# The workers' server secret; the test process issues tokens with it too.
SECRET_HEX = secrets.token_hex(32)
CODEC = CursorCodec(bytes.fromhex(SECRET_HEX))  # the workers' cursor tokens (contacts)
KEY = bytes.fromhex(SECRET_HEX)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisProcess]:
    """A private redis-server for this module's workers, stopped by its pid."""
    redis = RedisProcess()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return os.environ.get("RTPORTAL_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The migrated shared database, opened in the test process for seeding/checks."""
    async with migrated_db(database_url) as database:
        yield database


Spawn = Callable[..., Awaitable[Worker]]


@pytest.fixture
def topic_prefix() -> str:
    """This test's Redis topic prefix: SQLite matter ids repeat across tests sharing a Redis."""
    return f"mp{secrets.token_hex(4)}:"


def prefixed(broker_url: str, prefix: str) -> str:
    return f"{broker_url}{'&' if '?' in broker_url else '?'}prefix={prefix}"


@pytest.fixture
async def spawn(tmp_path: Path, database_url: str, topic_prefix: str) -> AsyncIterator[Spawn]:
    """Start workers on the shared database; every one is stopped at teardown."""
    workers: list[Worker] = []
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)

    async def start(name: str, broker_url: str, **extra: str) -> Worker:
        env = worker_env(
            database_url=database_url,
            broker_url=prefixed(broker_url, topic_prefix),
            data_dir=data_dir,
            secret_key=SECRET_HEX,
            extra={f"RTPORTAL_{k.upper()}": v for k, v in extra.items()},
        )
        worker = Worker(name, env, tmp_path)
        workers.append(worker)
        await worker.start()
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
        # Captured: pytest shows it only when the test failed.
        for worker in workers:
            lines = [
                line
                for line in worker.log_text(20_000).splitlines()
                if line.strip() and "Deprecat" not in line and "warnings.warn" not in line
            ]
            print(f"--- worker {worker.name} (pid {worker.pid}) log tail:", *lines[-60:], sep="\n")


@pytest.fixture
async def clients() -> AsyncIterator[list[StreamClient]]:
    """Clients a test registers here are closed at teardown, even on failure."""
    made: list[StreamClient] = []
    try:
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


# ------------------------------------------------------------------- seeding


@dataclass
class Cast:
    """Test data: one firm, its people (with tokens) and matters."""

    matters: list[str]
    matter_ids: dict[str, int]
    staff: list[str]  # bearer tokens
    contacts: list[str]


async def seed(db: Database, *, staff: int, contacts: int, matters: int) -> Cast:
    """A firm with unique matter references (tests share PostgreSQL without truncation)."""
    tag = secrets.token_hex(3).upper()
    async with db.write() as s:
        firm = Firm(name=f"Multiprocess {tag}", slug=f"multiprocess-{tag}")
        s.add(firm)
        await s.flush()
        people = [
            StaffUser(firm_id=firm.id, email=f"s{i}-{tag}@example.test",
                      display_name=f"Staff {i}", role="staff")
            for i in range(staff)
        ]  # fmt: skip
        clients = [Contact(firm_id=firm.id, display_name=f"Client {i}") for i in range(contacts)]
        # References are "AAAA0000"-shaped; random letters keep tests on a
        # shared PostgreSQL apart.
        letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
        refs = [f"{letters}{secrets.randbelow(100):02d}{i:02d}" for i in range(matters)]
        rows = [Matter(firm_id=firm.id, reference=r, title=f"Matter {r}") for r in refs]
        s.add_all([*people, *clients, *rows])
        await s.flush()
        s.add_all(
            MatterMember(matter_id=m.id, principal_kind="contact", principal_id=c.id, role="client")
            for m in rows
            for c in clients
        )
        ttl = timedelta(hours=2)
        staff_tokens = [
            await issue_token(s, KEY, "staff", p.id, label="multiprocess", ttl=ttl) for p in people
        ]
        contact_tokens = [
            await issue_token(s, KEY, "contact", c.id, label="multiprocess", ttl=ttl)
            for c in clients
        ]
        ids = {m.reference: m.id for m in rows}
    STAFF_TOKENS.update(staff_tokens)
    for ref in refs:
        RECIPIENTS[ref] = sorted(c.id for c in clients)
    return Cast(refs, ids, staff_tokens, contact_tokens)


# Who sends as staff, and each seeded matter's client members (reliable_send).
STAFF_TOKENS: set[str] = set()
RECIPIENTS: dict[str, list[int]] = {}


async def db_log(db: Database, matter_id: int) -> list[tuple[int, str | None, str]]:
    """The matter's log as the database has it: (seq, client_id, audience) in seq order."""
    async with db.read() as s:
        rows = await s.execute(
            select(Event.seq, Event.client_id, Event.audience)
            .where(Event.matter_id == matter_id)
            .order_by(Event.seq)
        )
        return [(int(seq), cid, str(aud)) for seq, cid, aud in rows.all()]


# ----------------------------------------------------------------- traffic


@dataclass
class SendStats:
    acked: int = 0
    retries: int = 0  # sends that needed more than one attempt
    duplicate_acks: int = 0  # retries the server recognised as already stored
    unavailable: int = 0  # `unavailable` errors retried with the same id
    seqs: dict[str, list[int]] = field(default_factory=dict)  # client -> acked seqs in order


async def reliable_send(
    client: StreamClient,
    matter: str,
    cid: str,
    payload: dict[str, Any],
    stats: SendStats,
    **kw: Any,
) -> int:
    """Send until acked, retrying the same id (lost connection or `unavailable`).

    A staff member's message names the matter's client members (``to``: a
    new client thread needs recipients, docs/threads.md); a matter without
    any gets an internal note instead."""
    if client.token in STAFF_TOKENS and kw.get("kind", "message") == "message":
        to = RECIPIENTS.get(matter)
        if to:
            payload = {**payload, "to": to}
        else:
            payload = {k: v for k, v in payload.items() if k != "sent_at"}
            kw = {**kw, "kind": "note", "audience": "staff"}
    deadline = time.monotonic() + 90
    while True:
        try:
            ack, attempts = await client.send_until_acked(matter, cid, payload, deadline=90, **kw)
        except ServerError as exc:
            if exc.code != "unavailable" or time.monotonic() > deadline:
                raise
            stats.unavailable += 1
            continue
        if attempts > 1:
            stats.retries += 1
        if ack.get("duplicate"):
            stats.duplicate_acks += 1
        stats.acked += 1
        seq = client.at(ack)
        stats.seqs.setdefault(client.name, []).append(seq)
        return seq


async def run_sender(
    client: StreamClient,
    matters: list[str],
    count: int,
    stats: SendStats,
    *,
    pad: int = 0,
    window: int = 1,
    notes_every: int = 0,
    on_ack: Callable[[], None] | None = None,
) -> None:
    """``count`` sends alternating over ``matters``, at most ``window`` unacked at once.

    ``window=1`` awaits each ack before the next send (so the sender's seqs
    per matter must rise); a larger window pipelines like a busy client
    would (the protocol allows ``max_inflight_sends``) and keeps the test
    fast where each round trip waits on a shared, busy machine.
    ``notes_every=k`` (staff senders) makes every k-th send a staff-audience
    note (kind ``note``: staff-only, never delivered to a contact).
    """
    slots = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with slots:
            payload: dict[str, Any] = {"sent_at": i, "thread": client.name}
            # ``pad``: bytes of event on the wire, carried by the blob (base64: 4/3).
            kw: dict[str, Any] = {"blob": b"x" * (pad * 3 // 4)} if pad else {}
            if notes_every and i % notes_every == 0:
                # (a thread of their own: an internal thread takes notes only)
                payload = {"thread": f"{client.name}-notes", "text": f"t{i}"}
                kw = {**kw, "kind": "note", "audience": "staff"}
            matter = matters[i % len(matters)]
            await reliable_send(client, matter, f"{client.name}-{i}", payload, stats, **kw)
            if on_ack is not None:
                on_ack()

    if window == 1:
        for i in range(count):
            await one(i)
    else:
        await asyncio.gather(*(one(i) for i in range(count)))


async def assert_all_delivered(
    db: Database, cast: Cast, receivers: list[StreamClient], *, within: float = 60.0
) -> dict[str, list[tuple[int, str | None, str]]]:
    """Every receiver catches up; its log equals the database's as its audience sees it.

    Staff see every event; a contact sees exactly the portal-audience events
    (no staff event, only the kind's client fields), in the same order.
    """
    logs = {m: await db_log(db, cast.matter_ids[m]) for m in cast.matters}
    for m, log in logs.items():
        assert [row[0] for row in log] == list(range(1, len(log) + 1)), f"{m}: seq has gaps"
        ids = [row[1] for row in log]
        assert len(ids) == len(set(ids)), f"{m}: a client id was stored twice"

    def expected(r: StreamClient, m: str) -> list[tuple[int, str | None]]:
        return [(seq, cid) for seq, cid, aud in logs[m] if aud == "portal" or not r.is_contact]

    def heads(r: StreamClient) -> dict[str, int]:
        return {m: max((seq for seq, _ in expected(r, m)), default=0) for m in r.cursors}

    assert all(r.cursors and set(r.cursors) <= set(logs) for r in receivers)
    await asyncio.gather(*(r.caught_up(heads(r), within) for r in receivers))
    for r in receivers:
        for m in r.cursors:
            want, got = expected(r, m), r.log(m)
            missing = sorted(set(want) - set(got))
            assert got == want, (
                f"{r.name} {m}: {len(got)} accepted vs {len(want)} stored; "
                f"missing {missing[:10]}; gaps {r.gaps[:5]}"
            )
            for e in r.events[m]:  # the content rides with its id, unmixed
                p = e["payload"]
                if "sent_at" in p:
                    assert e["client_id"] == f"{p['thread']}-{p['sent_at']}", (r.name, e)
                if r.is_contact:
                    assert e["audience"] == "portal" and e["kind"] == "message", (r.name, e)
                    assert set(p) <= {"thread", "parent", "to", "item", "sent_at"}, (r.name, e)
        assert r.gaps == [], f"{r.name}: gaps on one connection: {r.gaps[:5]}"
        # Resubscribing from the cursor must not replay: exactly once, even raw.
        assert r.duplicates == 0, f"{r.name}: {r.duplicates} events delivered twice"
        assert r.dup_mismatches == [], f"{r.name}: same seq, other client_id: {r.dup_mismatches}"
        assert r.strays == [], f"{r.name}: events of matters it never subscribed"
        assert r.errors == [], f"{r.name}: unexpected frames: {r.errors[:5]}"
    return logs


def client(
    made: list[StreamClient],
    workers: list[Worker],
    token: str,
    name: str,
    prefer: int,
    **kw: Any,
) -> StreamClient:
    kw.setdefault("cursors", CODEC)
    c = StreamClient([w.ws_url for w in workers], token, name=name, prefer=prefer, **kw)
    made.append(c)
    return c


def dead_worker_report(workers: list[Worker]) -> str:
    return "\n".join(f"{w.name} died:\n{w.log_text()}" for w in workers if not w.alive())


# -------------------------------------------------------------------- tests


async def test_two_workers_deliver_each_others_events(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """Sent on B is received on A and vice versa; audience is enforced on both."""
    cast = await seed(db, staff=2, contacts=2, matters=1)
    (m,) = cast.matters
    a = await spawn("a", module_redis.url)
    b = await spawn("b", module_redis.url)
    ws = [a, b]
    staff_a = client(clients, ws, cast.staff[0], "staff-a", prefer=0)
    staff_b = client(clients, ws, cast.staff[1], "staff-b", prefer=1)
    contact_a = client(clients, ws, cast.contacts[0], "contact-a", prefer=0)
    contact_b = client(clients, ws, cast.contacts[1], "contact-b", prefer=1)
    everyone = [staff_a, staff_b, contact_a, contact_b]
    for c in everyone:
        hello = await c.connect()
        assert hello["type"] == "hello" and hello["v"] == 2
        answer = await c.subscribe([m])
        assert answer[m]["type"] == "subscribed" and c.heads[m] == 0  # a contact's: a token
    assert [c.url for c in everyone] == [a.ws_url, b.ws_url, a.ws_url, b.ws_url]

    ack_b = await staff_b.send(m, "from-b", {"thread": "hello-A"})
    ack_a = await contact_a.send(m, "from-a", {"thread": "hello-B"})
    note_payload = {"thread": "n", "text": "x"}
    note = await staff_a.send(m, "note-a", note_payload, kind="note", audience="staff")
    last = await staff_b.send(m, "last-b", {"thread": "bye", "to": RECIPIENTS[m]})
    assert "seq" not in ack_a  # a contact's ack names its event by token
    assert (ack_b["seq"], contact_a.at(ack_a), note["seq"], last["seq"]) == (1, 2, 3, 4)

    await staff_a.caught_up({m: 4}, 15)
    await staff_b.caught_up({m: 4}, 15)
    await contact_a.caught_up({m: 4}, 15)
    await contact_b.caught_up({m: 4}, 15)
    full = [(1, "from-b"), (2, "from-a"), (3, "note-a"), (4, "last-b")]
    assert staff_a.log(m) == full and staff_b.log(m) == full
    portal = [(1, "from-b"), (2, "from-a"), (4, "last-b")]
    assert contact_a.log(m) == portal and contact_b.log(m) == portal
    # Staff-only events never reach a contact, on either worker.
    for c in (contact_a, contact_b):
        assert all(e["audience"] == "portal" for e in c.events[m])
    note_seen = staff_a.events[m][2]["payload"]
    assert (note_seen["text"], note_seen["thread"]) == ("x", "n")
    assert note_seen["item"].startswith("s") and note_seen["item"].endswith(".note-a")
    assert staff_a.events[m][1]["actor"]["kind"] == "contact"
    for c in everyone:
        assert c.duplicates == 0 and c.gaps == [] and c.errors == []
    assert a.alive() and b.alive(), dead_worker_report(ws)


async def test_concurrent_senders_and_resuming_receivers(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """5 senders x 1,000 over both workers; 20 receivers dropped and resumed at random."""
    senders_n, per_sender, receivers_n = 5, 1000, 20
    rng = random.Random(SEED)
    cast = await seed(db, staff=3 + receivers_n // 2, contacts=2 + receivers_n // 2, matters=2)
    ws = [await spawn("a", module_redis.url), await spawn("b", module_redis.url)]
    tokens = cast.staff[:3] + cast.contacts[:2]  # senders: 3 staff, 2 contacts
    senders = [client(clients, ws, t, f"snd{i}", prefer=i) for i, t in enumerate(tokens)]
    rtokens = cast.staff[3:] + cast.contacts[2:]
    receivers = [
        client(clients, ws, t, f"rcv{i}", prefer=i, auto_reconnect=True)
        for i, t in enumerate(rtokens)
    ]
    assert len(senders) == senders_n and len(receivers) == receivers_n
    for r in receivers:
        await r.subscribe(cast.matters)

    # Chaos driven by progress, not by a clock: every 20th ack drops a random
    # receiver (TCP abort); it reconnects by itself, half the time to the
    # other worker, and resumes from its cursors.
    stats = SendStats()
    drops = 0
    dropping: set[asyncio.Task[bool]] = set()

    def chaos() -> None:
        if stats.acked % 20:
            return
        victim = rng.choice(receivers)
        if victim.connected:
            victim.prefer = rng.randrange(2)
            task = asyncio.get_running_loop().create_task(victim.drop(abrupt=True))
            dropping.add(task)
            task.add_done_callback(dropping.discard)
            # Counted when the abort ended a live connection: the same victim
            # can be picked again before its first drop ran (one reconnect).
            task.add_done_callback(count_drop)

    def count_drop(task: asyncio.Task[bool]) -> None:
        nonlocal drops
        if not task.cancelled() and task.exception() is None and task.result():
            drops += 1

    started = time.monotonic()
    await asyncio.gather(
        *(
            run_sender(
                s,
                cast.matters,
                per_sender,
                stats,
                window=8,
                on_ack=chaos,
                notes_every=10 if i < 3 else 0,  # the staff senders add staff notes
            )
            for i, s in enumerate(senders)
        )
    )
    send_time = time.monotonic() - started
    assert stats.acked == senders_n * per_sender
    logs = await assert_all_delivered(db, cast, receivers, within=90)
    assert sum(len(log) for log in logs.values()) == senders_n * per_sender
    # A drop fired by one of the last acks may still be reconnecting: every
    # receiver reconnects by itself, so wait for that before counting.
    await asyncio.gather(*dropping)
    await wait_until(lambda: all(r.connected for r in receivers), 30, "receivers reconnected")
    reconnects = sum(r.connects - 1 for r in receivers)
    assert drops > 50 and reconnects >= drops, (drops, reconnects)
    print(
        f"\nseed={SEED} sent={stats.acked} in {send_time:.1f}s "
        f"({stats.acked / send_time:.0f}/s), drops={drops}, reconnects={reconnects}, "
        f"dups dropped by receivers={sum(r.duplicates for r in receivers)}"
    )
    assert all(w.alive() for w in ws), dead_worker_report(ws)


async def test_kill9_worker_clients_resume_on_the_other(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """kill -9 of worker A mid-run: its clients resume on B; retries make no duplicates."""
    per_sender = 300
    cast = await seed(db, staff=6, contacts=4, matters=2)
    a = await spawn("a", module_redis.url)
    b = await spawn("b", module_redis.url)
    ws = [a, b]
    senders = [
        client(clients, ws, t, f"snd{i}", prefer=i % 2)
        for i, t in enumerate([cast.staff[0], cast.staff[1], cast.contacts[0], cast.contacts[1]])
    ]
    receivers = [
        client(clients, ws, t, f"rcv{i}", prefer=i % 2, auto_reconnect=True)
        for i, t in enumerate([*cast.staff[2:6], *cast.contacts[2:4]])
    ]
    for r in receivers:
        await r.subscribe(cast.matters)
    on_a = [c for c in senders + receivers if c.url == a.ws_url or c.prefer == 0]

    stats = SendStats()
    total = per_sender * len(senders)
    traffic = asyncio.gather(*(run_sender(s, cast.matters, per_sender, stats) for s in senders))
    await wait_until(lambda: stats.acked >= total // 3, 60, "a third of the sends acked")
    a.kill9()
    assert not a.alive()
    killed_at = stats.acked
    await asyncio.wait_for(traffic, 120)
    assert stats.acked == total
    # Each sender awaited each ack before its next send (window 1), retries
    # included: its acked seqs on each matter rise even across the crash.
    for name, seqs in stats.seqs.items():
        for k, m in enumerate(cast.matters):
            mine = seqs[k :: len(cast.matters)]
            assert mine == sorted(mine), f"{name}: acked seqs on {m} out of order"
    await assert_all_delivered(db, cast, receivers, within=60)
    for c in on_a:
        assert c.url == b.ws_url, f"{c.name} did not move to worker b"
    moved = [r for r in receivers if r.connects > 1]
    assert len(moved) >= len(receivers) // 2, "the receivers of worker a never reconnected"
    print(
        f"\nkilled a after {killed_at}/{total} acks; sender retries={stats.retries}, "
        f"duplicate acks={stats.duplicate_acks}, receivers moved={len(moved)}"
    )
    assert b.alive(), dead_worker_report(ws)


async def test_redis_outage_then_catch_up(
    db: Database, spawn: Spawn, clients: list[StreamClient]
) -> None:
    """Redis stopped for 5 s under traffic and restarted on its port: 0 lost after catch-up."""
    redis = RedisProcess()
    redis.start()
    restarted: RedisProcess | None = None
    try:
        cast = await seed(db, staff=8, contacts=2, matters=2)
        m1, m2 = cast.matters
        # No safety poll: what crosses workers after the outage must come from
        # the broker's reconnect (resubscribe + on_reset catch-up), proving
        # that path rather than the poll that would mask a broken one.
        ws = [await spawn(name, redis.url, hub_poll_interval="3600") for name in ("a", "b")]
        senders = [
            client(clients, ws, t, f"snd{i}", prefer=i) for i, t in enumerate(cast.staff[:2])
        ]
        receivers = [
            client(clients, ws, t, f"rcv{i}", prefer=i % 2, auto_reconnect=True)
            for i, t in enumerate([*cast.staff[2:6], *cast.contacts])
        ]
        for r in receivers:
            await r.subscribe([m1])
        # m2 has a listener on worker a only; worker b gets its first m2
        # listener while Redis is down (its broker must subscribe it later).
        early = client(clients, ws, cast.staff[6], "early-m2", prefer=0, auto_reconnect=True)
        late = client(clients, ws, cast.staff[7], "late-m2", prefer=1, auto_reconnect=True)
        await early.subscribe([m2])
        receivers += [early, late]

        stats = SendStats()
        stop = asyncio.Event()
        phases: dict[str, int] = {}

        async def sender(c: StreamClient) -> None:
            i = 0
            while not stop.is_set():
                payload = {"sent_at": i, "thread": c.name}
                await reliable_send(c, cast.matters[i % 2], f"{c.name}-{i}", payload, stats)
                i += 1

        traffic = asyncio.gather(*(sender(s) for s in senders))
        await wait_until(lambda: stats.acked >= 50, 30, "50 acks before the outage")
        phases["before"] = stats.acked
        redis.stop()
        outage = time.monotonic()
        answer = await late.subscribe([m2])
        assert answer[m2]["type"] == "subscribed" and late.url == ws[1].ws_url
        left = 5 - (time.monotonic() - outage)
        await asyncio.sleep(max(0.0, left))  # reason: the scenario is a 5 s outage
        phases["during"] = stats.acked - phases["before"]
        restarted = RedisProcess(port=redis.port)
        restarted.start()
        mark = stats.acked
        await wait_until(lambda: stats.acked >= mark + 50, 60, "50 acks after the restart")
        stop.set()
        await asyncio.wait_for(traffic, 60)
        logs = await assert_all_delivered(db, cast, receivers, within=60)
        assert phases["during"] > 0, "no send was acked while Redis was down"
        print(
            f"\nacked before={phases['before']} during outage={phases['during']} "
            f"total={sum(map(len, logs.values()))}; unavailable retried={stats.unavailable}"
        )
        assert all(w.alive() for w in ws), dead_worker_report(ws)
    finally:
        if restarted is not None:
            restarted.stop()
        redis.stop()


async def test_slow_consumer_closed_4008_then_resumes(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """A receiver that stops reading is closed with 4008; it resumes with 0 lost."""
    # Loopback TCP autotunes the server's send buffer to ~3 MB whatever the
    # client's receive buffer, so the volume must exceed that by far before
    # frames pile up in the worker's transport buffer (overflow: more than
    # ws_send_buffer_max bytes unsent): 500 events of ~12 KB = ~6 MB.
    queue, count, pad, unsent_max = 32, 500, 12_000, 65_536
    cast = await seed(db, staff=3, contacts=0, matters=1)
    (m,) = cast.matters
    limits = {"ws_send_queue": str(queue), "ws_send_buffer_max": str(unsent_max)}
    a = await spawn("a", module_redis.url, **limits)
    b = await spawn("b", module_redis.url, **limits)
    ws = [a, b]
    slow = client(clients, ws, cast.staff[0], "slow", prefer=0, max_queue=1, rcvbuf=4096)
    steady = client(clients, ws, cast.staff[1], "steady", prefer=0)
    sender = client(clients, ws, cast.staff[2], "sender", prefer=1)
    await slow.subscribe([m])
    await steady.subscribe([m])
    assert slow.url == a.ws_url and steady.url == a.ws_url and (await sender.connect())
    assert slow.hello is not None and slow.hello["limits"]["send_queue"] == queue

    slow.pause()
    stats = SendStats()
    await run_sender(sender, [m], count, stats, pad=pad)
    # Worker a has fanned every event out to its listeners once the steady
    # reader (same worker) has them all: the slow queue overflowed meanwhile,
    # and the steady reader was not held up by it.
    await steady.caught_up({m: count}, 60)
    assert slow.cursors[m] < count
    slow.resume_reading()
    code = await slow.wait_closed(30)
    assert code == 4008, f"slow consumer closed with {code}, expected 4008"
    before = slow.cursors[m]
    slow.prefer = 1  # resume on the other worker: the cursor is all it needs
    await slow.resume()
    assert slow.url == b.ws_url
    await assert_all_delivered(db, cast, [slow, steady], within=60)
    assert slow.connects == 2 and slow.close_codes == [4008]
    print(f"\nslow consumer had {before}/{count} events when closed with 4008")
    assert all(w.alive() for w in ws), dead_worker_report(ws)


async def test_graceful_shutdown_1012_then_resume_on_the_other(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """SIGTERM (a deploy) closes worker B's websockets with 1012; they resume on A."""
    cast = await seed(db, staff=6, contacts=2, matters=1)
    a = await spawn("a", module_redis.url)
    b = await spawn("b", module_redis.url)
    ws = [a, b]
    sender = client(clients, ws, cast.staff[0], "snd0", prefer=1)
    receivers = [
        client(clients, ws, t, f"rcv{i}", prefer=1, auto_reconnect=True)
        for i, t in enumerate([*cast.staff[1:6], *cast.contacts])
    ]
    for r in receivers:
        await r.subscribe(cast.matters)
    assert all(r.url == b.ws_url for r in receivers)

    stats = SendStats()
    traffic = asyncio.create_task(run_sender(sender, cast.matters, 300, stats))
    await wait_until(lambda: stats.acked >= 100, 60, "100 acks before the shutdown")
    code = await b.terminate()
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown is done.
    assert code in (0, -signal.SIGTERM), f"worker b exited with {code}:\n{b.log_text()}"
    await asyncio.wait_for(traffic, 120)
    await assert_all_delivered(db, cast, receivers, within=60)
    for r in receivers:
        assert r.close_codes[:1] == [1012], f"{r.name} closed with {r.close_codes}"
        assert r.url == a.ws_url
    assert sender.url == a.ws_url
    assert a.alive(), dead_worker_report(ws)


async def test_close_principal_reaches_every_worker(
    db: Database,
    spawn: Spawn,
    module_redis: RedisProcess,
    clients: list[StreamClient],
    database_url: str,
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    """Removing a client ends their websockets on every worker at once (4010).

    The removal runs in a third process-like party (a Hub in the test
    process on the same Redis and database, as an admin request on any
    worker would): it revokes the client's tokens, then ``close_principal``.
    Another client of the same matter stays connected; the removed one
    cannot come back (4001).
    """
    cast = await seed(db, staff=1, contacts=2, matters=1)
    ws = [await spawn("a", module_redis.url), await spawn("b", module_redis.url)]
    gone = [
        client(clients, ws, cast.contacts[0], f"gone-{w.name}", prefer=i) for i, w in enumerate(ws)
    ]
    kept = [
        client(clients, ws, cast.contacts[1], f"kept-{w.name}", prefer=i) for i, w in enumerate(ws)
    ]
    for c in gone + kept:
        await c.subscribe(cast.matters)
    assert [c.url for c in gone] == [w.ws_url for w in ws]
    assert gone[0].hello is not None
    contact_id = int(gone[0].hello["principal"]["id"])

    settings = Settings.from_env(
        {
            "RTPORTAL_DATABASE_URL": database_url,
            "RTPORTAL_BROKER_URL": prefixed(module_redis.url, topic_prefix),
            "RTPORTAL_DATA_DIR": str(tmp_path / "admin"),
            "RTPORTAL_SECRET_KEY": secrets.token_hex(32),
            "RTPORTAL_HUB_POLL_INTERVAL": "3600",  # the admin joins no matter
        }
    )
    broker = broker_from_url(prefixed(module_redis.url, topic_prefix))
    admin = Hub(db, broker, settings, ACCESS_QUERIES)
    await admin.start()
    try:
        async with db.write() as s:
            assert await revoke_principal_tokens(s, "contact", contact_id) == 1
        await admin.close_principal("contact", contact_id)
        codes = await asyncio.gather(*(c.wait_closed(15) for c in gone))
    finally:
        await admin.stop()
        await broker.close()
    assert codes == [4010, 4010], codes
    for c in kept:
        assert c.connected and (await c.ping())["type"] == "pong"
    with pytest.raises(ConnectionLost):
        await gone[0].connect()
    assert gone[0].close_codes[-1] == 4001
    assert all(w.alive() for w in ws), dead_worker_report(ws)


async def test_removal_closes_a_send_only_socket_on_another_worker(
    db: Database,
    spawn: Spawn,
    module_redis: RedisProcess,
    clients: list[StreamClient],
    database_url: str,
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    """A client that only sends (never subscribed) is closed 4011 by a removal on another worker.

    The removal runs through ``rtportal.access.removal.remove_member`` on a
    Hub in the test process (as an admin request on worker a would); the
    client's socket is on worker b and has sent to the matter, so b
    remembers its access. The control message closes it; reconnected, its
    sends are refused.
    """
    cast = await seed(db, staff=0, contacts=2, matters=1)
    ws = [await spawn("a", module_redis.url), await spawn("b", module_redis.url)]
    gone = client(clients, ws, cast.contacts[0], "gone", prefer=1)
    kept = client(clients, ws, cast.contacts[1], "kept", prefer=1)
    ref = cast.matters[0]
    assert (await gone.send(ref, "before", {"thread": "g", "sent_at": 0}))["type"] == "ack"
    assert (await kept.send(ref, "kept-before", {"thread": "k", "sent_at": 0}))["type"] == "ack"
    assert gone.url == ws[1].ws_url and gone.hello is not None
    contact_id = int(gone.hello["principal"]["id"])

    settings = Settings.from_env(
        {
            "RTPORTAL_DATABASE_URL": database_url,
            "RTPORTAL_BROKER_URL": prefixed(module_redis.url, topic_prefix),
            "RTPORTAL_DATA_DIR": str(tmp_path / "admin"),
            "RTPORTAL_SECRET_KEY": SECRET_HEX,
            "RTPORTAL_HUB_POLL_INTERVAL": "3600",  # the admin joins no matter
        }
    )
    broker = broker_from_url(prefixed(module_redis.url, topic_prefix))
    admin = Hub(db, broker, settings, ACCESS_QUERIES)
    await admin.start()
    try:
        await remove_member(db, admin, cast.matter_ids[ref], "contact", contact_id)
        # Well within the 10 s a lost message would take the re-check.
        assert await gone.wait_closed(5) == 4011
    finally:
        await admin.stop()
        await broker.close()
    with pytest.raises(ServerError) as refused:
        await gone.send(ref, "after", {"thread": "g", "sent_at": 1})  # reconnects, then sends
    assert refused.value.code == "not_found"
    assert (await kept.send(ref, "kept-after", {"thread": "k", "sent_at": 1}))["type"] == "ack"
    assert all(w.alive() for w in ws), dead_worker_report(ws)


async def test_logout_closes_that_sessions_websockets_on_every_worker(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """Logging out on worker B closes the same session's websocket on worker A (4010)."""
    cast = await seed(db, staff=0, contacts=1, matters=1)
    a = await spawn("a", module_redis.url)
    b = await spawn("b", module_redis.url)
    c = client(clients, [a, b], cast.contacts[0], "contact", prefer=0)
    await c.subscribe(cast.matters)
    async with httpx.AsyncClient(base_url=b.http_url, trust_env=False) as http:
        r = await http.delete(
            "/api/v1/session", headers={"Authorization": f"Bearer {cast.contacts[0]}"}
        )
        assert r.status_code == 200, r.text
    assert await c.wait_closed(5) == 4010


async def test_cursor_too_old_resyncs_over_http_on_the_other_worker(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """Offline past ``backlog_limit``: resync, history over HTTP, resubscribe; 0 lost."""
    limit, offline, live = 20, 70, 10
    cast = await seed(db, staff=2, contacts=1, matters=1)
    (m,) = cast.matters
    ws = [await spawn(n, module_redis.url, backlog_limit=str(limit)) for n in ("a", "b")]
    sender = client(clients, ws, cast.staff[0], "snd0", prefer=1)
    staff = client(clients, ws, cast.staff[1], "staff", prefer=0)
    contact = client(clients, ws, cast.contacts[0], "contact", prefer=0)
    receivers = [staff, contact]
    for r in receivers:
        await r.subscribe([m])
        await r.drop(abrupt=True)

    stats = SendStats()
    # Staff notes among them: the contact's history pages skip those seqs.
    await run_sender(sender, [m], offline, stats, notes_every=7)
    for r in receivers:
        r.prefer = 1  # come back through the other worker
        answers = await r.subscribe([m])  # connects, gets resync, pages, resubscribes
        assert answers[m]["type"] == "subscribed" and r.url == ws[1].ws_url
        if r is staff:
            assert [f["reason"] for f in r.resyncs] == ["cursor_too_old"], r.resyncs
            assert r.history_pages >= 1
        else:
            # A contact gets no resync (its size would count staff events): backlog.
            assert r.resyncs == [] and r.history_pages == 0, r.resyncs
    live_sender = client(clients, ws, cast.staff[0], "snd1", prefer=0)
    await run_sender(live_sender, [m], live, stats)
    await assert_all_delivered(db, cast, receivers, within=30)
    assert len(staff.log(m)) == offline + live
    assert all(w.alive() for w in ws), dead_worker_report(ws)


async def test_removing_an_invite_closes_the_clients_websocket_in_another_process_within_1s(
    db: Database, spawn: Spawn, module_redis: RedisProcess, clients: list[StreamClient]
) -> None:
    """Issue 10: staff remove a client from the portal over HTTP on worker a; the
    client's live, subscribed websocket on worker b (another OS process) closes
    within 1 s of the answer, and their session is dead everywhere."""
    cast = await seed(db, staff=0, contacts=0, matters=1)
    ref = cast.matters[0]
    tag = secrets.token_hex(3)
    async with db.write() as s:
        firm_id = (await s.execute(select(Matter.firm_id).where(Matter.reference == ref))).scalar()
        admin = StaffUser(
            firm_id=firm_id,
            email=f"admin-{tag}@example.test",
            display_name="Admin",
            role="org_admin",
        )
        s.add(admin)
        await s.flush()
        staff_token = await issue_token(
            s, KEY, "staff", admin.id, label="mp", ttl=timedelta(hours=1)
        )
    fast = {k.removeprefix("RTPORTAL_").lower(): v for k, v in FAST_LOGIN_ENV.items()}
    a = await spawn("a", module_redis.url, **fast)
    b = await spawn("b", module_redis.url, **fast)
    staff = {"Authorization": f"Bearer {staff_token}"}
    origin = {"Origin": "http://127.0.0.1:8000"}
    async with httpx.AsyncClient(base_url=a.http_url, timeout=20) as http:
        made = await http.post(
            "/api/v1/contacts",
            json={"name": "Removed Client", "emails": [f"client-{tag}@example.test"], "phones": []},
            headers=staff,
        )
        assert made.status_code == 201, made.text
        contact_id = made.json()["contact"]["id"]
        sent = await http.post(
            f"/api/v1/matters/{ref}/invites",
            json={
                "invites": [{"contact_id": contact_id, "method": "email", "see_applicants": True}]
            },
            headers=staff,
        )
        assert sent.status_code == 201, sent.text
        invite_id = sent.json()["invites"][0]
        async with db.read() as s:
            body = (
                await s.execute(
                    select(OutboxMessage.body).where(OutboxMessage.invite_id == invite_id)
                )
            ).scalar_one()
        link = re.search(r"#invite=([A-Za-z0-9_-]+)", body or "")
        assert link, body
        opened = await http.post("/api/v1/invites/open", json={"token": link.group(1)})
        assert opened.status_code == 200, opened.text
        kdf = opened.json()["kdf"]
        accepted = await http.post(
            "/api/v1/invites/accept",
            json={"token": link.group(1), "kdf": kdf, "login_secret": secret_for("pw client", kdf)},
            headers=origin,
        )
        assert accepted.status_code == 201, accepted.text
        session_token = accepted.cookies["rtp_session"]
        http.cookies.clear()
        client_ws = StreamClient([b.ws_url], session_token, name="removed", cursors=CODEC)
        clients.append(client_ws)
        await client_ws.subscribe([ref])
        removed = await http.post(f"/api/v1/invites/{invite_id}/remove", headers=staff)
        assert removed.status_code == 200, removed.text
        answered = time.monotonic()
        code = await client_ws.wait_closed(5)
        took = time.monotonic() - answered
        assert code in (4010, 4011), code
        assert took < 1.0, f"closed {took:.2f} s after the removal answered"
        bearer = {"Authorization": f"Bearer {session_token}"}
        assert (await http.get("/api/v1/me", headers=bearer)).status_code == 401
    assert a.alive() and b.alive()
