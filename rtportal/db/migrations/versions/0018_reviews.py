"""The staff review inbox (docs/reviews.md).

Revision ID: 0018_reviews
Revises: 0017_documents
Create Date: 2026-12-06

* ``reviews``: one row per thing a client sent that a staff member must
  review (a message item, or a document uploaded against a request): the
  matter, opaque references to it (an item id, a thread id, a request id,
  file ids; never content: the server holds none), who sent it, the
  reviewer, the review date, and when and by whom it was reviewed. One row
  per (matter, kind, reference): a retried send never queues it twice.
* ``ix_reviews_inbox``: a reviewer's open rows by review date, partial
  (reviewed rows leave it), for the inbox's pages and its counts.
* PostgreSQL: ``rtp_queue_reviews``, the group commit's INSERT of a batch's
  client messages (run in the batch's one statement, beside the append
  function). A function so that it is planned once per connection
  (``force_generic_plan``, as ``rtp_append_events``): as a bare statement
  whose parameters are arrays, PostgreSQL re-planned it at every execution.
  Its reviewer rule is ``rtportal.reviews.choose.REVIEWER`` as of this
  revision (``tests/test_reviews_writepath.py`` checks they agree).
* ``firms`` gains ``timezone`` (an IANA name; NULL: UTC), the day a review
  date is "today" in, and ``review_staff_id`` (NULL: each matter's
  responsible staff member), the firm's preference for who reviews.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0018_reviews"
down_revision: str | None = "0017_documents"
branch_labels: str | None = None
depends_on: str | None = None


_ABLE = "s.status = 'active' AND s.role <> 'bot'"
_REVIEWER = (
    "COALESCE("  # noqa: S608 - this module's constants
    "(SELECT s.id FROM staff_users AS s WHERE s.id ="
    f" (SELECT f.review_staff_id FROM firms AS f WHERE f.id = m.firm_id) AND {_ABLE}),"
    f" (SELECT s.id FROM staff_users AS s WHERE s.id = m.responsible_staff_id AND {_ABLE}),"
    " (SELECT min(s.id) FROM staff_users AS s WHERE s.firm_id = m.firm_id"
    " AND s.role = 'org_admin' AND s.status = 'active'))"
)
_CREATE = """
CREATE OR REPLACE FUNCTION rtp_queue_reviews(
    p_firm INTEGER[], p_matter INTEGER[], p_kind TEXT[], p_ref TEXT[], p_thread TEXT[],
    p_sender INTEGER[], p_on DATE[], p_at TIMESTAMPTZ)
RETURNS INTEGER
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    n INTEGER;
BEGIN
    INSERT INTO reviews (firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id,
        review_on, created_at)
    SELECT x.firm_id, x.matter_id, x.kind, x.ref, x.thread, x.sender_id, x.reviewer_id,
        x.review_on, p_at
    FROM (SELECT v.firm_id, v.matter_id, v.kind, v.ref, v.thread, v.sender_id,
            @REVIEWER AS reviewer_id, v.review_on
        FROM unnest(p_firm, p_matter, p_kind, p_ref, p_thread, p_sender, p_on)
            AS v(firm_id, matter_id, kind, ref, thread, sender_id, review_on)
        JOIN matters AS m ON m.id = v.matter_id
        OFFSET 0) AS x
    WHERE x.reviewer_id IS NOT NULL
    ON CONFLICT (matter_id, kind, ref) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$
""".replace("@REVIEWER", _REVIEWER)
_DROP = (
    "DROP FUNCTION IF EXISTS rtp_queue_reviews(INTEGER[], INTEGER[], TEXT[], TEXT[], TEXT[],"
    " INTEGER[], DATE[], TIMESTAMPTZ)"
)


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        # No foreign key: on SQLite adding one rebuilds ``firms``, which drops its
        # triggers (0015's access_version). The id is checked when it is set, and
        # the reviewer rule skips an id that no longer names an active staff member.
        batch.add_column(sa.Column("review_staff_id", sa.Integer(), nullable=True))
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_DROP)
    op.drop_index("ix_reviews_inbox", "reviews")
    op.drop_table("reviews")
    # Not in a batch: on SQLite that rebuilds ``firms`` and drops its triggers (0015's
    # access_version); SQLite 3.35+ drops a column in place, as PostgreSQL does.
    op.drop_column("firms", "review_staff_id")
    op.drop_column("firms", "timezone")
