"""The parts a ``GroupCommit`` is built with: their contracts, and what a send gets back.

Each capability gives the group commit one part (the access rule, the thread
rules, the key directory's check, the writer of sends written alone); the
group commit calls them in one read session before its write
(``rtportal.events.groupcommit``). Kept apart so a capability implements a
contract without importing the group commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.errors import RtPortalError
from rtportal.events.event import StoredEvent
from rtportal.events.send import Send
from rtportal.principal import Principal

__all__ = ["Authorize", "OnDone", "Outcome", "Prepare", "WriteAlone", "WriteCheck"]


class Authorize(Protocol):
    """The matter ``matter_ref`` if ``principal`` may write to it, else
    ``NotFound`` (``rtportal.access.membership.can_access``)."""

    def __call__(
        self, session: AsyncSession, principal: Principal, matter_ref: str, /
    ) -> Awaitable[Matter]: ...


class WriteCheck(Protocol):
    """Refusals of a batch's sends beyond their kind's rules (the key
    directory's envelope check, ``rtportal.keys.envelopes.check_sends``):
    one per item, ``None`` for a send that may be written."""

    def __call__(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]], /
    ) -> Awaitable[list[RtPortalError | None]]: ...


class Prepare(Protocol):
    """Each send of a batch as it will be written (fields the server sets, filled
    in) or its refusal, in order (the thread rules, ``rtportal.threads.items
    .prepare_sends``); sends it does not concern are returned unchanged."""

    def __call__(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]], /
    ) -> Awaitable[list[Send | RtPortalError]]: ...


class WriteAlone(Protocol):
    """Write one prepared send in a transaction of its own (edits and deletes,
    ``rtportal.threads.acts.ActWriter``): ``(event, created)`` once committed;
    an ``RtPortalError`` refuses it. Published with its batch. ``guard``: the
    matter's version its checks remembered facts at; the write holds to it
    (``rtportal.events.guards.hold`` after the matter's lock: ``GuardMoved``)."""

    def __call__(
        self, principal: Principal, matter: Matter, send: Send, guard: int | None = None, /
    ) -> Awaitable[tuple[StoredEvent, bool]]: ...


Outcome = tuple[StoredEvent, bool, Matter]  # (event, created, matter)
OnDone = Callable[[Outcome | None, BaseException | None], None]
