"""The firm's internal-only tags and the items that carry them (docs/threads.md "Tags").

A tag is an opaque id (22 characters of base64url: 16 random bytes chosen by
the staff browser) and a name the server never sees: ``name_blob`` is an
rtp1 envelope sealed under the firm internal key (``vis=1``, envelope
matter ``#tag``, thread the tag id). The server checks only its form: it
decodes, names this firm, that context and the caller as sender, is
staff-only and at most 1 KiB; readers verify the sender's certificate and
decrypt (``rtportal.sdk.tags``).

Tagging an item writes its ``item_tags`` row and a ``tag`` event (audience
staff) in one unit of work. A change that changes nothing (adding a tag the
item has, removing one it has not, a retried request) writes neither: one
row, one event. Everything here is staff-only; contacts get ``not_found``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership
from rtportal.crypto.envelope import Visibility
from rtportal.db.models import Event, Firm, ItemTag, Matter, Tag, utcnow
from rtportal.errors import BadRequest, Conflict, NotFound
from rtportal.events.event import StoredEvent
from rtportal.events.unit import Publish, Unit
from rtportal.events.validate import valid_client_id
from rtportal.jsonlimits import stored_payload
from rtportal.keys import ids, records
from rtportal.principal import Principal

if TYPE_CHECKING:
    from rtportal.db import Database
    from rtportal.settings import Settings

__all__ = [
    "NAME_BLOB_MAX",
    "TAG_CONTEXT",
    "TagChange",
    "archive_tag",
    "create_tag",
    "list_tags",
    "parse_item",
    "require_staff",
    "set_item_tag",
    "tags_of",
    "valid_tag",
]

NAME_BLOB_MAX = 1024
# The envelope "matter" of a tag name: not a matter reference (those are
# AAAA0000), so a tag name can never be replayed as a matter's note.
TAG_CONTEXT = "#tag"
_TAG_RE = re.compile(r"[A-Za-z0-9_-]{22}")
# Kinds whose events are items that can be tagged (an item is the event that made it;
# a welcome, whose item id is its thread id, is not one: it has no client id).
_ITEM_KINDS = ("message", "note")


def valid_tag(tag: object) -> bool:
    return isinstance(tag, str) and _TAG_RE.fullmatch(tag) is not None


def require_staff(principal: Principal) -> None:
    """Tag writes are staff only; anyone else is told nothing exists."""
    if principal.kind != "staff":
        raise NotFound("no such endpoint")


def parse_item(item: str) -> tuple[str, int, str] | None:
    """``<sender rtp1 id>.<client id>`` -> (actor kind, actor id, client id), or ``None``."""
    sender, dot, client_id = item.partition(".")
    who = ids.parse(sender) if dot else None
    if who is None or not valid_client_id(client_id):
        return None
    return who[0], who[1], client_id


def _check_name_blob(data: bytes, firm: Firm, tag: str, principal: Principal) -> None:
    header = records.envelope(data, "name_blob").header
    if (
        header.firm != firm.slug
        or header.matter != TAG_CONTEXT
        or header.thread != tag
        or header.vis is not Visibility.STAFF
        or header.sender != ids.of(principal)
    ):
        raise BadRequest(
            "name_blob: the envelope names another firm, context, tag, sender or visibility",
            field="name_blob",
            reason="crypto_wrong_context",
        )


async def create_tag(
    session: AsyncSession, principal: Principal, tag: object, name_blob: bytes
) -> tuple[Tag, bool]:
    """A new tag of the caller's firm: ``(row, created)``; the same tag posted again
    with the same name is the stored row (``created=False``), with another ``conflict``."""
    require_staff(principal)
    if not valid_tag(tag):
        raise BadRequest("tag: 22 characters of base64url", field="tag", reason="bad_tag")
    assert isinstance(tag, str)
    if len(name_blob) > NAME_BLOB_MAX:
        raise BadRequest(f"name_blob: over {NAME_BLOB_MAX} bytes", field="name_blob")
    firm = await session.get(Firm, principal.firm_id)
    if firm is None:
        raise NotFound("no such firm")
    _check_name_blob(name_blob, firm, tag, principal)
    existing = await _tag_row(session, principal, tag)
    if existing is not None:
        if existing.name_blob != name_blob:
            raise Conflict("this tag id is taken", reason="tag_exists")
        return existing, False
    row = Tag(firm_id=principal.firm_id, tag=tag, name_blob=name_blob, created_by=ids.of(principal))
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        # Another request created it first (PostgreSQL): the caller's unit rolls back.
        raise Conflict("this tag id is taken", reason="tag_exists") from None
    return row, True


async def _tag_row(session: AsyncSession, principal: Principal, tag: str) -> Tag | None:
    query = select(Tag).where(Tag.firm_id == principal.firm_id, Tag.tag == tag)
    return (await session.execute(query)).scalar_one_or_none()


async def list_tags(session: AsyncSession, principal: Principal) -> Sequence[Tag]:
    """The firm's tags, oldest first (staff and bots: staff-equivalent readers)."""
    if not principal.is_staff:
        raise NotFound("no such endpoint")
    query = select(Tag).where(Tag.firm_id == principal.firm_id).order_by(Tag.id)
    return (await session.execute(query)).scalars().all()


