"""The staff review inbox (docs/reviews.md).

Revision ID: 0018_reviews
Revises: 0016_files (re-chained after 0017_documents when the document checklist lands)
Create Date: 2026-12-06

* ``reviews``: one row per thing a client sent that a staff member must
  review (a message item, or a document uploaded against a request): the
  matter, opaque references to it (an item id, a thread id, a request id,
  file ids; never content: the server holds none), who sent it, the
  reviewer, the review date, and when and by whom it was reviewed. One row
  per (matter, kind, reference): a retried send never queues it twice.
* ``ix_reviews_inbox``: a reviewer's open rows by review date, partial
  (reviewed rows leave it), for the inbox's pages and its counts.
* ``firms`` gains ``timezone`` (an IANA name; NULL: UTC), the day a review
  date is "today" in, and ``review_staff_id`` (NULL: each matter's
  responsible staff member), the firm's preference for who reviews.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0018_reviews"
down_revision: str | None = "0016_files"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("review_staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_firms_review_staff_id_staff_users",
            "staff_users",
            ["review_staff_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("ref", sa.String(140), nullable=False),
        sa.Column("thread", sa.String(64), nullable=True),
        sa.Column("request", sa.String(64), nullable=True),
        sa.Column("files", sa.Text(), nullable=True),
        sa.Column("sender_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('message', 'document')", name="ck_reviews_kind"),
        sa.ForeignKeyConstraint(
            ["matter_id"], ["matters.id"], name="fk_reviews_matter_id_matters", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["staff_users.id"],
            name="fk_reviews_reviewer_id_staff_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.UniqueConstraint("matter_id", "kind", "ref", name="uq_reviews_matter_id_kind_ref"),
    )
    op.create_index(
        "ix_reviews_inbox",
        "reviews",
        ["reviewer_id", "review_on", "id"],
        postgresql_where=sa.text("reviewed_at IS NULL"),
        sqlite_where=sa.text("reviewed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_inbox", "reviews")
    op.drop_table("reviews")
    with op.batch_alter_table("firms") as batch:
        batch.drop_constraint("fk_firms_review_staff_id_staff_users", type_="foreignkey")
        batch.drop_column("review_staff_id")
        batch.drop_column("timezone")
