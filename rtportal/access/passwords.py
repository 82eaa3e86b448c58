"""The server's hash of a login secret (argon2-cffi), under a concurrency cap.

Each argon2 run takes ``login_hash_memory_kib`` of memory for a few tens
of milliseconds, so a flood of sign-ins must not run them all at once:
hashing runs on a dedicated pool of ``login_hash_concurrency`` threads per
process, and at most ``login_hash_queue`` further callers wait for it; one
more is refused ``rate_limited`` at once (it costs nothing). Memory is then
bounded by ``concurrency x memory`` whatever the load.

The pool is per process, not per event loop: a cap on memory is a property
of the process. ``configure`` (called by the app factory) sets the
parameters; ``hashing()`` is the process's instance.

``verify`` of a person who cannot sign in (unknown email, no password,
disabled) runs ``dummy_verify``: a verify of the same cost against a fixed
hash, so the answer takes as long as for a wrong password.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rtportal import settings as defaults
from rtportal.errors import RateLimited
from rtportal.settings import Settings

__all__ = ["HashParams", "Hashing", "Verified", "configure", "hashing"]

T = TypeVar("T")
_RETRY_AFTER = 1  # seconds a refused caller is told to wait


@dataclass(frozen=True, slots=True)
class HashParams:
    memory_kib: int
    time_cost: int
    concurrency: int
    queue: int

    @classmethod
    def of(cls, settings: Settings) -> HashParams:
        return cls(
            settings.login_hash_memory_kib,
            settings.login_hash_time_cost,
            settings.login_hash_concurrency,
            settings.login_hash_queue,
        )


@dataclass(frozen=True, slots=True)
class Verified:
    """A verify's outcome; ``rehash`` is the new hash when the parameters changed."""

    ok: bool
    rehash: str | None = None


class Hashing:
    """argon2-cffi on a bounded pool of threads with a bounded wait queue."""

    def __init__(self, params: HashParams) -> None:
        self.params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost, memory_cost=params.memory_kib, parallelism=1
        )
        self._pool = ThreadPoolExecutor(params.concurrency, thread_name_prefix="rtp-hash")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self.peak = 0  # most callers admitted at once (running + waiting)
        self.running = 0
        self.peak_running = 0  # most hashes running at once: never above concurrency
        self._dummy = self._hasher.hash(b"\0" * 32)

    async def _run(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._admitted >= self.params.concurrency + self.params.queue:
                raise RateLimited("too many sign-ins at once", retry_after=_RETRY_AFTER)
            self._admitted += 1
            self.peak = max(self.peak, self._admitted)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._counted, fn)
        finally:
            with self._lock:
                self._admitted -= 1

    def _counted(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            return fn()
        finally:
            with self._lock:
                self.running -= 1

    async def hash(self, secret: bytes) -> str:
        return await self._run(lambda: self._hasher.hash(secret))

    async def verify(self, verifier: str | None, secret: bytes) -> Verified:
        """Check ``secret`` against ``verifier`` (None: a dummy verify, then False)."""
        if verifier is None:
            await self.dummy_verify()
            return Verified(False)
        return await self._run(lambda: self._verify(verifier, secret))

    async def dummy_verify(self) -> None:
        await self._run(lambda: self._verify(self._dummy, b"\1" * 32))

    def _verify(self, verifier: str, secret: bytes) -> Verified:
        try:
            self._hasher.verify(verifier, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verified(False)
        if self._hasher.check_needs_rehash(verifier):
            return Verified(True, self._hasher.hash(secret))
        return Verified(True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_current: Hashing | None = None
_current_lock = threading.Lock()


_DEFAULT_PARAMS = HashParams(
    defaults.DEFAULT_LOGIN_HASH_MEMORY_KIB,
    defaults.DEFAULT_LOGIN_HASH_TIME_COST,
    defaults.DEFAULT_LOGIN_HASH_CONCURRENCY,
    defaults.DEFAULT_LOGIN_HASH_QUEUE,
)


def configure(settings: Settings | HashParams) -> Hashing:
    """The process's ``Hashing`` for ``settings`` (replaced when the parameters differ)."""
    global _current
    params = settings if isinstance(settings, HashParams) else HashParams.of(settings)
    with _current_lock:
        if _current is None or _current.params != params:
            old, _current = _current, Hashing(params)
            if old is not None:
                old.close()
        return _current


def hashing() -> Hashing:
    """The process's ``Hashing`` (default parameters until ``configure`` ran)."""
    with _current_lock:
        current = _current
    return current if current is not None else configure(_DEFAULT_PARAMS)
