"""The broker contract, run against every backend (memory and Redis).

Negative checks ("nothing arrived") never sleep: after the message that must
not arrive, the same publisher sends a barrier on a topic the subscriber
has; per-publisher order means the barrier comes after anything earlier.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from rtportal.errors import InvalidConfig
from rtportal.realtime.broker import Broker, MemoryBroker, RedisBroker, from_url
from rtportal.realtime.broker.redis import split_prefix
from tests.support.procs import RedisProcess, free_port, service_unavailable

REDIS_URL = os.environ.get("RTPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Recorder:
    """Collects (topic, data) and resets; waits on conditions with a deadline."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.resets = 0
        self.fail_on = fail_on
        self._changed = asyncio.Event()

    def on_message(self, topic: str, data: bytes) -> None:
        self.messages.append((topic, data))
        self._changed.set()
        if data == self.fail_on:
            raise RuntimeError("handler bug")

    def on_reset(self) -> None:
        self.resets += 1
        self._changed.set()

    def data(self, topic: str | None = None) -> list[bytes]:
        return [d for t, d in self.messages if topic is None or t == topic]

    async def until(self, cond: Callable[[], bool], within: float = 5.0) -> None:
        async def loop() -> None:
            while not cond():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), within)


async def redis_reachable(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


MakeBroker = Callable[..., Awaitable[tuple[Broker, Recorder]]]


@pytest.fixture(params=["memory", "redis"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[MakeBroker]:
    """Factory of started brokers sharing one bus (a private one per test)."""
    if request.param == "memory":
        url = f"memory://test-{uuid.uuid4().hex}"
    else:
        if not await redis_reachable(REDIS_URL):
            service_unavailable(f"Redis at {REDIS_URL}")
        base, _ = split_prefix(REDIS_URL)
        sep = "&" if "?" in base else "?"
        url = f"{base}{sep}prefix=test-{uuid.uuid4().hex}:"
    made: list[Broker] = []

    async def make(fail_on: bytes | None = None) -> tuple[Broker, Recorder]:
        broker = from_url(url)
        rec = Recorder(fail_on)
        broker.set_handler(rec.on_message, rec.on_reset)
        await broker.start()
        made.append(broker)
        return broker, rec

    yield make
    for broker in made:
        await broker.close()


async def barrier(pub: Broker, rec: Recorder, sub: Broker) -> None:
    """Wait until everything pub sent before now has reached sub's handler."""
    token = uuid.uuid4().hex.encode()
    await sub.subscribe("barrier")
    await pub.publish("barrier", token)
    await rec.until(lambda: token in rec.data("barrier"))


async def test_publish_reaches_subscriber_not_others(make_broker: MakeBroker) -> None:
    sub, rec = await make_broker()
    pub, pub_rec = await make_broker()
    await sub.subscribe("m:1")
    await pub.publish("m:1", b"hello")
    await pub.publish("m:2", b"other topic")
    await rec.until(lambda: rec.data("m:1") == [b"hello"])
    await barrier(pub, rec, sub)
    assert rec.data("m:1") == [b"hello"]
    assert rec.data("m:2") == []
    assert pub_rec.messages == []  # the publisher subscribed to nothing


async def test_publisher_receives_its_own_message(make_broker: MakeBroker) -> None:
    both, rec = await make_broker()
    await both.subscribe("m:7")
    await both.publish("m:7", b"echo")
    await rec.until(lambda: rec.data("m:7") == [b"echo"])


async def test_multiple_topics_and_subscribers(make_broker: MakeBroker) -> None:
    a, rec_a = await make_broker()
    b, rec_b = await make_broker()
    pub, _ = await make_broker()
    await a.subscribe("t1")
    await a.subscribe("t2")
    await b.subscribe("t2")
    await b.subscribe("t3")
    for topic in ("t1", "t2", "t3", "t4"):
        await pub.publish(topic, topic.encode())
    await rec_a.until(lambda: len(rec_a.messages) == 2)
    await rec_b.until(lambda: len(rec_b.messages) == 2)
    await barrier(pub, rec_a, a)
    await barrier(pub, rec_b, b)
    assert [t for t, _ in rec_a.messages if t != "barrier"] == ["t1", "t2"]
    assert [t for t, _ in rec_b.messages if t != "barrier"] == ["t2", "t3"]


async def test_unsubscribe_stops_delivery(make_broker: MakeBroker) -> None:
    sub, rec = await make_broker()
    pub, _ = await make_broker()
    await sub.subscribe("m:1")
    await sub.subscribe("m:1")  # idempotent: one subscription, one delivery
    await pub.publish("m:1", b"one")
    await rec.until(lambda: rec.data("m:1") == [b"one"])
    await sub.unsubscribe("m:1")
    await sub.unsubscribe("m:1")  # idempotent
    await pub.publish("m:1", b"two")
    await barrier(pub, rec, sub)
    assert rec.data("m:1") == [b"one"]
    # and it can come back
    await sub.subscribe("m:1")
    await pub.publish("m:1", b"three")
    await rec.until(lambda: rec.data("m:1") == [b"one", b"three"])


async def test_order_per_topic_from_one_publisher(make_broker: MakeBroker) -> None:
    sub, rec = await make_broker()
    pub, _ = await make_broker()
    await sub.subscribe("a")
    await sub.subscribe("b")
    n = 500
    for i in range(n):
        await pub.publish("a" if i % 3 else "b", str(i).encode())
    await rec.until(lambda: len(rec.messages) == n)
    got = [int(d) for _, d in rec.messages]
    assert got == list(range(n))  # one publisher: order kept (even across topics)


async def test_handler_exception_does_not_kill_reader(make_broker: MakeBroker) -> None:
    sub, rec = await make_broker(fail_on=b"boom")
    pub, _ = await make_broker()
    await sub.subscribe("m:1")
    for data in (b"before", b"boom", b"after"):
        await pub.publish("m:1", data)
    await rec.until(lambda: rec.data("m:1") == [b"before", b"boom", b"after"])
    await pub.publish("m:1", b"later")
    await rec.until(lambda: rec.data("m:1")[-1] == b"later")


async def test_close_is_clean(make_broker: MakeBroker) -> None:
    sub, rec = await make_broker()
    pub, _ = await make_broker()
    witness, wrec = await make_broker()
    await sub.subscribe("m:1")
    await witness.subscribe("m:1")
    await sub.close()
    await sub.close()  # idempotent
    await sub.publish("m:1", b"after close")  # no raise, goes nowhere
    await sub.subscribe("m:2")  # no raise
    await pub.publish("m:1", b"x")
    await wrec.until(lambda: wrec.data("m:1") == [b"x"])
    await barrier(pub, wrec, witness)
    assert rec.messages == []
    tag = f"-{id(sub):x}"
    assert not [t for t in asyncio.all_tasks() if t.get_name().endswith(tag)]


def test_from_url_schemes() -> None:
    assert isinstance(from_url("memory://"), MemoryBroker)
    assert isinstance(from_url("memory://shared"), MemoryBroker)
    assert isinstance(from_url("redis://127.0.0.1:6379/0"), RedisBroker)
    assert isinstance(from_url("rediss://example:6380/1?prefix=x"), RedisBroker)
    for bad in ("kafka://x", "", "http://127.0.0.1:6379"):
        with pytest.raises(InvalidConfig) as info:
            from_url(bad)
        assert info.value.code == "invalid_config"


def test_split_prefix_keeps_other_query_params() -> None:
    url, prefix = split_prefix("redis://h:1/2?prefix=rt1:&socket_timeout=3")
    assert prefix == "rt1:"
    assert url == "redis://h:1/2?socket_timeout=3"
    assert split_prefix("redis://h:1/0") == ("redis://h:1/0", "")


async def test_private_memory_buses_do_not_talk() -> None:
    a, b = from_url("memory://"), from_url("memory://")
    rec_a, rec_b = Recorder(), Recorder()
    a.set_handler(rec_a.on_message, rec_a.on_reset)
    b.set_handler(rec_b.on_message, rec_b.on_reset)
    await a.start()
    await b.start()
    await a.subscribe("m:1")
    await b.subscribe("m:1")
    await b.publish("m:1", b"private")
    await rec_b.until(lambda: rec_b.data() == [b"private"])
    await a.publish("m:1", b"a-own")
    await rec_a.until(lambda: rec_a.data() != [])
    assert rec_a.data() == [b"a-own"]
    await a.close()
    await b.close()


# -- Redis only -------------------------------------------------------------


async def test_redis_dead_backend_never_raises() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    broker = RedisBroker(url, connect_timeout=0.3)
    rec = Recorder()
    broker.set_handler(rec.on_message, rec.on_reset)
    await broker.start()  # logs, keeps retrying in the background
    assert not broker.connected
    await broker.subscribe("m:1")
    for i in range(50):
        await broker.publish("m:1", str(i).encode())
    await broker.unsubscribe("m:1")
    await broker.close()
    assert rec.messages == []


async def test_redis_queue_overflow_drops_newest() -> None:
    if not await redis_reachable(REDIS_URL):
        service_unavailable(f"Redis at {REDIS_URL}")
    base, _ = split_prefix(REDIS_URL)
    url = f"{base}?prefix=test-{uuid.uuid4().hex}:"
    sub = RedisBroker(url)
    rec = Recorder()
    sub.set_handler(rec.on_message, rec.on_reset)
    await sub.start()
    await sub.subscribe("q")
    pub = RedisBroker(url, queue_size=3)
    pub.set_handler(lambda t, d: None, lambda: None)
    for i in range(5):  # not started: nothing drains the queue yet
        await pub.publish("q", str(i).encode())
    assert pub.dropped == 2
    await pub.start()
    await rec.until(lambda: len(rec.messages) == 3)
    assert rec.data("q") == [b"0", b"1", b"2"]  # the newest two were the ones dropped
    await pub.close()
    await sub.close()


async def _wait_until(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)  # reason: polling a state with no event to await


@pytest.fixture
def private_redis() -> Any:
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.stop()


async def test_redis_reconnect_resubscribes_and_resets(private_redis: RedisProcess) -> None:
    url = f"{private_redis.url}?prefix=rc:"
    sub = RedisBroker(url, connect_timeout=0.5)
    pub = RedisBroker(url, connect_timeout=0.5)
    rec = Recorder()
    sub.set_handler(rec.on_message, rec.on_reset)
    pub.set_handler(lambda t, d: None, lambda: None)
    await sub.start()
    await pub.start()
    try:
        await sub.subscribe("m:1")
        await sub.subscribe("m:2")
        await pub.publish("m:1", b"before")
        await rec.until(lambda: rec.data("m:1") == [b"before"])
        assert rec.resets == 0

        private_redis.stop()  # by its own pid
        await _wait_until(lambda: not sub.connected)
        for i in range(20):  # during the outage: never raises
            await pub.publish("m:1", f"lost{i}".encode())
        await _wait_until(lambda: pub.dropped == 20)  # counted, not queued forever
        await sub.subscribe("m:3")  # wanted while down: subscribed on reconnect

        private_redis.start()  # same port
        await rec.until(lambda: rec.resets == 1, within=15)
        assert sub.connected

        await pub.publish("m:1", b"after")
        await pub.publish("m:3", b"new topic")
        await rec.until(lambda: b"after" in rec.data("m:1") and rec.data("m:3") == [b"new topic"])
        assert not any(d.startswith(b"lost") for d in rec.data())  # Redis lost those
    finally:
        await pub.close()
        await sub.close()


async def test_redis_frozen_server_detected_by_keepalive(private_redis: RedisProcess) -> None:
    url = f"{private_redis.url}?prefix=ka:"
    sub = RedisBroker(url, connect_timeout=0.5, keepalive=0.2)
    rec = Recorder()
    sub.set_handler(rec.on_message, rec.on_reset)
    await sub.start()
    try:
        await sub.subscribe("m:1")
        assert sub.connected
        os.kill(private_redis.pid, signal.SIGSTOP)  # half-open: no error, no replies
        try:
            await _wait_until(lambda: not sub.connected)
        finally:
            os.kill(private_redis.pid, signal.SIGCONT)
        await rec.until(lambda: rec.resets >= 1, within=15)
        pub = Redis.from_url(private_redis.url)
        try:
            await pub.publish("ka:m:1", b"back")
        finally:
            await pub.aclose()
        await rec.until(lambda: rec.data("m:1") == [b"back"])
    finally:
        await sub.close()
