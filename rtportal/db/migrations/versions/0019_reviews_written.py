"""PostgreSQL: ``rtp_queue_reviews`` queues a message only with its event.

Revision ID: 0019_reviews_written
Revises: 0018_reviews
Create Date: 2026-12-07

A send's idempotency key is its sender's ``client_id`` whatever the kind
(``events``' unique key): a message reusing the ``client_id`` of the
sender's earlier delete or edit is ``conflict`` and writes no event, yet
0018's function queued a review of the item it would have been (an item
that never existed, in the reviewer's inbox and count). Here it takes the
sends' ``client_id`` as one more array and queues a row only where the
sender's ``message`` event with that ``client_id`` is in the matter (one
probe of the idempotency key's index): the event the batch's statement has
just written (the function runs after the append's, in the same
transaction), or a retry's stored one (its review is there already: ``ON
CONFLICT DO NOTHING``). The reviewer rule is 0018's (``REVIEWER``).
SQLite's statement (``rtportal.reviews.enqueue``) has the same condition;
SQLite has no server side: nothing here.
"""

from __future__ import annotations

from alembic import op

from rtportal.db.migrations import revision_module

revision: str = "0019_reviews_written"
down_revision: str | None = "0018_reviews"
branch_labels: str | None = None
depends_on: str | None = None


# 0018's function, given the sends' ``client_id`` and the condition on the log.
_PARAMS = ("p_on DATE[], p_at TIMESTAMPTZ", "p_on DATE[], p_client TEXT[], p_at TIMESTAMPTZ")
_UNNEST = (
    "p_sender, p_on)\n            AS v(firm_id, matter_id, kind, ref, thread, sender_id,"
    " review_on)",
    "p_sender, p_on, p_client)\n            AS v(firm_id, matter_id, kind, ref, thread,"
    " sender_id, review_on, client_id)",
)
_JOIN = (
    "JOIN matters AS m ON m.id = v.matter_id\n",
    "JOIN matters AS m ON m.id = v.matter_id\n"
    "        WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.matter_id = v.matter_id\n"
    "            AND e.actor_kind = 'contact' AND e.actor_id = v.sender_id\n"
    "            AND e.client_id = v.client_id AND e.kind = 'message')\n",
)


def _create() -> str:
    text = str(revision_module("0018_reviews.py")._CREATE)
    for old, new in (_PARAMS, _UNNEST, _JOIN):
        assert text.count(old) == 1, old  # 0018's text as it is
        text = text.replace(old, new)
    return text


_DROP = (
    "DROP FUNCTION IF EXISTS rtp_queue_reviews(INTEGER[], INTEGER[], TEXT[], TEXT[], TEXT[],"
    " INTEGER[], DATE[], TEXT[], TIMESTAMPTZ)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(revision_module("0018_reviews.py")._DROP)
        op.execute(_create())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_DROP)
        op.execute(revision_module("0018_reviews.py")._CREATE)
