"""Per-user limits of one worker: open websockets and write rate.

``UserLimits`` (one per worker, in the ``Runtime``) counts each principal's
open websockets (``settings.max_connections_per_user``; one more is
refused with close code 4029) and meters its writes, websocket ``send``
frames and HTTP event POSTs alike, with a token bucket: ``settings.write_burst``
tokens, refilled at ``settings.write_rate`` per second; a write finding the
bucket empty is answered ``rate_limited`` with the seconds until the next
token (HTTP 429 with ``Retry-After``). The limits are per worker: with N
workers a user may reach N times them (a load balancer spreads a user's
connections).

Memory is bounded: a principal's counter is dropped when its last
connection closes, and buckets that have refilled completely (the same as
a new one) are dropped when there are more than ``_PRUNE_AT``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rtportal.errors import RateLimited
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["UserLimits"]

_Key = tuple[str, int]
_PRUNE_AT = 10_000  # buckets kept before full ones are dropped


def _key(principal: Principal) -> _Key:
    return (principal.kind, principal.id)


class UserLimits:
    """One worker's per-principal connection counts and write buckets."""

    __slots__ = ("_buckets", "_clock", "_open", "burst", "max_connections", "rate")

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_connections = settings.max_connections_per_user
        self.rate = settings.write_rate
        self.burst = float(settings.write_burst)
        self._clock = clock
        self._open: dict[_Key, int] = {}
        # principal -> [tokens, time of the last refill]
        self._buckets: dict[_Key, list[float]] = {}

    # --- connections -------------------------------------------------------------------

    def connect(self, principal: Principal) -> bool:
        """Count one more open websocket of ``principal``; ``False`` (not counted) at the cap."""
        key = _key(principal)
        n = self._open.get(key, 0)
        if n >= self.max_connections:
            return False
        self._open[key] = n + 1
        return True

    def disconnect(self, principal: Principal) -> None:
        """One websocket counted by ``connect`` closed."""
        key = _key(principal)
        n = self._open.get(key, 0) - 1
        if n > 0:
            self._open[key] = n
        else:
            self._open.pop(key, None)

    def open_connections(self, principal: Principal) -> int:
        return self._open.get(_key(principal), 0)

    # --- writes ------------------------------------------------------------------------

    def take_write(self, principal: Principal) -> float:
        """Spend one write token: ``0.0`` if there was one, else the seconds
        until there is (nothing is spent then)."""
        now = self._clock()
        key = _key(principal)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def check_write(self, principal: Principal) -> None:
        """Spend one write token or raise ``RateLimited`` with ``retry_after``
        (seconds, rounded up to the millisecond) in its details."""
        wait = self.take_write(principal)
        if wait:
            raise RateLimited("write rate exceeded", retry_after=math.ceil(wait * 1000) / 1000)

    def _prune(self, now: float) -> None:
        """Drop the buckets that are full again (a new bucket is the same)."""
        full = [
            key
            for key, (tokens, stamp) in self._buckets.items()
            if tokens + (now - stamp) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
