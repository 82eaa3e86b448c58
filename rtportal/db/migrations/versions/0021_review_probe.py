"""PostgreSQL: ``rtp_queue_reviews`` finds the message it queues by its key alone.

Revision ID: 0021_review_probe
Revises: 0020_document_file_events
Create Date: 2026-12-07

0019's function queues a review only where the sender's ``message`` event
with the send's ``client_id`` is in the matter: meant as one probe of the
idempotency key's index (``uq_events_matter_id_actor_kind_actor_id_client_id``).
But its ``e.kind = 'message'`` also satisfies the predicate of the feed's
partial index (``ix_events_feed``: matter, id, kind, actor), and with
statistics older than the table's growth (a busy new matter before autovacuum
analyses ``events``; the function's generic plan, kept for the connection)
PostgreSQL probed that one instead: every message the sender had written in
the matter, read per row. In the rooms benchmark a batch of 20 sends took
20-40 ms in PostgreSQL and deliveries fell seconds behind at 12,800/s.

Here the kind is compared as ``e.kind || ''``, which implies no index's
predicate, so the idempotency key's index is the only one that answers the
probe; and the function runs with ``enable_seqscan = off``, so a plan made
while the tables were small is not a scan of them once they are not. The rest
is 0019's function. SQLite's statement (``rtportal.reviews.enqueue``) already
probes the key's index (its plan is tested); nothing here for SQLite.
"""

from __future__ import annotations

from alembic import op

from rtportal.db.migrations import revision_module

revision: str = "0021_review_probe"
down_revision: str | None = "0020_document_file_events"
branch_labels: str | None = None
depends_on: str | None = None

# 0019's condition on the log, and what replaces it (tests/test_review_probe.py
# explains the new one and finds it in the installed function).
_OLD = "AND e.client_id = v.client_id AND e.kind = 'message')"
PROBE = "AND e.client_id = v.client_id AND (e.kind || '') = 'message')"
_OLD_SETTINGS = "SET plan_cache_mode = force_generic_plan\n"
_SETTINGS = "SET plan_cache_mode = force_generic_plan\nSET enable_seqscan = off\n"


def _create() -> str:
    text = str(revision_module("0019_reviews_written.py")._create())
    for old, new in ((_OLD, PROBE), (_OLD_SETTINGS, _SETTINGS)):
        assert text.count(old) == 1, old  # 0019's text as it is
        text = text.replace(old, new)
    return text


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_create())  # CREATE OR REPLACE: the same signature as 0019's


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # CREATE OR REPLACE assigns every property it does not keep (owner,
        # rights) from the command: 0019's settings come back with its text.
        op.execute(revision_module("0019_reviews_written.py")._create())
