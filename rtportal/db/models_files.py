"""SQLAlchemy 2 typed table of files: encrypted attachments a matter holds (docs/files.md).

A row is made when an upload reserves room (``state = 'pending'``, ``size``
the bytes reserved) and becomes ``stored`` (``size`` the ciphertext's exact
length) once the blob is in place; a refused or broken upload deletes it.
So the sum of a matter's rows is what its quota counts, uploads in flight
included, and nothing else needs to be kept in step with it. ``item`` is
the item (``<sender rtp1 id>.<client id>``) that attaches the file, set in
the transaction that writes that item. Created by migration 0016.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rtportal.db.models import Base, UTCDateTime, utcnow

__all__ = ["StoredFile"]


class StoredFile(Base):
    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'stored')", name="state"),
        CheckConstraint("uploader_kind IN ('staff', 'contact', 'bot')", name="uploader_kind"),
        # An item's files (attach's claim, a delete's clean-up, later a request's documents).
        Index("ix_files_matter_id_item", "matter_id", "item"),
    )

    # 22 characters of base64url (16 random bytes): never a count, never guessable.
    id: Mapped[str] = mapped_column(String(22), primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    uploader_kind: Mapped[str] = mapped_column(String(10))
    uploader_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))
    # Ciphertext bytes: reserved while pending, exact once stored.
    size: Mapped[int] = mapped_column(BigInteger)
    item: Mapped[str | None] = mapped_column(String(140))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
