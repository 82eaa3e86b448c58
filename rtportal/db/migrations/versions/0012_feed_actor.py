"""The feed's index carries the author's id (docs/threads.md "Activity feed").

Revision ID: 0012_feed_actor
Revises: 0011_feed
Create Date: 2026-12-06

* ``ix_events_feed`` becomes ``(matter_id, id, kind, actor_kind, actor_id,
  redacted)`` over the feed kinds (same predicate). Why: the ``unread=1``
  filter skips the reader's own items; with ``actor_id`` in the index that
  test is answered while walking the index (an index-only scan on
  PostgreSQL), and only other people's items are read from the table to
  check the reader's mark in their thread. The predicate must stay equal to
  ``rtportal.db.models_threads.FEED_KINDS``.
"""

from __future__ import annotations

from alembic import op

revision: str = "0012_feed_actor"
down_revision: str | None = "0011_feed"
branch_labels: str | None = None
depends_on: str | None = None

FEED_KINDS = "('message', 'note', 'phase', 'access', 'bot')"


def _create(columns: str) -> None:
    op.execute(f"CREATE INDEX ix_events_feed ON events ({columns}) WHERE kind IN {FEED_KINDS}")


def upgrade() -> None:
    op.execute("DROP INDEX ix_events_feed")
    _create("matter_id, id, kind, actor_kind, actor_id, redacted")


def downgrade() -> None:
    op.execute("DROP INDEX ix_events_feed")
    _create("matter_id, id, kind, actor_kind, redacted")
