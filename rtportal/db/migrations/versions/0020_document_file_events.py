"""The event that names a document's file: ``document_files.event_seq``.

Revision ID: 0020_document_file_events
Revises: 0019_reviews_written
Create Date: 2026-12-07

The checklist hands each item's current upload envelopes out with the item
(``rtportal.documents.items.item_bodies``), so a page shows the files' names
without having loaded the upload's event from the matter's stream. Rows added
before this revision keep NULL: their names come from the stream, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0020_document_file_events"
down_revision: str | None = "0019_reviews_written"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("document_files") as batch:
        batch.add_column(sa.Column("event_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document_files") as batch:
        batch.drop_column("event_seq")
