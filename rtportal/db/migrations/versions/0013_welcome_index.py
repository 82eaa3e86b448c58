"""A welcome thread's opener found by an index range (docs/threads.md "Threads").

Revision ID: 0013_welcome_index
Revises: 0012_feed_actor
Create Date: 2026-12-06

* ``ix_events_welcome``: ``(matter_id, payload.thread, seq)`` over ``kind =
  'welcome'``. Why: a welcome thread (``welcome-<n>``) has no item until the
  client replies, and its opener, the ``welcome`` event, is outside
  ``ix_events_thread`` (the item kinds). Any client can name such a thread
  in a page, a read mark or a typing frame; without this index each lookup
  walked the matter's log (30-50 ms at 200,000 events). The expression is
  ``rtportal.threads.sql``'s and the predicate its ``in_welcome_index``.
"""

from __future__ import annotations

from alembic import op

revision: str = "0013_welcome_index"
down_revision: str | None = "0012_feed_actor"
branch_labels: str | None = None
depends_on: str | None = None


def _thread_expr(dialect: str) -> str:
    # Keep equal to rtportal.threads.sql's expression (as 0010 does).
    if dialect == "postgresql":
        return "((payload::jsonb) ->> 'thread')"
    return "json_extract(payload, '$.thread')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(
        f"CREATE INDEX ix_events_welcome ON events (matter_id, {_thread_expr(dialect)}, seq) "
        "WHERE kind = 'welcome'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_events_welcome")
