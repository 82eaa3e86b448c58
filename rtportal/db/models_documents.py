"""SQLAlchemy 2 typed tables of the document checklist (docs/documents.md).

A firm's document types (``document_types``: label, description, whether
the firm provides it), each matter type's default checklist
(``document_defaults``), a matter's checklist (``document_items``: one row
per document asked of the client or provided by the firm, with its status),
who a request is addressed to (``document_recipients``) and the files each
item holds (``document_files``). Labels and descriptions are the firm's
configuration, plaintext like phase and step names; a rejection's reason and
the files' names and keys live only in ciphertext (an envelope in the
item's ``document`` event, the files' blobs). Created by migration 0017.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    exists,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from rtportal.db.models import Base, UTCDateTime, utcnow

__all__ = [
    "PROVIDED_STATUSES",
    "REQUEST_STATUSES",
    "DocumentDefault",
    "DocumentFile",
    "DocumentItem",
    "DocumentRecipient",
    "DocumentType",
    "client_sees_item",
]

# A document the client provides moves not_requested -> requested -> uploaded ->
# accepted, or rejected (which asks for it again); one the firm provides is
# not_shared until staff share its files, then shared.
REQUEST_STATUSES = ("not_requested", "requested", "uploaded", "accepted", "rejected")
PROVIDED_STATUSES = ("not_shared", "shared")
_STATUS_CHECK = "status IN ({})".format(
    ", ".join(f"'{s}'" for s in REQUEST_STATUSES + PROVIDED_STATUSES)
)


class DocumentType(Base):
    """One of the firm's document types: a label clients and staff see, and
    ``provided`` (a disclosure document the firm gives the client) or not
    (a document the firm asks of the client)."""

    __tablename__ = "document_types"
    __table_args__ = (UniqueConstraint("firm_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    is_disclosure: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Archived types are kept for the items that name them; no new item names one.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentDefault(Base):
    """A document type on a matter type's default checklist, in order, and the
    client step (of that matter type) it must be in before, if any."""

    __tablename__ = "document_defaults"
    __table_args__ = (UniqueConstraint("matter_type_id", "document_type_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_type_id: Mapped[int] = mapped_column(ForeignKey("matter_types.id", ondelete="CASCADE"))
    document_type_id: Mapped[int] = mapped_column(
        ForeignKey("document_types.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    blocks_step_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_steps.id", ondelete="SET NULL")
    )


class DocumentItem(Base):
    """One document of a matter's checklist.

    ``ref`` is its public id (16 random bytes, base64url): it tells nobody how
    many items exist. ``thread`` is the id of the item's thread for questions
    (16 random bytes too: a thread name is an oracle for whoever can guess it,
    docs/threads.md). ``round`` counts the client's uploads (a rejection asks
    for a new round).
    """

    __tablename__ = "document_items"
    __table_args__ = (
        CheckConstraint(_STATUS_CHECK, name="status"),
        UniqueConstraint("ref"),
        UniqueConstraint("matter_id", "thread"),
        Index("ix_document_items_matter_id", "matter_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(22))
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    document_type_id: Mapped[int] = mapped_column(ForeignKey("document_types.id"))
    provided: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    status: Mapped[str] = mapped_column(String(16))
    thread: Mapped[str] = mapped_column(String(22))
    blocks_step_id: Mapped[int | None] = mapped_column(
        ForeignKey("timeline_steps.id", ondelete="SET NULL")
    )
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[str] = mapped_column(String(64))  # rtp1 id (rtportal.keys.ids)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    requested_by: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64))
    # The last rejection's reason: an rtp1 envelope (ciphertext) from the staff
    # browser, bound to the item's thread; the server never reads it.
    reason_blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class DocumentRecipient(Base):
    """A client a request is addressed to (a provided document has none: every
    client member of the matter sees it)."""

    __tablename__ = "document_recipients"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("document_items.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class DocumentFile(Base):
    """A file an item holds (one item per file: the file's ``item`` says so too),
    with the upload round it came in."""

    __tablename__ = "document_files"
    __table_args__ = (Index("ix_document_files_item_id", "item_id"),)

    file_id: Mapped[str] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("document_items.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The seq of the upload's or share's event, whose envelope names the file (NULL:
    # added before migration 0020).
    event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


def client_sees_item(contact_id: int, see_applicants: bool) -> ColumnElement[bool]:
    """The checklist items a client member of the matter sees, as SQL: the one
    spelling of the rule (the checklist, downloads of an item's files, the
    timeline's blockers). A shared document the firm provides: every client
    member. A request once requested: those it is addressed to, and every
    client member whose membership sees the other applicants (the thread rule,
    docs/threads.md). Never an item not yet requested or shared."""
    addressed = exists(
        select(DocumentRecipient.item_id).where(
            DocumentRecipient.item_id == DocumentItem.id,
            DocumentRecipient.contact_id == contact_id,
        )
    )
    return or_(
        and_(DocumentItem.provided.is_(True), DocumentItem.status == "shared"),
        and_(
            DocumentItem.provided.is_(False),
            DocumentItem.status != "not_requested",
            true() if see_applicants else addressed,
        ),
    )
