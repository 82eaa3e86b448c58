"""Rate limits on sign-in, passcodes, invites and password changes.

One contract, ``Limiter.hit(scope, key, limit, window)``: count one
attempt of ``key`` (an account id, an email, a source address, an invite)
in ``scope`` (``signin``, ``passcode``, ``invite``, ``password``, ...); the
attempt that would exceed ``limit`` within ``window`` seconds raises
``RateLimited`` with ``retry_after``. Limits are counted per fixed window.
``MemoryLimiter`` counts in this process (the embedded default, one
worker). With a Redis broker the counts must live in Redis, so every
worker shares them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from rtportal.errors import RateLimited

__all__ = ["Limiter", "MemoryLimiter"]

_PRUNE_AT = 50_000  # windows kept before expired ones are dropped


class Limiter(Protocol):
    async def hit(self, scope: str, key: str, *, limit: int, window: float) -> None:
        """Count one attempt; ``RateLimited`` when it is over ``limit`` in ``window`` s."""
        ...

    async def reset(self, scope: str, key: str) -> None:
        """Forget ``key``'s attempts in ``scope`` (after a success, where the policy says so)."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Fixed-window counters in this process; memory bounded by pruning expired windows."""

    __slots__ = ("_clock", "_windows")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (scope, key) -> [window end, count]
        self._windows: dict[tuple[str, str], list[float]] = {}

    async def hit(self, scope: str, key: str, *, limit: int, window: float) -> None:
        now = self._clock()
        slot = self._windows.get((scope, key))
        if slot is None or slot[0] <= now:
            if len(self._windows) >= _PRUNE_AT:
                self._prune(now)
            slot = self._windows[(scope, key)] = [now + window, 0.0]
        if slot[1] >= limit:
            raise RateLimited("too many attempts", retry_after=max(1, math.ceil(slot[0] - now)))
        slot[1] += 1

    async def reset(self, scope: str, key: str) -> None:
        self._windows.pop((scope, key), None)

    async def close(self) -> None:
        self._windows.clear()

    def _prune(self, now: float) -> None:
        expired = [k for k, (end, _) in self._windows.items() if end <= now]
        for k in expired:
            del self._windows[k]
        if len(self._windows) >= _PRUNE_AT:  # none expired: drop the oldest tenth
            for k in list(self._windows)[: _PRUNE_AT // 10]:
                del self._windows[k]
