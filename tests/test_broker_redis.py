"""RedisBroker internals the contract suite (tests/test_broker.py) does not see.

Batches go out as one EVALSHA of a Lua script; the subscriber parses replies
itself instead of through ``PubSub.get_message``. These tests pin both on a
private redis-server (``SCRIPT FLUSH`` and ACL changes must not touch the
machine's shared Redis), for RESP2 (the subscriber's default) and RESP3.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from rtportal.realtime.broker.redis import RedisBroker
from tests.support.procs import RedisProcess
from tests.test_broker import Recorder


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def admin(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


Make = Callable[..., Awaitable[tuple[RedisBroker, Recorder]]]


@pytest.fixture(params=["resp2", "resp3"])
async def make(request: pytest.FixtureRequest, redis_server: RedisProcess) -> AsyncIterator[Make]:
    """Factory of started brokers on the private server, with the given RESP version."""
    proto = "&protocol=3" if request.param == "resp3" else ""
    made: list[RedisBroker] = []

    async def factory(
        prefix: str = "t:", url: str | None = None, **kwargs: Any
    ) -> tuple[RedisBroker, Recorder]:
        broker = RedisBroker(f"{url or redis_server.url}?prefix={prefix}{proto}", **kwargs)
        rec = Recorder()
        broker.set_handler(rec.on_message, rec.on_reset)
        await broker.start()
        made.append(broker)
        return broker, rec

    yield factory
    for broker in made:
        await broker.close()


async def command_calls(admin: Redis, name: str) -> int:
    stats = await admin.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    return int(entry["calls"]) if entry else 0


async def wait_until(cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)  # reason: polling a state with no event to await


async def publish_interleaved(pub: RedisBroker, topics: list[str], n: int, tag: str) -> None:
    # No await in publish() suspends below half a full queue: all n are queued
    # before the sender runs, so they leave in batches of _BATCH_MAX.
    for i in range(n):
        await pub.publish(topics[i % len(topics)], f"{tag}{i}".encode())


async def test_batches_arrive_complete_and_in_order_per_topic(make: Make, admin: Redis) -> None:
    sub, rec = await make()
    pub, _ = await make()
    topics = [f"m:{i}" for i in range(7)]
    for topic in topics:
        await sub.subscribe(topic)
    before = await command_calls(admin, "evalsha")
    n = 3000
    await publish_interleaved(pub, topics, n, "")
    await rec.until(lambda: len(rec.messages) == n, within=15)
    for k, topic in enumerate(topics):
        assert rec.data(topic) == [str(i).encode() for i in range(k, n, len(topics))]
    # One publisher: its order holds across topics too.
    assert [int(d) for _, d in rec.messages] == list(range(n))
    evalsha = await command_calls(admin, "evalsha") - before
    assert 1 <= evalsha <= n // 100  # batched: one command per batch, not per message
    assert pub.dropped == 0


async def test_publish_after_script_flush(make: Make, admin: Redis) -> None:
    sub, rec = await make()
    pub, _ = await make()
    await sub.subscribe("a")
    await sub.subscribe("b")
    await publish_interleaved(pub, ["a", "b"], 100, "first")
    await rec.until(lambda: len(rec.messages) == 100)
    await admin.script_flush()  # the script cache of a restarted Redis: NOSCRIPT next
    loads = await command_calls(admin, "script|load")
    await publish_interleaved(pub, ["a", "b"], 100, "second")
    await rec.until(lambda: len(rec.messages) == 200)
    assert await command_calls(admin, "script|load") == loads + 1  # reloaded once, then EVALSHA
    assert rec.data("a")[-50:] == [f"second{i}".encode() for i in range(0, 100, 2)]
    assert rec.data("b")[-50:] == [f"second{i}".encode() for i in range(1, 100, 2)]
    assert pub.dropped == 0


async def test_publish_without_scripting_falls_back_to_pipeline(
    make: Make, admin: Redis, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    # A user whose ACL refuses EVALSHA, as a locked-down deployment might.
    await admin.acl_setuser(
        "noscript",
        enabled=True,
        passwords=["+pw"],
        commands=["+@all", "-evalsha", "-eval"],
        keys=["*"],
        channels=["*"],
    )
    sub, rec = await make()
    pub, _ = await make(url=f"redis://noscript:pw@127.0.0.1:{redis_server.port}/0")
    await sub.subscribe("c")
    await publish_interleaved(pub, ["c"], 500, "")
    await rec.until(lambda: len(rec.messages) == 500)
    assert rec.data("c") == [str(i).encode() for i in range(500)]
    assert pub.dropped == 0
    assert "Lua PUBLISH script refused" in caplog.text


async def test_unsubscribed_channels_are_forgotten(make: Make) -> None:
    # The read loop replaces PubSub.get_message, which also pruned the
    # PubSub's channel table on UNSUBSCRIBE replies; without that it would
    # grow with every matter ever opened on this connection.
    sub, rec = await make()
    pub, _ = await make()
    for i in range(20):
        await sub.subscribe(f"m:{i}")
    for i in range(1, 20):
        await sub.unsubscribe(f"m:{i}")
    await pub.publish("m:0", b"after")
    await rec.until(lambda: rec.data("m:0") == [b"after"])  # the replies before it were read
    ps = sub._ps
    assert ps is not None
    assert set(ps.channels) == {b"t:m:0"}


async def test_keepalive_pong_counts_as_traffic(make: Make) -> None:
    # An idle connection stays up on PONGs alone (RESP2: a pub/sub list,
    # RESP3: a plain reply), well past the 3 x keepalive drop limit.
    # 0.25 s: a loaded machine's event-loop stalls stay well under the 0.75 s drop.
    sub, rec = await make(keepalive=0.25)
    await sub.subscribe("idle")
    start = sub._last_rx
    seen = [start]

    def pongs_for(duration: float) -> bool:
        if sub._last_rx != seen[-1]:
            seen.append(sub._last_rx)
        return sub._last_rx - start > duration

    await wait_until(lambda: pongs_for(1.5))
    assert sub.connected
    assert len(seen) >= 3
    assert sub.resets == 0
    assert rec.resets == 0


async def test_reconnect_resets_once(make: Make) -> None:
    # The reset PING's reply is a pub/sub pong list in RESP2 and a plain
    # reply in RESP3; either way it calls on_reset exactly once.
    proc = RedisProcess()
    proc.start()
    try:
        sub, rec = await make(url=proc.url, connect_timeout=0.5)
        await sub.subscribe("m:1")
        proc.stop()  # by its own pid
        await wait_until(lambda: not sub.connected)
        proc.start()
        await rec.until(lambda: rec.resets == 1, within=15)
        client = Redis.from_url(proc.url)
        try:
            await client.publish("t:m:1", b"back")
        finally:
            await client.aclose()
        await rec.until(lambda: rec.data("m:1") == [b"back"])
        assert rec.resets == 1
    finally:
        proc.stop()
