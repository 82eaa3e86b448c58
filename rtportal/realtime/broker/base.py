"""The broker contract every backend implements, and helpers they share.

A broker is the per-worker pub/sub link between worker processes. It is
*at-most-once*: a message may be lost (a dead backend, a reconnect, an
overflowing queue). The database is the record; the hub uses the broker only
to learn early that something happened and fills every gap from the database.
That is why ``publish``/``subscribe`` never raise for a dead backend: the
caller has already committed, and delivery catches up by itself.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = [
    "Backoff",
    "Broker",
    "OnMessage",
    "OnReset",
    "RateLimitedLog",
    "dispatch_message",
    "dispatch_reset",
]

log = logging.getLogger("rtportal.realtime.broker")

OnMessage = Callable[[str, bytes], None]
"""``on_message(topic, data)``: called on the event loop, must not block."""

OnReset = Callable[[], None]
"""``on_reset()``: messages may have been lost; re-read state from the database."""


@runtime_checkable
class Broker(Protocol):
    """One per worker process; see docs/architecture.md ("Broker")."""

    # True when no other broker can ever subscribe to what this one publishes
    # (a private in-process bus: one worker): a message would reach only its
    # own publisher, so the hub does not encode or publish at all.
    private: bool

    async def start(self) -> None:
        """Connect (or start trying to) and start delivering to the handler."""

    async def close(self) -> None:
        """Stop delivering, drop subscriptions, release connections. Idempotent."""

    async def publish(self, topic: str, data: bytes) -> None:
        """Send data to every subscriber of topic; never raises for a dead backend."""

    async def subscribe(self, topic: str) -> None:
        """Start receiving topic; kept across reconnects. Never raises for a dead backend."""

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving topic (messages already in flight may still arrive)."""

    def set_handler(self, on_message: OnMessage, on_reset: OnReset) -> None:
        """Install the callbacks; call before ``start``."""


def dispatch_message(on_message: OnMessage, topic: str, data: bytes) -> None:
    """Call the handler; a handler bug is logged and never kills the reader."""
    try:
        on_message(topic, data)
    except Exception:
        log.exception("broker message handler failed for topic %r", topic)


def dispatch_reset(on_reset: OnReset) -> None:
    """Call the reset handler; a handler bug is logged and never kills the reader."""
    try:
        on_reset()
    except Exception:
        log.exception("broker reset handler failed")


class Backoff:
    """Exponential backoff with full jitter for reconnect loops.

    Jitter keeps N workers that lost the same Redis from reconnecting in
    lock-step; the cap keeps recovery quick after a short outage.
    """

    def __init__(self, initial: float = 0.05, cap: float = 2.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self._current = initial

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``reset``."""
        delay = random.uniform(self._current / 2, self._current)  # noqa: S311 - jitter, not crypto
        self._current = min(self.cap, self._current * self.factor)
        return delay

    def reset(self) -> None:
        """Back to the initial delay (after a successful connect)."""
        self._current = self.initial


class RateLimitedLog:
    """Log a repeated failure at most once per interval, with a count.

    A dead Redis under load would otherwise write one line per publish.
    """

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last = 0.0
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            suffix = f" ({self._suppressed} similar suppressed)" if self._suppressed else ""
            self._logger.warning(msg + suffix, *args)
            self._last = now
            self._suppressed = 0
        else:
            self._suppressed += 1
