"""PostgreSQL: ``rtp_queue_reviews`` finds the message it queues by its key alone.

Revision ID: 0021_review_probe
Revises: 0020_document_file_events
Create Date: 2026-12-07

0019's function queues a review only where the sender's ``message`` event
with the send's ``client_id`` is in the matter: meant as one probe of the
idempotency key's index (``uq_events_matter_id_actor_kind_actor_id_client_id``).
But PostgreSQL may turn an ``EXISTS`` into a join in either order, and the
function's generic plan is made once per connection, on the statistics of
that moment: made while ``events`` was small, it scanned ``events`` (every
client message of the database, by the key's index on ``actor_kind`` alone,
or by the feed's partial index, whose predicate ``e.kind = 'message'``
satisfies) and matched each row against the batch's sends. A batch of 100
took 475 ms in PostgreSQL with 23,000 events; in the rooms benchmark
deliveries fell seconds behind at 6,400/s with the server at 18 % CPU.

Here the probe is a scalar subquery with ``LIMIT 1``, which PostgreSQL does
not pull up into a join: it runs per send, with the send's values as its
parameters, as one probe of the key's index. The kind is compared as
``e.kind || ''``, which implies no partial index's predicate; and the
function runs with ``enable_seqscan = off``, so a plan made while the tables
were small is not a scan of them once they are not. The rest is 0019's
function. SQLite's statement (``rtportal.reviews.enqueue``) already
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
# reads the new one's plan and finds it in the installed function).
_OLD = (
    "WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.matter_id = v.matter_id\n"
    "            AND e.actor_kind = 'contact' AND e.actor_id = v.sender_id\n"
    "            AND e.client_id = v.client_id AND e.kind = 'message')\n"
)
PROBE = (
    "WHERE (SELECT 1 FROM events AS e WHERE e.matter_id = v.matter_id"
    " AND e.actor_kind = 'contact' AND e.actor_id = v.sender_id"
    " AND e.client_id = v.client_id AND (e.kind || '') = 'message' LIMIT 1) = 1\n"
)
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
