"""A unit of work: append events in one write transaction, publish after commit.

Every writer outside the group commit (seeding, administrative changes,
the access lifecycle, the key directory, the phase timeline) appends
through a ``Unit``::

    async with Unit(db, hub.publish) as unit:
        await unit.append(matter=m, actor=a, kind="phase", audience="staff",
                          payload={"phase": 3, "name": "Lodged"}, system=True)

The events it appended are published once, in order, after the
transaction committed; if the block or the commit fails, the transaction
rolls back and nothing is published (a client never sees an event that is
not stored). Like the group commit, a publish that fails after the commit
is logged, not raised: the rows are committed and the hub's safety poll
delivers them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.events.event import StoredEvent
from rtportal.events.log import append
from rtportal.principal import Principal

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = ["Publish", "Unit"]

log = logging.getLogger("rtportal.commit")


class Publish(Protocol):
    """Publish committed events, in order (``Hub.publish``)."""

    def __call__(self, events: list[StoredEvent], /) -> Awaitable[None]: ...


class Unit:
    """``async with Unit(db, publish) as unit``: ``unit.session`` is a write
    session; events appended with ``unit.append`` (or added with
    ``unit.add``) are published after it commits. ``publish=None``: nothing
    listens (a command-line seed); the events are only committed."""

    __slots__ = ("_events", "_transaction", "db", "publish", "session", "settings")

    session: AsyncSession

    def __init__(
        self, db: Database, publish: Publish | None, settings: Settings | None = None
    ) -> None:
        self.db = db
        self.publish = publish
        self.settings = settings
        self._events: list[StoredEvent] = []
        self._transaction: AbstractAsyncContextManager[AsyncSession] | None = None

    async def __aenter__(self) -> Unit:
        if self._transaction is not None:
            raise RuntimeError("a Unit is entered once")
        self._transaction = self.db.write()
        self.session = await self._transaction.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._transaction is not None
        events, self._events = self._events, []
        # Commits when the block succeeded, rolls back (and re-raises) otherwise.
        await self._transaction.__aexit__(exc_type, exc, tb)
        if exc_type is None and events and self.publish is not None:
            try:
                await self.publish(events)
            except Exception:
                log.exception("publish failed after commit")

    def add(self, event: StoredEvent) -> None:
        """Publish ``event`` after the commit (appended in ``session``)."""
        self._events.append(event)

    async def append(
        self,
        *,
        matter: Matter,
        actor: Principal,
        kind: str,
        audience: str,
        payload: dict[str, Any],
        blob: bytes | None = None,
        client_id: str | None = None,
        system: bool = False,
    ) -> tuple[StoredEvent, bool]:
        """``log.append`` in this unit's transaction; a new event is published
        after the commit (a retried ``client_id``, ``created=False``, is not).
        ``system``: the service writes a system kind (``rtportal.events.kinds``)."""
        event, created = await append(
            self.session,
            matter=matter,
            actor=actor,
            kind=kind,
            audience=audience,
            payload=payload,
            blob=blob,
            client_id=client_id,
            settings=self.settings,
            system=system,
        )
        if created:
            self._events.append(event)
        return event, created

    @property
    def pending(self) -> list[StoredEvent]:
        """Events to publish after the commit, in order (a copy)."""
        return list(self._events)
