"""``RedisLimiter``: the ``Limiter`` contract on Redis, shared by every worker.

Each (scope, key) is one counter ``<prefix>rl:<scope>:<key>``, counted by
one Lua script (INCR, and PEXPIRE on the first hit of a window), so two
workers counting at once never lose a hit nor leave a counter without its
expiry. The prefix is the broker URL's ``?prefix=`` (one Redis can serve
several deployments).

Redis errors are mapped once, here: **fail closed**. A limiter that cannot
count refuses the attempt with ``Unavailable`` (503) instead of letting a
guessing attack through unmetered while Redis is down; sign-in then waits
for Redis, as every other multi-worker path already does.
"""

from __future__ import annotations

import math
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rtportal.access.ratelimit import Limiter, MemoryLimiter
from rtportal.errors import RateLimited, Unavailable
from rtportal.realtime.broker.redis import split_prefix
from rtportal.settings import Settings

__all__ = ["RedisLimiter", "limiter_for"]

# KEYS[1] counter; ARGV[1] window in ms. Returns {count, ms left in the window}.
_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""

_TIMEOUT = 2.0  # seconds for one Redis call: a stuck Redis must not hang a sign-in


class RedisLimiter:
    """Fixed-window counters in Redis (``Limiter``); fails closed on Redis errors."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT) -> None:
        redis_url, prefix = split_prefix(url)
        self._prefix = f"{prefix}rl:"
        self._redis: Redis = Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._redis.register_script(_HIT)

    def _key(self, scope: str, key: str) -> str:
        return f"{self._prefix}{scope}:{key}"

    async def hit(self, scope: str, key: str, *, limit: int, window: float) -> None:
        window_ms = max(1, math.ceil(window * 1000))
        try:
            reply: Any = await self._script(keys=[self._key(scope, key)], args=[window_ms])
        except (RedisError, OSError) as exc:
            raise Unavailable("rate limiter unreachable") from exc
        count, left_ms = int(reply[0]), int(reply[1])
        if count > limit:
            raise RateLimited("too many attempts", retry_after=max(1, math.ceil(left_ms / 1000)))

    async def reset(self, scope: str, key: str) -> None:
        try:
            await self._redis.delete(self._key(scope, key))
        except (RedisError, OSError) as exc:
            raise Unavailable("rate limiter unreachable") from exc

    async def close(self) -> None:
        await self._redis.aclose()


def limiter_for(settings: Settings) -> Limiter:
    """Redis when the broker is Redis (every worker shares the counts), else memory."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisLimiter(settings.broker_url)
    return MemoryLimiter()
