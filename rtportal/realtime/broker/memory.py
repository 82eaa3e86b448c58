"""In-process broker: the embedded single-process default (``memory://``).

``memory://`` gives each broker its own private bus (one worker, nothing to
share). ``memory://<name>`` joins a process-wide bus of that name, so two
brokers in one process (two hubs in a test) can talk as two workers would.

Delivery is asynchronous (``loop.call_soon``), as with a real backend: a
publisher never runs subscriber code inside its own ``publish`` call, and
per-topic order from one publisher is kept because ``call_soon`` is FIFO.
"""

from __future__ import annotations

import asyncio
import weakref

from rtportal.realtime.broker.base import OnMessage, OnReset, dispatch_message

__all__ = ["MemoryBroker"]


class _Bus:
    """Topic -> brokers subscribed to it, within one process."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[MemoryBroker]] = {}


# Named buses live as long as a broker uses them (weak values), so tests
# that reuse a name in a later test start from an empty bus.
_named: weakref.WeakValueDictionary[str, _Bus] = weakref.WeakValueDictionary()


def _bus_for(name: str) -> _Bus:
    if not name:
        return _Bus()
    bus = _named.get(name)
    if bus is None:
        bus = _Bus()
        _named[name] = bus
    return bus


class MemoryBroker:
    """A ``Broker`` over an in-process bus; never loses a message while open."""

    def __init__(self, name: str = "") -> None:
        self._bus = _bus_for(name)
        # An unnamed bus is this broker's alone: nothing another worker could hear.
        self.private = not name
        self.published = 0  # messages published (for tests and diagnostics)
        self._topics: set[str] = set()
        self._on_message: OnMessage | None = None
        self._on_reset: OnReset | None = None
        self._open = False
        self._closed = False

    def set_handler(self, on_message: OnMessage, on_reset: OnReset) -> None:
        self._on_message = on_message
        self._on_reset = on_reset

    async def start(self) -> None:
        self._open = not self._closed

    async def close(self) -> None:
        self._open = False
        self._closed = True
        for topic in self._topics:
            subs = self._bus.subscribers.get(topic)
            if subs is not None:
                subs.discard(self)
                if not subs:
                    del self._bus.subscribers[topic]
        self._topics.clear()

    async def publish(self, topic: str, data: bytes) -> None:
        self.published += 1
        subs = self._bus.subscribers.get(topic)
        if not subs or self._closed:
            return
        loop = asyncio.get_running_loop()
        for broker in subs:
            loop.call_soon(broker._deliver, topic, data)

    async def subscribe(self, topic: str) -> None:
        if topic in self._topics or self._closed:
            return
        self._topics.add(topic)
        self._bus.subscribers.setdefault(topic, set()).add(self)

    async def unsubscribe(self, topic: str) -> None:
        if topic not in self._topics:
            return
        self._topics.discard(topic)
        subs = self._bus.subscribers.get(topic)
        if subs is not None:
            subs.discard(self)
            if not subs:
                del self._bus.subscribers[topic]

    def _deliver(self, topic: str, data: bytes) -> None:
        # Re-checked at delivery time: an unsubscribe or close between
        # publish and delivery means the message is no longer wanted.
        if self._open and topic in self._topics and self._on_message is not None:
            dispatch_message(self._on_message, topic, data)
