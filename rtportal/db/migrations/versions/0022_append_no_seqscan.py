"""PostgreSQL: the append functions do not scan ``matters`` on a plan made while it was small.

Revision ID: 0022_append_no_seqscan
Revises: 0021_review_probe
Create Date: 2026-12-07

``rtp_append_events``, ``rtp_append_fresh`` (0002-0004) and
``rtp_append_guarded`` (0015) run on generic plans, made once per
connection. Made while ``matters`` had a handful of rows, each of their
statements that reads it by the batch's ids scanned it: the ordered row
lock (``id = ANY(p_matter)``), ``heads``' UPDATE (a hash join over the
whole table) and the guard's version check. As ``matters`` grew, every
batch read every matter, three times, until ``rtportal.db`` re-planned the
connection (``REPLAN_SECONDS``, a minute) or an ANALYZE of the table did.
Each of these statements reads ``matters`` only by primary key, and
``events`` only by its unique keys: the functions now run with
``enable_seqscan = off`` (as 0021's ``rtp_queue_reviews``), so whatever the
table's size when the plan was made, they probe ``pk_matters``.
``tests/test_pg_plans.py`` reads the plans (``auto_explain``).

``ALTER FUNCTION ... SET``: the functions' text is unchanged (a downgrade
resets the setting). SQLite has no server side: nothing here.
"""

from __future__ import annotations

from alembic import op

revision: str = "0022_append_no_seqscan"
down_revision: str | None = "0021_review_probe"
branch_labels: str | None = None
depends_on: str | None = None

_ARRAYS = (
    "INTEGER[], INTEGER[], TEXT[], TEXT[], TEXT[], INTEGER[], TEXT[], TEXT[], BYTEA[], TEXT[],"
    " TIMESTAMPTZ"
)
FUNCTIONS = (
    f"rtp_append_events({_ARRAYS})",
    f"rtp_append_fresh({_ARRAYS})",
    f"rtp_append_guarded({_ARRAYS}, BOOLEAN, INTEGER[], INTEGER[])",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in FUNCTIONS:
            op.execute(f"ALTER FUNCTION {function} SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in FUNCTIONS:
            op.execute(f"ALTER FUNCTION {function} RESET enable_seqscan")
