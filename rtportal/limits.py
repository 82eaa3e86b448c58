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

``AuthFailures`` (one per worker, in the ``Runtime``) meters failed
authentications over HTTP per source address (an IPv6 address by its /64):
``settings.auth_failure_burst`` failures, refilled at
``settings.auth_failure_rate`` per second. While an address's bucket is
empty, its authenticated requests are answered ``rate_limited`` before the
token is looked up. The address is the ASGI client address: behind a
reverse proxy it is the client's only when uvicorn trusts the proxy's
``X-Forwarded-For`` (``--forwarded-allow-ips``), else every request counts
against the proxy's address. At ``_PRUNE_AT`` addresses, full buckets are
dropped, and if none is full the oldest tenth is evicted (overflow policy:
drop oldest), so memory and work stay bounded whatever the number of
addresses.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from rtportal.errors import RateLimited
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["AuthFailures", "UserLimits", "address_key"]

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
        _drop_full(self._buckets, self.rate, self.burst, now)


def _drop_full(buckets: dict[Any, list[float]], rate: float, burst: float, now: float) -> None:
    """Drop the token buckets that have refilled completely (the same as a new one)."""
    full = [
        key for key, (tokens, stamp) in buckets.items() if tokens + (now - stamp) * rate >= burst
    ]
    for key in full:
        del buckets[key]


def address_key(address: str | None) -> str:
    """The bucket of an address: IPv4 as is, IPv6 by its /64 (one host's range)."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class AuthFailures:
    """One worker's failed-authentication buckets, per source address."""

    __slots__ = ("_buckets", "_clock", "burst", "rate")

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = settings.auth_failure_rate
        self.burst = float(settings.auth_failure_burst)
        self._clock = clock
        # address key -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}

    def __len__(self) -> int:
        """Addresses with a bucket (at most ``_PRUNE_AT``)."""
        return len(self._buckets)

    def check(self, address: str | None) -> None:
        """Raise ``RateLimited`` while ``address`` has no failure left (nothing is spent)."""
        if not self._buckets:
            return
        bucket = self._buckets.get(address_key(address))
        if bucket is None:
            return
        tokens = min(self.burst, bucket[0] + (self._clock() - bucket[1]) * self.rate)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate
            raise RateLimited("too many failed sign-ins", retry_after=math.ceil(wait * 1000) / 1000)

    def failed(self, address: str | None) -> None:
        """Spend one token of ``address``'s bucket for a failed authentication."""
        now = self._clock()
        key = address_key(address)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[0], bucket[1] = max(0.0, tokens - 1.0), now

    def _prune(self, now: float) -> None:
        _drop_full(self._buckets, self.rate, self.burst, now)
        if len(self._buckets) >= _PRUNE_AT:
            # None full: drop the oldest tenth (a scan per _PRUNE_AT // 10
            # new addresses, not per failure).
            for key in list(itertools.islice(self._buckets, _PRUNE_AT // 10)):
                del self._buckets[key]
