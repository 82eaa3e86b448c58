"""What every status change shares: the matter's lock, the items it names, the
clients a request is addressed to, and its one event.

An envelope a change carries (an upload's descriptors, a rejection's
reason) is checked like a message of the item's thread (``check_envelope``).
A change runs in a unit of work (``rtportal.events.unit.Unit``) holding the
matter's row lock (the lock uploads and attachments take,
``rtportal.files.quota.lock_matter``), so concurrent changes of one
checklist are ordered and each sees the other's status. It returns a
``Change``: the items it changed and the events it appended, which the unit
publishes after the commit; a change that changes nothing appends no event
(a retry answers the same state). The events are the seam for whatever
follows a document's arrival (a review inbox reads ``Change.received``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.db.models_documents import DocumentFile, DocumentItem, DocumentRecipient
from rtportal.documents.rows import file_item, no_item
from rtportal.events.event import StoredEvent
from rtportal.events.send import Send
from rtportal.events.unit import Unit
from rtportal.files.quota import lock_matter
from rtportal.files.rows import claim
from rtportal.keys import ids
from rtportal.keys.envelopes import check_sends
from rtportal.principal import Principal
from rtportal.reviews.rows import Queued

__all__ = [
    "Change",
    "add_files",
    "append_event",
    "check_envelope",
    "claim_files",
    "locked_item",
    "recipients",
    "take_files",
]


@dataclass(slots=True)
class Change:
    """The items a change touched (every one it named) and the events it wrote."""

    items: list[DocumentItem] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)
    # Items a client's upload moved to ``uploaded`` (what awaits a review).
    received: list[DocumentItem] = field(default_factory=list)
    # Reviews queued or closed in the change's transaction: whose count to push after it.
    queued: list[Queued] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.events)


async def locked_item(
    unit: Unit, matter: Matter, ref: str, visible: Any | None = None
) -> DocumentItem:
    """The matter's item ``ref``, read under the matter's lock; ``visible``: the
    caller's visibility condition (a client's), else ``no_such_document``."""
    await lock_matter(unit.session, matter.id)
    query = select(DocumentItem).where(DocumentItem.matter_id == matter.id, DocumentItem.ref == ref)
    if visible is not None:
        query = query.where(visible)
    row = (
        await unit.session.scalars(query.execution_options(populate_existing=True))
    ).one_or_none()
    if row is None:
        raise no_item()
    return row


async def recipients(session: AsyncSession, item_ids: list[int]) -> list[int]:
    """The clients the items are addressed to, ascending (no duplicates)."""
    if not item_ids:
        return []
    found = await session.scalars(
        select(DocumentRecipient.contact_id)
        .where(DocumentRecipient.item_id.in_(item_ids))
        .distinct()
        .order_by(DocumentRecipient.contact_id)
    )
    return [int(c) for c in found]


async def claim_files(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    item: DocumentItem,
    files: list[str],
) -> list[str]:
    """Claim ``files`` for ``item`` (as an item's ``payload.files`` are claimed,
    docs/files.md): stored files of this matter uploaded by the caller, free or
    the item's already; else ``not_found`` ``no_such_file``, nothing written.
    The files the item did not hold yet, in the order given."""
    await claim(session, principal, matter.id, files, file_item(item.ref))
    held = set(
        (
            await session.scalars(
                select(DocumentFile.file_id).where(
                    DocumentFile.item_id == item.id, DocumentFile.file_id.in_(files)
                )
            )
        ).all()
    )
    return [f for f in files if f not in held]


async def add_files(
    session: AsyncSession,
    principal: Principal,
    item: DocumentItem,
    files: list[str],
    event_seq: int,
) -> None:
    """The item holds ``files`` from its round; ``event_seq``: the event whose envelope
    names them (the checklist hands it out, so a page that never loaded the event
    still shows the files' names: ``items.item_bodies``)."""
    for file_id in files:
        session.add(
            DocumentFile(
                file_id=file_id,
                item_id=item.id,
                round=item.round,
                added_by=ids.of(principal),
                event_seq=event_seq,
            )
        )
    await session.flush()


async def append_event(
    unit: Unit,
    matter: Matter,
    actor: Principal,
    kind: str,
    payload: dict[str, Any],
    blob: bytes | None = None,
) -> StoredEvent:
    """The change's one event, in the unit's transaction (published after commit)."""
    event, _ = await unit.append(
        matter=matter,
        actor=actor,
        kind=kind,
        audience="portal",
        payload=payload,
        blob=blob,
        system=True,
    )
    return event


async def check_envelope(
    session: AsyncSession, principal: Principal, matter: Matter, thread: str, blob: bytes
) -> None:
    """An upload's, share's or rejection's envelope, checked as a message of the
    item's thread is (``rtportal.keys.envelopes``): once the matter has an epoch,
    an rtp1 envelope of this firm, matter and thread, portal visibility, the
    writer's certified key, the newest epoch, no stale client named. A matter
    without an epoch is not checked (a firm without keys)."""
    send = Send(matter.reference, "message", "portal", {"thread": thread}, blob)
    (refusal,) = await check_sends(session, [(principal, matter, send)])
    if refusal is not None:
        raise refusal


async def take_files(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    item: DocumentItem,
    files: list[str],
    blob: bytes,
) -> list[str]:
    """An upload's or a share's files: claimed for ``item`` and, when any is new,
    their descriptors' envelope checked (a retry naming only the item's own
    files changes nothing, whatever its envelope). The new files, in order."""
    new = await claim_files(session, principal, matter, item, files)
    if new:
        await check_envelope(session, principal, matter, item.thread, blob)
    return new
