"""Files: encrypted attachments of a matter (docs/files.md).

Revision ID: 0016_files
Revises: 0015_access_version
Create Date: 2026-12-06

* ``files``: one row per upload, ``pending`` while its bytes arrive (its
  ``size`` the quota it reserved) and ``stored`` once in place; ``item`` the
  item that attaches it. A matter's quota is the sum of its rows.
* ``firms`` gains ``file_max_bytes`` and ``portal_quota_bytes`` (NULL: the
  server's defaults).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0016_files"
down_revision: str | None = "0015_access_version"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(sa.Column("file_max_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("portal_quota_bytes", sa.BigInteger(), nullable=True))
    op.create_table(
        "files",
        sa.Column("id", sa.String(22), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("uploader_kind", sa.String(10), nullable=False),
        sa.Column("uploader_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("item", sa.String(140), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'stored')", name="ck_files_state"),
        sa.CheckConstraint(
            "uploader_kind IN ('staff', 'contact', 'bot')", name="ck_files_uploader_kind"
        ),
        sa.ForeignKeyConstraint(
            ["matter_id"], ["matters.id"], name="fk_files_matter_id_matters", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    op.create_index("ix_files_matter_id_item", "files", ["matter_id", "item"])


def downgrade() -> None:
    op.drop_index("ix_files_matter_id_item", "files")
    op.drop_table("files")
    with op.batch_alter_table("firms") as batch:
        batch.drop_column("portal_quota_bytes")
        batch.drop_column("file_max_bytes")