async def archive_tag(session: AsyncSession, principal: Principal, tag: str) -> Tag:
    """Archive a tag (no new items get it; items keep it). Archiving twice is one archive."""
    require_staff(principal)
    row = await _tag_row(session, principal, tag) if valid_tag(tag) else None
    if row is None:
        raise NotFound("no such tag", reason="no_such_tag")
    if row.archived_at is None:
        row.archived_at = utcnow()
        await session.flush()
    return row


@dataclass(frozen=True, slots=True)
class TagChange:
    item: str
    tag: str
    tagged: bool  # does the item carry the tag now
    event: StoredEvent | None  # the ``tag`` event written, None when nothing changed


async def _item_event(session: AsyncSession, matter: Matter, item: str) -> Event:
    parsed = parse_item(item)
    row = None
    if parsed is not None:
        kind, actor_id, client_id = parsed
        query = select(Event).where(
            Event.matter_id == matter.id,
            Event.actor_kind == kind,
            Event.actor_id == actor_id,
            Event.client_id == client_id,
            Event.kind.in_(_ITEM_KINDS),
        )
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None or row.redacted:
        raise NotFound("no such item", reason="no_such_item")
    return row


async def set_item_tag(
    db: Database,
    publish: Publish | None,
    settings: Settings | None,
    principal: Principal,
    ref: str,
    item: str,
    tag: object,
    removed: bool,
) -> TagChange:
    """Put ``tag`` on ``item`` of matter ``ref`` (or take it off): the row and the event
    in one transaction, the event published after the commit."""
    require_staff(principal)
    if not valid_tag(tag):
        raise BadRequest("tag: 22 characters of base64url", field="tag", reason="bad_tag")
    assert isinstance(tag, str)
    async with Unit(db, publish, settings) as unit:
        session = unit.session
        matter = await membership.can_access(session, principal, ref)
        # The matter's row lock (PostgreSQL; SQLite's write transaction already holds
        # the database lock) orders concurrent changes of its tags: the second sees
        # the first's row, so a repeat writes nothing.
        await session.execute(select(Matter.id).where(Matter.id == matter.id).with_for_update())
        tag_row = await _tag_row(session, principal, tag)
        if tag_row is None:
            raise NotFound("no such tag", reason="no_such_tag")
        event_row = await _item_event(session, matter, item)
        query = select(ItemTag).where(
            ItemTag.matter_id == matter.id, ItemTag.item == item, ItemTag.tag_id == tag_row.id
        )
        existing = (await session.execute(query)).scalar_one_or_none()
        if removed == (existing is None):
            return TagChange(item, tag, existing is not None, None)
        if existing is not None:
            await session.delete(existing)
        elif tag_row.archived_at is not None:
            raise BadRequest("this tag is archived", field="tag", reason="tag_archived")
        else:
            session.add(
                ItemTag(
                    matter_id=matter.id,
                    item=item,
                    seq=event_row.seq,
                    tag_id=tag_row.id,
                    added_by=ids.of(principal),
                )
            )
        payload: dict[str, object] = {"item": item, "tag": tag}
        thread = _thread_of(event_row)
        if thread is not None:
            payload["thread"] = thread
        if removed:
            payload["removed"] = True
        event, _ = await unit.append(
            matter=matter,
            actor=principal,
            kind="tag",
            audience="staff",
            payload=payload,
            system=True,
        )
    return TagChange(item, tag, not removed, event)


def _thread_of(row: Event) -> str | None:
    thread = stored_payload(row.payload).get("thread")
    return thread if isinstance(thread, str) and 0 < len(thread) <= 64 else None


async def tags_of(
    session: AsyncSession, matter_seqs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], list[str]]:
    """The tag ids on each ``(matter id, item seq)`` (absent: none), for staff views."""
    if not matter_seqs:
        return {}
    matter_ids = sorted({m for m, _ in matter_seqs})
    seqs = sorted({s for _, s in matter_seqs})
    query = (
        select(ItemTag.matter_id, ItemTag.seq, Tag.tag)
        .join(Tag, Tag.id == ItemTag.tag_id)
        .where(ItemTag.matter_id.in_(matter_ids), ItemTag.seq.in_(seqs))
        .order_by(ItemTag.id)
    )
    wanted = set(matter_seqs)
    out: dict[tuple[int, int], list[str]] = {}
    for matter_id, seq, tag in (await session.execute(query)).all():
        key = (int(matter_id), int(seq))
        if key in wanted:
            out.setdefault(key, []).append(str(tag))
    return out
