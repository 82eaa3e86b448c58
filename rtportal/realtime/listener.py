"""``Listener``: what the hub delivers to and closes (a websocket connection)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rtportal.events.event import StoredEvent
from rtportal.principal import Principal

__all__ = ["Listener"]


@runtime_checkable
class Listener(Protocol):
    """A live consumer of events (a websocket connection) on this worker.

    ``deliver`` and ``close`` are called on the event loop and must not
    block or await: queue a frame or mark the connection slow/closing.
    """

    @property
    def principal(self) -> Principal: ...

    def deliver(self, event: StoredEvent) -> None: ...

    def close(self, code: int) -> None: ...
