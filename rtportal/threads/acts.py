"""Edits and deletes of items: each in a write transaction of its own.

The group commit writes its batch in one statement, which cannot also erase
blobs; so the sends of ``edit`` and ``delete`` (prepared like every send by
``rtportal.threads.items``) are written here, one transaction each, after
the batch (``rtportal.events.groupcommit.WriteAlone``). In it, in order:

1. the matter's row is locked (PostgreSQL ``FOR UPDATE``; SQLite's write
   transaction holds the database lock already): edits and deletes of a
   matter are serialised, so a delete's erasure covers every edit committed
   before it and an edit cannot land after it;
2. a retry (the writer's client id is stored) is answered by the log's
   idempotency, whatever happened to the item since (one edit, one delete);
3. otherwise the item must still be there and not deleted (``no_such_item``);
4. the event is appended; a delete then erases the item's event's and its
   edits' blobs (``blob = NULL, redacted = true``) in the same transaction.

Frames cached before the delete are never served again (``redacted`` is part
of a frame cache entry's validity: ``rtportal.realtime.framecache``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Event, Matter
from rtportal.errors import NotFound
from rtportal.events.event import StoredEvent
from rtportal.events.guards import hold
from rtportal.events.log import append
from rtportal.events.send import Send
from rtportal.jsonlimits import stored_payload
from rtportal.principal import Principal
from rtportal.threads.items import Found, find_item
from rtportal.threads.sql import in_thread_index, thread_expr

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = ["ActWriter", "append_send", "redact"]


async def _lock(session: AsyncSession, matter_id: int) -> None:
    query = select(Matter.id).where(Matter.id == matter_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    await session.execute(query)


async def _stored(session: AsyncSession, matter_id: int, principal: Principal, cid: str) -> bool:
    row = await session.execute(
        select(Event.id).where(
            Event.matter_id == matter_id,
            Event.actor_kind == principal.kind,
            Event.actor_id == principal.id,
            Event.client_id == cid,
        )
    )
    return row.first() is not None


async def redact(session: AsyncSession, matter_id: int, item: Found) -> int:
    """Erase the blobs of ``item``'s event and its edits; the number of rows changed."""
    expr = thread_expr(session.get_bind().dialect.name)
    edits = await session.execute(
        select(Event.id, Event.payload).where(
            Event.matter_id == matter_id,
            expr == item.thread,
            in_thread_index(),  # the index's predicate
            Event.kind == "edit",
        )
    )
    rows = [row.id for row in edits.all() if stored_payload(row.payload).get("item") == item.item]
    _, _, client_id = item.item.partition(".")
    first = select(Event.id).where(
        Event.matter_id == matter_id,
        Event.actor_kind == item.actor[0],
        Event.actor_id == item.actor[1],
        Event.client_id == client_id,
    )
    rows.extend((await session.execute(first)).scalars())
    result = await session.execute(
        update(Event).where(Event.id.in_(rows)).values(blob=None, redacted=True)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def append_send(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    send: Send,
    settings: Settings | None,
) -> tuple[StoredEvent, bool]:
    """Append one prepared send in the caller's transaction (a send written alone)."""
    return await append(
        session,
        matter=matter,
        actor=principal,
        kind=send.kind,
        audience=send.audience,
        payload=send.payload,
        blob=send.blob,
        client_id=send.client_id,
        settings=settings,
    )


class ActWriter:
    """``WriteAlone`` of the group commit for ``edit`` and ``delete`` sends."""

    __slots__ = ("db", "settings")

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings

    async def __call__(
        self, principal: Principal, matter: Matter, send: Send, guard: int | None = None, /
    ) -> tuple[StoredEvent, bool]:
        """Write one prepared edit or delete; ``(event, created)`` once committed
        (``guard``: the version its checks remembered facts at, ``rtportal.events.guards``)."""
        # Published by the group commit with its batch, in commit order.
        async with self.db.write() as session:
            await _lock(session, matter.id)
            await hold(session, matter.id, guard)
            found = await find_item(session, matter.id, str(send.payload.get("item")))
            if send.client_id is None or not await _stored(
                session, matter.id, principal, send.client_id
            ):
                if found is None or found.redacted:
                    raise NotFound("no such item", reason="no_such_item")
            event, created = await append_send(session, principal, matter, send, self.settings)
            if created and send.kind == "delete" and found is not None:
                await redact(session, matter.id, found)
        return event, created
