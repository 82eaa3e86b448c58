"""``HeldNotifier``: no provider configured; every message stays in the outbox (``held``)."""

from __future__ import annotations

from collections.abc import Sequence

from rtportal.notify.outbox import Channel

__all__ = ["HeldNotifier"]


class HeldNotifier:
    def transport_for(self, channel: Channel) -> str:
        return "outbox"

    async def start(self) -> None:
        return None

    async def deliver(self, message_ids: Sequence[int]) -> None:
        return None  # held rows are read in the outbox, not sent

    async def close(self) -> None:
        return None
