"""SQLAlchemy 2 typed tables of threads, tags and the phase timeline (docs/threads.md).

An item is the event that created it (``events``): these tables hold only
what the log cannot answer by itself, read marks, the firm's tags (names as
ciphertext) and which item carries which, and the firm's matter types with
their phases and client steps. The thread of an event is indexed, not
copied: migration 0010's expression index ``ix_events_thread`` on
``(matter_id, payload.thread, seq)`` (``rtportal.threads.sql``).
Created by migration 0010, like every table by Alembic.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from rtportal.db.models import Base, Event, UTCDateTime, utcnow

__all__ = [
    "FEED_INDEX",
    "FEED_KINDS",
    "ItemTag",
    "MatterType",
    "Phase",
    "ReadMark",
    "Tag",
    "TimelineStep",
]

# Migrations 0011/0012: the staff activity feed's per-matter probe
# (rtportal.threads.feed), partial on the feed kinds.
FEED_KINDS = ("message", "note", "phase", "access", "bot")
FEED_INDEX = Index(
    "ix_events_feed",
    Event.matter_id,
    Event.id,
    Event.kind,
    Event.actor_kind,
    Event.actor_id,
    Event.redacted,
    postgresql_where=Event.kind.in_(FEED_KINDS),
    sqlite_where=Event.kind.in_(FEED_KINDS),
)

# Migration 0013: a client's history pages walk the matter's portal events
# only (rtportal.events.visible spells the predicate as this literal).
PORTAL_INDEX = Index(
    "ix_events_portal",
    Event.matter_id,
    Event.seq,
    postgresql_where=text("audience = 'portal'"),
    sqlite_where=text("audience = 'portal'"),
)


class ReadMark(Base):
    """How far one reader has read one thread: the seq of the newest item read.

    Only moves forward. ``reader`` is the rtp1 id (``s3``, ``c12``, ``b1``:
    rtportal.keys.ids), so staff, clients and bots share one table.
    """

    __tablename__ = "read_marks"
    __table_args__ = (
        UniqueConstraint("matter_id", "reader", "thread"),
        Index("ix_read_marks_reader", "reader"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    reader: Mapped[str] = mapped_column(String(64))
    thread: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Tag(Base):
    """One of the firm's internal-only tags: an opaque id and its name as ciphertext.

    ``name_blob`` is an rtp1 envelope sealed by a staff browser under the firm
    internal key (staff-only, ``vis=1``): the server never sees a tag name.
    """

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("firm_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(32))
    name_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ItemTag(Base):
    """A tag on an item (the item's ``<sender>.<client id>``): what the feed filters by.

    Written with the ``tag`` event of the change, in its transaction; a
    removal deletes the row (the event stays in the log).
    """

    __tablename__ = "item_tags"
    __table_args__ = (
        UniqueConstraint("matter_id", "item", "tag_id"),
        Index("ix_item_tags_tag", "tag_id", "matter_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    item: Mapped[str] = mapped_column(String(140))
    # The seq of the item's event: the feed's tag filter joins on it.
    seq: Mapped[int] = mapped_column(Integer)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MatterType(Base):
    """A kind of matter of a firm (a visa class, a loan type): its phases and client steps."""

    __tablename__ = "matter_types"
    __table_args__ = (UniqueConstraint("firm_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TimelineStep(Base):
    """One step of a matter type's client-facing timeline (what the client sees)."""

    __tablename__ = "timeline_steps"
    __table_args__ = (UniqueConstraint("matter_type_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_type_id: Mapped[int] = mapped_column(ForeignKey("matter_types.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")


class Phase(Base):
    """One internal phase of a matter type (staff only) and the client step it maps to."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("matter_type_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_type_id: Mapped[int] = mapped_column(ForeignKey("matter_types.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    step_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_steps.id", ondelete="SET NULL")
    )
