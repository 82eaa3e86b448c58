"""The ``Limiter`` contract, run over both backends: memory and real Redis
(``RTPORTAL_TEST_BROKER_URL`` when it is Redis, else 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from rtportal.access.ratelimit import Limiter, MemoryLimiter
from rtportal.access.ratelimit_redis import RedisLimiter, limiter_for
from rtportal.errors import RateLimited, Unavailable
from rtportal.realtime.broker.redis import split_prefix
from rtportal.settings import Settings
from tests.support.procs import free_port


def _redis_url() -> str:
    """A Redis URL with a prefix of this test run; the limiter tests need a real Redis."""
    configured = os.environ.get("RTPORTAL_TEST_BROKER_URL") or ""
    base = configured if configured.startswith("redis://") else "redis://127.0.0.1:6379/0"
    url, prefix = split_prefix(base)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}prefix={prefix}rltest{secrets.token_hex(4)}:"


MakeLimiter = Callable[[], Limiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    made: list[Limiter] = []
    url = _redis_url()

    def factory() -> Limiter:
        limiter: Limiter = MemoryLimiter() if request.param == "memory" else RedisLimiter(url)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.close()


async def _refused(call: Awaitable[None]) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await call
    return caught.value


async def test_limit_then_refused_with_retry_after(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    for _ in range(5):
        await limiter.hit("totp", "cred-1", limit=5, window=900)
    refused = await _refused(limiter.hit("totp", "cred-1", limit=5, window=900))
    assert refused.code == "rate_limited"
    assert 1 <= refused.details["retry_after"] <= 900
    # Still refused: a refused attempt does not open a new window.
    await _refused(limiter.hit("totp", "cred-1", limit=5, window=900))


async def test_keys_and_scopes_are_counted_apart(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    await limiter.hit("signin", "a", limit=1, window=60)
    await _refused(limiter.hit("signin", "a", limit=1, window=60))
    await limiter.hit("signin", "b", limit=1, window=60)
    await limiter.hit("passcode", "a", limit=1, window=60)


async def test_reset_forgets_the_attempts(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    await limiter.hit("password", "k", limit=2, window=60)
    await limiter.hit("password", "k", limit=2, window=60)
    await _refused(limiter.hit("password", "k", limit=2, window=60))
    await limiter.reset("password", "k")
    await limiter.hit("password", "k", limit=2, window=60)


async def test_concurrent_hits_count_exactly(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    results = await asyncio.gather(
        *(limiter.hit("invite", "burst", limit=10, window=60) for _ in range(50)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 10
    assert all(isinstance(r, RateLimited) for r in results if r is not None)


async def test_memory_window_ends() -> None:
    now = [1000.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    await limiter.hit("signin", "a", limit=1, window=30)
    refused = await _refused(limiter.hit("signin", "a", limit=1, window=30))
    assert refused.details["retry_after"] == 30
    now[0] += 30
    await limiter.hit("signin", "a", limit=1, window=30)


async def test_two_redis_limiters_share_the_count() -> None:
    """Two workers (two limiter instances, two connections) share one counter."""
    url = _redis_url()
    worker_a, worker_b = RedisLimiter(url), RedisLimiter(url)
    try:
        for n in range(6):
            await (worker_a if n % 2 == 0 else worker_b).hit("totp", "7", limit=6, window=900)
        await _refused(worker_a.hit("totp", "7", limit=6, window=900))
        await _refused(worker_b.hit("totp", "7", limit=6, window=900))
        # The counter lives under the broker URL's prefix and expires with its window.
        redis_url, prefix = split_prefix(url)
        client: Redis = Redis.from_url(redis_url)
        try:
            ttl = await client.pttl(f"{prefix}rl:totp:7")
            assert 0 < ttl <= 900_000
            assert int(await client.get(f"{prefix}rl:totp:7") or 0) == 8
            await worker_b.reset("totp", "7")
            assert await client.exists(f"{prefix}rl:totp:7") == 0
        finally:
            await client.aclose()
        await worker_a.hit("totp", "7", limit=6, window=900)
    finally:
        await worker_a.close()
        await worker_b.close()


async def test_redis_down_fails_closed() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    try:
        with pytest.raises(Unavailable):
            await limiter.hit("signin", "a", limit=5, window=60)
        with pytest.raises(Unavailable):
            await limiter.reset("signin", "a")
    finally:
        await limiter.close()


async def test_limiter_for_follows_the_broker(settings: Settings) -> None:
    memory = limiter_for(dataclasses.replace(settings, broker_url="memory://"))
    redis = limiter_for(dataclasses.replace(settings, broker_url=_redis_url()))
    try:
        assert isinstance(memory, MemoryLimiter)
        assert isinstance(redis, RedisLimiter)
        await redis.hit("signin", "wired", limit=1, window=5)
    finally:
        await memory.close()
        await redis.close()
