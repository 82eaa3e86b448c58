"""The staff activity feed's index (docs/threads.md "Activity feed").

Revision ID: 0011_feed
Revises: 0010_threads
Create Date: 2026-12-06

* ``ix_events_feed``: ``(matter_id, id, kind, actor_kind, redacted)`` of the feed kinds
  (``message``, ``note``, ``phase``, ``access``, ``bot``), partial on those.
  ``rtportal.threads.feed`` probes it backward per matter (the newest row of
  each matter below the cursor) and then reads the page from it; ``kind``,
  ``actor_kind`` and ``redacted`` ride along: the type filters and the
  deleted-item check are answered by the index (an index-only scan on
  PostgreSQL), not by a read of each row.
  The predicate must stay equal to ``rtportal.threads.feed.FEED_KINDS``.
"""

from __future__ import annotations

from alembic import op

revision: str = "0011_feed"
down_revision: str | None = "0010_threads"
branch_labels: str | None = None
depends_on: str | None = None

FEED_KINDS = "('message', 'note', 'phase', 'access', 'bot')"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_events_feed ON events (matter_id, id, kind, actor_kind, redacted) "
        f"WHERE kind IN {FEED_KINDS}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_events_feed")
