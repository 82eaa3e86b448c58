"""The hub against real parts: the test database and every broker backend.

Hubs here are "workers": two hubs sharing one bus (an in-process named bus
or one Redis) and one database behave as two worker processes would.
Negative checks ("no duplicate", "nothing more") use a barrier event: a
later event that must arrive after anything earlier on the same matter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from rtportal.access.queries import ACCESS_QUERIES
from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_RESTART, CLOSE_REVOKED
from rtportal.db import Database
from rtportal.db.models import Matter
from rtportal.errors import Unavailable
from rtportal.events import log as stream
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.realtime.broker import Broker, from_url
from rtportal.realtime.broker.memory import MemoryBroker
from rtportal.realtime.broker.redis import RedisBroker, split_prefix
from rtportal.realtime.hub import Hub, Listener
from rtportal.realtime.matterstate import PendingBudget, PendingEvents
from rtportal.realtime.message import CTL_TOPIC, encode_event_message, matter_topic
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.procs import RedisProcess, service_unavailable

REDIS_URL = os.environ.get("RTPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Rec:
    """A listener that records what it gets; optionally bounded like a websocket queue."""

    def __init__(self, principal: Principal, capacity: int | None = None) -> None:
        self.principal = principal
        self.events: list[StoredEvent] = []
        self.closed: list[int] = []
        self.capacity = capacity
        self._changed = asyncio.Event()

    def deliver(self, event: StoredEvent) -> None:
        if self.closed:
            return
        if self.capacity is not None and len(self.events) >= self.capacity:
            self.close(4008)  # slow consumer: drop it, never wait
            return
        self.events.append(event)
        self._changed.set()

    def close(self, code: int) -> None:
        self.closed.append(code)
        self._changed.set()

    def seqs(self, matter_id: int | None = None) -> list[int]:
        return [e.seq for e in self.events if matter_id is None or e.matter_id == matter_id]

    async def until_seqs(self, want: list[int]) -> None:
        await self.until(lambda: self.seqs() == want)

    async def until(self, cond: Callable[[], bool], within: float = 10.0) -> None:
        async def loop() -> None:
            while not cond():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), within)


class Raising(Rec):
    def deliver(self, event: StoredEvent) -> None:
        raise RuntimeError("listener bug")


def test_rec_is_a_listener() -> None:
    assert isinstance(Rec(Principal("staff", 1, 1, "x")), Listener)


async def redis_or_skip(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        await client.ping()
    except Exception:
        service_unavailable(f"Redis at {url}")
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def bus_url(request: pytest.FixtureRequest) -> str:
    """One bus per test, shared by every hub (worker) the test makes."""
    if request.param == "memory":
        return f"memory://hub-{uuid.uuid4().hex}"
    await redis_or_skip(REDIS_URL)
    base, _ = split_prefix(REDIS_URL)
    return f"{base}?prefix=hubtest-{uuid.uuid4().hex}:"


MakeHub = Callable[..., Awaitable[tuple[Hub, Broker]]]


@pytest.fixture
async def make_hub(settings: Settings, db: Database, bus_url: str) -> AsyncIterator[MakeHub]:
    made: list[tuple[Hub, Broker, Database]] = []

    async def make(
        *, poll: float = 60.0, gap_wait: float = 0.02, url: str | None = None
    ) -> tuple[Hub, Broker]:
        # Each hub gets its own Database (engine pool), as a worker would.
        worker_db = Database(settings.database_url)
        broker = from_url(url or bus_url)
        hub = Hub(
            worker_db,
            broker,
            dataclasses.replace(settings, hub_poll_interval=poll),
            ACCESS_QUERIES,
            gap_wait=gap_wait,
        )
        await hub.start()
        made.append((hub, broker, worker_db))
        return hub, broker

    yield make
    for hub, broker, worker_db in made:
        await hub.stop()
        await broker.close()
        await worker_db.close()


async def write(kit: FirmKit, n: int = 1, *, audience: str = "portal") -> list[StoredEvent]:
    """Append n events to the kit's matter and commit (no publish)."""
    out: list[StoredEvent] = []
    async with kit.db.write() as session:
        matter = await session.get(Matter, kit.matter.id)
        assert matter is not None
        for _ in range(n):
            event, created = await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind="message",
                audience=audience,
                payload={"thread": uuid.uuid4().hex[:8]},
                blob=None,
                client_id=None,
            )
            assert created
            out.append(event)
    return out


