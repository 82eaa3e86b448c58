"""``ByteBudget``: the bytes one worker's page reads may hold at once.

Every backlog page (websocket subscribe) and history page (HTTP) is bounded
in bytes by its own setting; this bounds how many of them a worker reads
and encodes at the same time, so a thousand connections subscribing at
once, or a burst of history requests, cannot add up to more than
``settings.read_budget_bytes`` of rows and frames in flight. A read
reserves its page's byte bound before it starts and releases it once its
frames are queued (websocket) or its response body is encoded (HTTP).

Reads that do not fit wait their turn, first come first served. The
queue of waiters is bounded (``max_waiters``; overflow policy: refuse the
newest with ``unavailable``, which HTTP answers 503 and a subscribe
reports as a failed backlog the client retries).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rtportal.errors import Unavailable

__all__ = ["ByteBudget"]


class ByteBudget:
    __slots__ = ("_waiters", "max_bytes", "max_waiters", "used")

    def __init__(self, max_bytes: int, *, max_waiters: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_waiters = max_waiters
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        """Reserve ``nbytes`` (at most the whole budget) for the block."""
        n = max(0, min(nbytes, self.max_bytes))
        await self._acquire(n)
        try:
            yield
        finally:
            self._release(n)

    async def _acquire(self, n: int) -> None:
        if not self._waiters and self.used + n <= self.max_bytes:
            self.used += n
            return
        if len(self._waiters) >= self.max_waiters:
            raise Unavailable("server busy: too many reads waiting; retry shortly")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(n)  # granted, then cancelled before use: give it back
            else:
                self._waiters.remove(entry)
                self._wake()  # a waiter behind this one may fit now
            raise

    def _release(self, n: int) -> None:
        self.used -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.max_bytes:
            n, future = self._waiters.popleft()
            if future.done():
                continue
            self.used += n
            future.set_result(None)
