"""SQLAlchemy 2 typed tables.

The schema is created by Alembic migrations (``rtportal/db/migrations``), never
by ``metadata.create_all``; ``tests/test_migrations.py`` checks that this
metadata and the migrated schema agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuthToken",
    "Base",
    "Contact",
    "Event",
    "Firm",
    "Matter",
    "MatterMember",
    "StaffUser",
    "UTCDateTime",
    "utcnow",
]

# Deterministic constraint names: migrations and reflection agree on them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite stores no offset; values are normalised to UTC on the way in and
    marked UTC on the way out, so comparisons never mix naive and aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: rtportal stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Firm(Base):
    __tablename__ = "firms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StaffUser(Base):
    """Staff members and bots of a firm (a bot is a user with role ``bot``)."""

    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("firm_id", "email"),
        CheckConstraint("role IN ('org_admin', 'project_admin', 'staff', 'bot')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contact(Base):
    """A client of the firm; reaches matters only through ``matter_members``."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Matter(Base):
    """A case of the firm; ``last_seq`` is the head of its event log."""

    __tablename__ = "matters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    # Globally unique (not only per firm) so the wire needs only the reference.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    responsible_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MatterMember(Base):
    """A contact (role ``client``) or bot (role ``bot``) admitted to a matter."""

    __tablename__ = "matter_members"
    __table_args__ = (
        CheckConstraint("principal_kind IN ('contact', 'bot')", name="principal_kind"),
        CheckConstraint("role IN ('client', 'bot')", name="role"),
        Index("ix_matter_members_principal", "principal_kind", "principal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"), index=True)
    principal_kind: Mapped[str] = mapped_column(String(10))
    principal_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(10))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Event(Base):
    """One entry of a matter's conversation stream (see ``rtportal.events.log``)."""

    __tablename__ = "events"
    __table_args__ = (
        # Also the index of the hot query "events of a matter after seq N".
        UniqueConstraint("matter_id", "seq"),
        # Idempotency: one event per (matter, actor, client-chosen id).
        UniqueConstraint("matter_id", "actor_kind", "actor_id", "client_id"),
        CheckConstraint("audience IN ('portal', 'staff')", name="audience"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(8))
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON text
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuthToken(Base):
    """A login link, browser session or API token, stored only as its keyed hash.

    ``kind``: ``login`` (a login link: short-lived, exchanged once, then
    ``used_at`` is set), ``session`` (a browser session made by an exchange:
    idle timeout ``idle_seconds`` after ``last_seen_at``, absolute end
    ``expires_at``, ``parent_id`` the token it was exchanged from) or
    ``api`` (a bearer token for a program; ``expires_at`` optional).
    Revoking a token revokes its descendants (``rtportal.access.sessions``).
    """

    __tablename__ = "auth_tokens"
    __table_args__ = (
        CheckConstraint("principal_kind IN ('staff', 'contact', 'bot')", name="principal_kind"),
        CheckConstraint("kind IN ('login', 'session', 'api')", name="kind"),
        Index("ix_auth_tokens_principal", "principal_kind", "principal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="api", server_default="api")
    principal_kind: Mapped[str] = mapped_column(String(10))
    principal_id: Mapped[int] = mapped_column(Integer)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_tokens.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idle_seconds: Mapped[int | None] = mapped_column(Integer)