async def wait_until(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)  # reason: polling a state with no event to await


# -- ordering, dedupe, join -------------------------------------------------


async def test_in_order_delivery_and_echo_dedupe(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    hub, _ = await make_hub()
    a, b = Rec(kit.staff), Rec(kit.contact)
    assert await hub.join(kit.matter.id, a) == 0
    assert await hub.join(kit.matter.id, b) == 0
    for _ in range(5):
        await hub.publish(await write(kit))
    # delivered locally at publish time, in order
    assert a.seqs() == b.seqs() == [1, 2, 3, 4, 5]
    # the broker echoes of our own publishes arrive later and are dropped:
    # a barrier published by a second worker comes after every echo.
    other, _ = await make_hub()
    await other.publish(await write(kit))
    await a.until(lambda: a.seqs()[-1] == 6)
    await b.until(lambda: b.seqs()[-1] == 6)
    assert a.seqs() == b.seqs() == [1, 2, 3, 4, 5, 6]
    assert hub.gap_reads == 0  # happy path: no database reads
    assert a.events[0].matter == kit.ref and a.events[0].payload


async def test_a_private_bus_hears_nothing_a_named_one_hears_every_event(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    """``memory://`` is one worker's alone: the hub delivers locally and publishes
    nothing (no encoding, no echo to drop); on a bus others may join it publishes
    every event."""
    kit = await make_firm()
    alone, private = await make_hub(url="memory://")
    shared, named = await make_hub(url=f"memory://hub-{uuid.uuid4().hex}")
    assert isinstance(private, MemoryBroker) and isinstance(named, MemoryBroker)
    assert private.private and not named.private
    for hub in (alone, shared):
        rec = Rec(kit.contact)
        await hub.join(kit.matter.id, rec)
        await hub.publish(await write(kit, 2))
        assert len(rec.events) == 2  # delivered here either way
    assert private.published == 0
    assert named.published == 2


async def test_first_join_returns_database_head(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    await write(kit, 3)
    hub, _ = await make_hub()
    early = Rec(kit.staff)
    assert await hub.join(kit.matter.id, early) == 3
    await hub.publish(await write(kit))
    late = Rec(kit.contact)
    assert await hub.join(kit.matter.id, late) == 4  # what the hub delivered up to
    await hub.publish(await write(kit))
    assert early.seqs() == [4, 5]
    assert late.seqs() == [5]


async def test_concurrent_first_joins_share_one_subscription(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await write(kit, 2)
    hub, _ = await make_hub()
    recs = [Rec(kit.staff) for _ in range(20)]
    heads = await asyncio.gather(*(hub.join(kit.matter.id, r) for r in recs))
    assert heads == [2] * 20
    assert hub.subscribed_matters() == [kit.matter.id]
    other, _ = await make_hub()
    await other.publish(await write(kit))
    for r in recs:
        await r.until_seqs([3])


async def test_two_workers_deliver_each_others_events(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub_a, _ = await make_hub()
    hub_b, _ = await make_hub()
    la, lb = Rec(kit.staff), Rec(kit.contact)
    await hub_a.join(kit.matter.id, la)
    await hub_b.join(kit.matter.id, lb)
    for i in range(10):
        await (hub_a if i % 2 else hub_b).publish(await write(kit))
    want = list(range(1, 11))
    await la.until(lambda: la.seqs() == want)
    await lb.until(lambda: lb.seqs() == want)
    # a barrier from each side: still exactly once each
    await hub_a.publish(await write(kit))
    await hub_b.publish(await write(kit))
    await la.until(lambda: la.seqs()[-1] == 12)
    await lb.until(lambda: lb.seqs()[-1] == 12)
    assert la.seqs() == lb.seqs() == [*want, 11, 12]


async def test_leave_unsubscribes_with_the_last_listener(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    other_matter = await kit.add_matter()
    hub, _ = await make_hub()
    a, b, c = Rec(kit.staff), Rec(kit.contact), Rec(kit.staff)
    await hub.join(kit.matter.id, a)
    await hub.join(kit.matter.id, b)
    await hub.join(other_matter.id, c)
    await hub.leave(kit.matter.id, a)
    await hub.leave(kit.matter.id, a)  # idempotent
    assert sorted(hub.subscribed_matters()) == sorted([kit.matter.id, other_matter.id])
    publisher, _ = await make_hub()
    await publisher.publish(await write(kit))
    await b.until(lambda: b.seqs() == [1])
    await hub.leave(kit.matter.id, b)
    assert hub.subscribed_matters() == [other_matter.id]
    assert hub.delivered(kit.matter.id) is None
    await publisher.publish(await write(kit))
    # barrier on the other matter (same publisher, so it comes after)
    async with kit.db.write() as session:
        m2 = await session.get(Matter, other_matter.id)
        assert m2 is not None
        ev, _ = await stream.append(
            session,
            matter=m2,
            actor=kit.staff,
            kind="note",
            audience="staff",
            payload={},
            blob=None,
            client_id=None,
        )
    await publisher.publish([ev])
    await c.until(lambda: c.seqs() == [1])
    assert a.seqs() == [] and b.seqs() == [1]
    # joining again re-subscribes and starts from the database head
    assert await hub.join(kit.matter.id, a) == 2


# -- gaps -------------------------------------------------------------------


async def test_gap_is_filled_from_the_database(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    hub, _ = await make_hub()
    a, b = Rec(kit.staff), Rec(kit.contact)
    await hub.join(kit.matter.id, a)
    await hub.join(kit.matter.id, b)
    await write(kit, 2)  # committed, never published (a lost broker message)
    publisher, _ = await make_hub()
    await publisher.publish(await write(kit))  # seq 3 reveals the gap
    await a.until(lambda: a.seqs() == [1, 2, 3])
    await b.until(lambda: b.seqs() == [1, 2, 3])
    assert hub.gap_reads == 1  # one read for the matter, not one per listener
    assert [e.payload for e in a.events] == [e.payload for e in b.events]


async def test_concurrent_gaps_coalesce_into_one_read(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub, _ = await make_hub(gap_wait=0.2)
    listeners = [Rec(kit.staff) for _ in range(5)]
    for r in listeners:
        await hub.join(kit.matter.id, r)
    events = await write(kit, 10)
    publisher, _ = await make_hub()
    await publisher.publish(events[6:])  # 7, 8, 9, 10: each one shows the gap
    for r in listeners:
        await r.until_seqs(list(range(1, 11)))
    assert hub.gap_reads == 1


async def test_out_of_order_message_within_the_wait_needs_no_read(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub, _ = await make_hub(gap_wait=30.0)  # a read would only come after 30 s
    a = Rec(kit.staff)
    await hub.join(kit.matter.id, a)
    first, second = await write(kit, 2)
    await hub.publish([second])
    assert a.seqs() == []  # 2 waits for 1
    await hub.publish([first])
    assert a.seqs() == [1, 2]
    assert hub.gap_reads == 0


async def test_safety_poll_delivers_a_trailing_lost_message(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub, _ = await make_hub(poll=0.1)
    a = Rec(kit.staff)
    await hub.join(kit.matter.id, a)
    publisher, _ = await make_hub()
    await publisher.publish(await write(kit))
    await write(kit)  # the last message before a quiet period is lost
    await a.until(lambda: a.seqs() == [1, 2])
    assert hub.gap_reads >= 1


async def test_garbage_on_the_bus_is_ignored(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    hub, _ = await make_hub()
    publisher, broker = await make_hub()
    a = Rec(kit.staff)
    await hub.join(kit.matter.id, a)
    topic = matter_topic(kit.matter.id)
    (ev1,) = await write(kit)
    for junk in (b"", b"not json", b"[]", b'{"matter_id": "1", "seq": 1, "event": {}}'):
        await broker.publish(topic, junk)
        await broker.publish(CTL_TOPIC, junk)
    wrong = dataclasses.replace(ev1, matter_id=kit.matter.id + 10_000)
    await broker.publish(topic, encode_event_message(wrong))  # topic/matter mismatch
    await publisher.publish([ev1])
    await a.until(lambda: a.seqs() == [1])
    assert a.closed == []


# -- isolation, control, lifecycle -------------------------------------------


async def test_slow_or_broken_listener_does_not_hold_up_others(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub, _ = await make_hub()
    slow, broken, fast = Rec(kit.contact, capacity=3), Raising(kit.staff), Rec(kit.staff)
    for r in (slow, broken, fast):
        await hub.join(kit.matter.id, r)
    publisher, _ = await make_hub()
    events = await write(kit, 50)
    await publisher.publish(events)
    await fast.until(lambda: len(fast.seqs()) == 50)
    assert fast.seqs() == list(range(1, 51))
    assert slow.seqs() == [1, 2, 3] and slow.closed[0] == 4008
    assert broken.closed and broken.closed[0] == 1011  # a listener bug closes only it


async def test_close_principal_on_every_worker(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    hub_a, _ = await make_hub()
    hub_b, _ = await make_hub()
    on_a, on_b, idle_b = Rec(kit.contact), Rec(kit.contact), Rec(kit.contact)
    staff_b, other_contact = Rec(kit.staff), Rec(Principal("contact", kit.contact.id + 1, 1, "x"))
    await hub_a.join(kit.matter.id, on_a)
    await hub_b.join(kit.matter.id, on_b)
    await hub_b.join(kit.matter.id, staff_b)
    await hub_b.join(kit.matter.id, other_contact)
    hub_b.register(idle_b)  # connected, subscribed to nothing yet
    await hub_a.close_principal("contact", kit.contact.id)
    assert on_a.closed == [CLOSE_REVOKED]  # this worker: at once
    await on_b.until(lambda: on_b.closed == [CLOSE_REVOKED])
    await idle_b.until(lambda: idle_b.closed == [CLOSE_REVOKED])
    # a second control message is a barrier: the first was applied exactly once
    await hub_a.close_principal("staff", kit.staff.id, code=4011)
    await staff_b.until(lambda: staff_b.closed == [4011])
    assert on_a.closed == on_b.closed == [CLOSE_REVOKED]
    assert other_contact.closed == []
    # after unregister/leave the principal is unreachable (nothing left to close)
    hub_b.unregister(idle_b)
    await hub_b.leave(kit.matter.id, on_b)
    await hub_b.close_principal("contact", kit.contact.id)
    assert idle_b.closed == [CLOSE_REVOKED] and on_b.closed == [CLOSE_REVOKED]


async def test_close_access_reaches_holders_of_that_matter_on_every_worker(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    """Joined or only holding (sending) a matter: both close; other matters and people stay."""
    kit = await make_firm()
    second = await kit.add_matter(title="Second")
    hub_a, _ = await make_hub()
    hub_b, _ = await make_hub()
    joined_a, sender_b, elsewhere_b = Rec(kit.contact), Rec(kit.contact), Rec(kit.contact)
    co_member_b = Rec(Principal("contact", kit.contact.id + 1, kit.firm_id, "co"))
    await hub_a.join(kit.matter.id, joined_a)
    hub_b.register(sender_b)
    hub_b.hold(kit.matter.id, sender_b)  # sent to the matter, never subscribed
    hub_b.register(elsewhere_b)
    hub_b.hold(second.id, elsewhere_b)
    hub_b.register(co_member_b)
    hub_b.hold(kit.matter.id, co_member_b)
    await hub_a.close_access(kit.matter.id, "contact", kit.contact.id)
    assert joined_a.closed == [CLOSE_ACCESS_REMOVED]  # this worker: at once
    await sender_b.until(lambda: sender_b.closed == [CLOSE_ACCESS_REMOVED])
    # a second control message is a barrier: the first was applied everywhere
    await hub_a.close_principal("contact", co_member_b.principal.id, code=4011)
    await co_member_b.until(lambda: co_member_b.closed == [4011])
    assert elsewhere_b.closed == []


async def test_holds_are_counted_and_session_ids_select_connections(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    hub, _ = await make_hub()
    phone = Rec(dataclasses.replace(kit.contact, session_id="aa" * 32))
    laptop = Rec(dataclasses.replace(kit.contact, session_id="bb" * 32))
    await hub.join(kit.matter.id, phone)
    hub.hold(kit.matter.id, phone)  # joined and sending: two holds
    await hub.leave(kit.matter.id, phone)
    hub.register(phone)
    await hub.close_access(kit.matter.id, "contact", kit.contact.id)
    assert phone.closed == [CLOSE_ACCESS_REMOVED]  # still held after the leave
    hub.release(kit.matter.id, phone)
    await hub.close_access(kit.matter.id, "contact", kit.contact.id)
    assert phone.closed == [CLOSE_ACCESS_REMOVED]  # released: no longer reached
    hub.register(laptop)
    await hub.close_principal("contact", kit.contact.id, session_ids=[])
    await hub.close_principal("contact", kit.contact.id, session_ids=["cc" * 32])
    assert laptop.closed == []
    await hub.close_principal("contact", kit.contact.id, session_ids=["cc" * 32, "bb" * 32])
    assert laptop.closed == [CLOSE_REVOKED] and phone.closed == [CLOSE_ACCESS_REMOVED]  # not "aa"


def test_control_messages_round_trip_and_malformed_ones_are_refused() -> None:
    from rtportal.realtime.message import (
        CloseAccess,
        ClosePrincipal,
        decode_control,
        encode_control,
    )

    for ctl in (
        ClosePrincipal("m1", "contact", 7, 4010, None),
        ClosePrincipal("m2", "staff", 8, 4010, frozenset({"ab", "cd"})),
        CloseAccess("m3", 12, "bot", 9, 4010),
    ):
        assert decode_control(encode_control(ctl)) == ctl
    for bad in (
        b"not json",
        b"[]",
        b'{"op": "close_principal"}',
        b'{"op": "reboot", "id": "x", "kind": "contact", "pid": 1, "code": 4010}',
        b'{"op": "close_access", "id": "x", "kind": "contact", "pid": 1, "code": 4010}',
        b'{"op": "close_principal", "id": "x", "kind": "contact", "pid": true, "code": 4010}',
        b'{"op": "close_principal", "id": "x", "kind": "contact", "pid": 1, "code": 4010,'
        b' "sids": [1]}',
    ):
        with pytest.raises(ValueError):
            decode_control(bad)


async def test_stop_closes_listeners_with_1012(make_hub: MakeHub, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    hub, _ = await make_hub(poll=0.05)
    a, b = Rec(kit.staff), Rec(kit.contact)
    await hub.join(kit.matter.id, a)
    await hub.join(kit.matter.id, b)
    hub.register(b)
    await hub.stop()
    assert a.closed == [CLOSE_RESTART] and b.closed == [CLOSE_RESTART]
    assert hub.subscribed_matters() == []
    await hub.stop()  # idempotent
    late = Rec(kit.staff)
    with pytest.raises(Unavailable):  # during shutdown: told to reconnect elsewhere
        await hub.join(kit.matter.id, late)
    assert late.closed == [CLOSE_RESTART]
    assert hub.subscribed_matters() == []


async def test_join_of_a_missing_matter_raises_and_leaves_nothing(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    from rtportal.errors import NotFound

    await make_firm()
    hub, _ = await make_hub()
    with pytest.raises(NotFound):
        await hub.join(987_654_321, Rec(Principal("staff", 1, 1, "x")))
    assert hub.subscribed_matters() == []


# -- Redis reconnect: on_reset catches up from the database -----------------


@pytest.fixture
def private_redis() -> Any:
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.stop()


async def test_reset_after_redis_restart_catches_up(
    settings: Settings, make_firm: MakeFirm, private_redis: RedisProcess
) -> None:
    kit = await make_firm()
    worker_db = Database(settings.database_url)
    broker = RedisBroker(f"{private_redis.url}?prefix=reset:", connect_timeout=0.5)
    # no safety poll during the test: only on_reset can deliver the lost events
    hub = Hub(
        worker_db, broker, dataclasses.replace(settings, hub_poll_interval=3600), ACCESS_QUERIES
    )
    await hub.start()
    try:
        a = Rec(kit.staff)
        await hub.join(kit.matter.id, a)
        private_redis.stop()
        await wait_until(lambda: not broker.connected)
        # another worker commits and publishes into the outage: lost
        await write(kit, 3)
        private_redis.start()
        await a.until(lambda: a.seqs() == [1, 2, 3], within=20)
        await hub.publish(await write(kit))
        assert a.seqs() == [1, 2, 3, 4]
    finally:
        await hub.stop()
        await broker.close()
        await worker_db.close()


# -- revocation is durable: the tokens table, not only the ctl message ------


async def _session_principal(kit: FirmKit, label: str) -> tuple[Principal, str]:
    """The kit's contact as authenticated by a new token of its own (with a session id)."""
    from rtportal.access.sessions import authenticate, issue_token

    async with kit.db.write() as session:
        token = await issue_token(
            session, kit.settings.secret_key, "contact", kit.contact.id, label=label, ttl=None
        )
    async with kit.db.read() as session:
        principal = await authenticate(session, kit.settings.secret_key, token)
    assert principal.session_id is not None
    return principal, token


async def test_revocation_while_redis_is_down_closes_on_every_worker(
    settings: Settings, make_firm: MakeFirm, private_redis: RedisProcess
) -> None:
    """The close_principal message is lost in the outage; on_reset re-checks the sessions."""
    from rtportal.access.sessions import revoke_token

    kit = await make_firm()
    phone_p, phone_token = await _session_principal(kit, "phone")
    laptop_p, _ = await _session_principal(kit, "laptop")
    made: list[tuple[Hub, RedisBroker, Database]] = []
    for _ in range(2):  # two workers
        worker_db = Database(settings.database_url)
        broker = RedisBroker(f"{private_redis.url}?prefix=revoke:", connect_timeout=0.5)
        # no safety poll: only on_reset can catch the lost control message
        hub = Hub(
            worker_db, broker, dataclasses.replace(settings, hub_poll_interval=3600), ACCESS_QUERIES
        )
        await hub.start()
        made.append((hub, broker, worker_db))
    (hub_a, broker_a, _), (hub_b, broker_b, _) = made
    try:
        phone_a, phone_b, laptop_b = Rec(phone_p), Rec(phone_p), Rec(laptop_p)
        hub_a.register(phone_a)
        await hub_b.join(kit.matter.id, phone_b)
        hub_b.register(laptop_b)
        private_redis.stop()
        await wait_until(lambda: not broker_a.connected and not broker_b.connected)
        # logout on worker a during the outage: revoke, then close_principal
        async with kit.db.write() as session:
            assert await revoke_token(session, kit.settings.secret_key, phone_token)
        dropped = broker_a.dropped
        await hub_a.close_principal(
            "contact", kit.contact.id, CLOSE_REVOKED, session_id=phone_p.session_id
        )
        assert phone_a.closed == [CLOSE_REVOKED]  # the local one at once
        await wait_until(lambda: broker_a.dropped > dropped)  # really lost, not just queued
        assert phone_b.closed == []  # the control message went nowhere
        private_redis.start()
        await phone_b.until(lambda: CLOSE_REVOKED in phone_b.closed, within=20)
        # the same pass checked the live session and left it open
        assert laptop_b.closed == []
        # a connection goes once closed; then nothing is left to close
        await hub_b.leave(kit.matter.id, phone_b)
        assert await hub_b.recheck_sessions() == 0
        assert laptop_b.closed == [] and set(phone_b.closed) == {CLOSE_REVOKED}
    finally:
        for hub, broker, worker_db in made:
            await hub.stop()
            await broker.close()
            await worker_db.close()


async def test_safety_poll_closes_revoked_and_expired_sessions(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    """No control message at all (lost on a live broker): the poll finds the dead sessions."""
    from datetime import timedelta

    from sqlalchemy import update

    from rtportal.access.sessions import hash_token, revoke_token
    from rtportal.db.models import AuthToken, utcnow

    kit = await make_firm()
    revoked_p, revoked_token = await _session_principal(kit, "revoked")
    expired_p, expired_token = await _session_principal(kit, "expired")
    live_p, _ = await _session_principal(kit, "live")
    hub, _ = await make_hub(poll=0.05)
    revoked, expired, live = Rec(revoked_p), Rec(expired_p), Rec(live_p)
    no_session = Rec(kit.contact)  # a listener without a session id is never re-checked
    await hub.join(kit.matter.id, revoked)
    hub.register(expired)
    await hub.join(kit.matter.id, live)
    hub.register(no_session)
    async with kit.db.write() as session:
        assert await revoke_token(session, kit.settings.secret_key, revoked_token)
        await session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == hash_token(kit.settings.secret_key, expired_token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await revoked.until(lambda: CLOSE_REVOKED in revoked.closed)
    await expired.until(lambda: CLOSE_REVOKED in expired.closed)
    assert set(revoked.closed) == set(expired.closed) == {CLOSE_REVOKED}
    # closed connections go away; a pass then closes nothing, and the live
    # session and the listener without a session id were never closed
    await hub.leave(kit.matter.id, revoked)
    hub.unregister(expired)
    assert await hub.recheck_sessions() == 0
    assert live.closed == [] and no_session.closed == []
    # the live one still gets events
    await hub.publish(await write(kit))
    await live.until(lambda: live.seqs() == [1])


async def test_live_sessions_is_one_lookup_by_token_hash(make_firm: MakeFirm) -> None:
    from rtportal.access.sessions import live_sessions, revoke_token, session_id_of

    kit = await make_firm()
    staff_sid = session_id_of(kit.settings.secret_key, kit.tokens["staff"])
    contact_sid = session_id_of(kit.settings.secret_key, kit.tokens["contact"])
    assert len(staff_sid) == 64  # the full hash: a unique-index hit
    async with kit.db.write() as session:
        assert await revoke_token(session, kit.settings.secret_key, kit.tokens["contact"])
    unknown = "ab" * 32
    async with kit.db.read() as session:
        live = await live_sessions(session, [staff_sid, contact_sid, unknown, "not hex", "abcd"])
    assert live == {staff_sid}
    async with kit.db.read() as session:
        assert await live_sessions(session, []) == set()


async def test_poll_closes_members_removed_from_the_matter(
    make_hub: MakeHub, make_firm: MakeFirm
) -> None:
    """Access is checked at subscribe; a removal later must stop the live stream too."""
    kit = await make_firm()
    other, _ = await kit.add_contact("Co-applicant", matter=kit.matter)
    second = await kit.add_matter(title="Second")  # the kit's contact and bot are members
    hub, _ = await make_hub(poll=0.05)
    removed, elsewhere, stays = Rec(kit.contact), Rec(kit.contact), Rec(other)
    bot, staff = Rec(kit.bot), Rec(kit.staff)
    stranger = Rec(Principal("contact", other.id + 1000, kit.contact.firm_id, "never a member"))
    await hub.join(kit.matter.id, removed)
    await hub.join(second.id, elsewhere)
    for listener in (stays, bot, staff, stranger):
        await hub.join(kit.matter.id, listener)
    await stranger.until(lambda: CLOSE_ACCESS_REMOVED in stranger.closed)
    await kit.remove_member(kit.contact)  # from the kit's matter only
    await removed.until(lambda: CLOSE_ACCESS_REMOVED in removed.closed)
    for gone in (removed, stranger):
        await hub.leave(kit.matter.id, gone)
    assert await hub.recheck_memberships() == 0
    assert elsewhere.closed == stays.closed == bot.closed == staff.closed == []
    await hub.publish(await write(kit))
    await stays.until(lambda: stays.seqs() == [1])
    assert removed.seqs() == []


def _early(seq: int, blob_bytes: int) -> StoredEvent:
    return StoredEvent(
        matter_id=1,
        matter="AAAA0000",
        seq=seq,
        kind="message",
        audience="portal",
        actor={"kind": "staff", "id": 1, "name": "S"},
        payload={},
        blob=b"x" * blob_bytes,
        client_id=None,
        created_at="2026-12-06T00:00:00Z",
    )


def test_early_events_are_bounded_in_bytes_per_worker() -> None:
    """Out-of-order events are held within the worker's byte budget over all
    matters (drop-newest beyond: the gap fill re-reads them), and the budget
    comes back as they are delivered or forgotten."""
    budget = PendingBudget(max_bytes=100_000)
    a = PendingEvents(budget, max_count=1000)
    b = PendingEvents(budget, max_count=1000)
    assert a.add(_early(2, 40_000))
    assert b.add(_early(2, 40_000))
    assert not a.add(_early(3, 40_000))  # over the worker's bytes: not kept
    assert len(a) == 1 and budget.used <= budget.max_bytes
    assert a.pop(2) is not None
    assert a.add(_early(3, 40_000))  # room again
    a.drop_through(3)
    b.clear()
    assert budget.used == 0 and not a and not b
    small = PendingEvents(PendingBudget(10**9), max_count=2)
    assert small.add(_early(5, 0)) and small.add(_early(6, 0))
    assert not small.add(_early(7, 0))  # over the count
