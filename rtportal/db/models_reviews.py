"""SQLAlchemy 2 typed table of the staff review inbox (docs/reviews.md).

One row per thing a client sent that a staff member must review: a
``message`` item (``ref`` its item id, ``thread`` its thread) or a
``document`` uploaded against a request (``ref`` the upload's reference,
``request`` the request's id, ``files`` its file ids as a JSON list). Every
reference is opaque: the server never holds what was sent, only that it
was. Open while ``reviewed_at`` is NULL. Created by migration 0018.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rtportal.db.models import Base, UTCDateTime, utcnow

__all__ = ["Review"]


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("kind IN ('message', 'document')", name="kind"),
        # A retried send (or upload) never queues its thing twice.
        UniqueConstraint("matter_id", "kind", "ref"),
        # A reviewer's open rows by date: the inbox's pages and counts; reviewed rows leave it.
        Index(
            "ix_reviews_inbox",
            "reviewer_id",
            "review_on",
            "id",
            postgresql_where=text("reviewed_at IS NULL"),
            sqlite_where=text("reviewed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The matter's firm, kept for scoping (a firm's rows go with its matters: no
    # foreign key of its own, one check fewer per row on the write path).
    firm_id: Mapped[int] = mapped_column(Integer)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    ref: Mapped[str] = mapped_column(String(140))
    thread: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[str | None] = mapped_column(Text)  # a JSON list of file ids
    sender_id: Mapped[int | None] = mapped_column(Integer)  # the contact who sent it
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    review_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[int | None] = mapped_column(Integer)
