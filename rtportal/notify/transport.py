"""What a delivery transport is given and what it may raise.

A transport (SMTP, an SMS provider) sends one ``Outgoing`` message and
returns, or raises ``DeliveryFailed`` with a reason fit to show an org
admin in the outbox: never a password, token or URL with credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["REASON_MAX", "DeliveryFailed", "Outgoing", "Transport", "reason"]

REASON_MAX = 300  # characters of a failure reason kept in the outbox row


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One queued outbox row, as a transport needs it."""

    id: int
    recipient: str
    subject: str
    body: str


class DeliveryFailed(Exception):
    """The provider refused the message or could not be reached; ``str()`` is the reason."""


class Transport(Protocol):
    name: str  # the outbox row's ``transport``: ``smtp``, ``sms_http``

    async def send(self, message: Outgoing) -> None:
        """Deliver ``message`` or raise ``DeliveryFailed``."""
        ...

    async def close(self) -> None: ...


def reason(text: str) -> str:
    """One line, bounded: what the outbox row's ``error`` keeps."""
    line = " ".join(text.split())
    return line if len(line) <= REASON_MAX else line[: REASON_MAX - 1] + "…"
