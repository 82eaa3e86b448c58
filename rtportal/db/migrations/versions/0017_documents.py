"""The document checklist (docs/documents.md).

Revision ID: 0017_documents
Revises: 0016_files
Create Date: 2026-12-06

* ``document_types``: a firm's document types (label, description,
  ``is_disclosure``: the firm provides it).
* ``document_defaults``: a matter type's default checklist, in order, each
  with the client step it blocks (or none).
* ``document_items``: a matter's checklist, one row per document with its
  status, public ``ref`` and question thread (both random);
  ``document_recipients``: the clients a request is addressed to;
  ``document_files``: the files an item holds, per upload round.
* ``firms`` gains ``required_disclosures`` (a JSON list of labels).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0017_documents"
down_revision: str | None = "0016_files"
branch_labels: str | None = None
depends_on: str | None = None

# Keep equal to rtportal.db.models_documents.
_STATUSES = (
    "not_requested",
    "requested",
    "uploaded",
    "accepted",
    "rejected",
    "not_shared",
    "shared",
)


def _fk(table: str, column: str, target: str, ondelete: str | None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(
            sa.Column("required_disclosures", sa.Text(), server_default="[]", nullable=False)
        )
    op.create_table(
        "document_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("is_disclosure", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("document_types", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_document_types"),
        sa.UniqueConstraint("firm_id", "label", name="uq_document_types_firm_id_label"),
    )
    op.create_table(
        "document_defaults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_type_id", sa.Integer(), nullable=False),
        sa.Column("document_type_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("blocks_step_id", sa.Integer(), nullable=True),
        _fk("document_defaults", "matter_type_id", "matter_types", "CASCADE"),
        _fk("document_defaults", "document_type_id", "document_types", "CASCADE"),
        _fk("document_defaults", "blocks_step_id", "timeline_steps", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_document_defaults"),
        sa.UniqueConstraint(
            "matter_type_id",
            "document_type_id",
            name="uq_document_defaults_matter_type_id_document_type_id",
        ),
    )
    statuses = ", ".join(f"'{s}'" for s in _STATUSES)
    op.create_table(
        "document_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(22), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("document_type_id", sa.Integer(), nullable=False),
        sa.Column("provided", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("thread", sa.String(22), nullable=False),
        sa.Column("blocks_step_id", sa.Integer(), nullable=True),
        sa.Column("round", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=True),
        sa.Column("uploaded_at", UTCDateTime(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("reason_blob", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_document_items_status"),
        _fk("document_items", "matter_id", "matters", "CASCADE"),
        _fk("document_items", "document_type_id", "document_types", None),
        _fk("document_items", "blocks_step_id", "timeline_steps", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_document_items"),
        sa.UniqueConstraint("ref", name="uq_document_items_ref"),
        sa.UniqueConstraint("matter_id", "thread", name="uq_document_items_matter_id_thread"),
    )
    op.create_index("ix_document_items_matter_id", "document_items", ["matter_id", "id"])
    op.create_table(
        "document_recipients",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        _fk("document_recipients", "item_id", "document_items", "CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "contact_id", name="pk_document_recipients"),
    )
    op.create_table(
        "document_files",
        sa.Column("file_id", sa.String(22), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        _fk("document_files", "file_id", "files", "CASCADE"),
        _fk("document_files", "item_id", "document_items", "CASCADE"),
        sa.PrimaryKeyConstraint("file_id", name="pk_document_files"),
    )
    op.create_index("ix_document_files_item_id", "document_files", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_document_files_item_id", "document_files")
    op.drop_table("document_files")
    op.drop_table("document_recipients")
    op.drop_index("ix_document_items_matter_id", "document_items")
    op.drop_table("document_items")
    op.drop_table("document_defaults")
    op.drop_table("document_types")
    with op.batch_alter_table("firms") as batch:
        batch.drop_column("required_disclosures")
