"""PostgreSQL: ``rtp_append_fresh``, a group-commit batch that skips the idempotency lookup.

Revision ID: 0004_pg_append_fresh
Revises: 0003_pg_append_lookup
Create Date: 2026-12-05

Nearly every send is new: looking each one up among the stored events
before inserting it (``rtp_append_events``'s ``old``) costs an index probe
per row that almost never finds anything, and the unique index on
(matter, actor, client_id) probes again when the row goes in. This function
numbers and inserts the batch straight away; a send that *was* stored (a
client's retry after a lost ack) makes the insert fail with a unique
violation on that index, which aborts the statement's implicit transaction
(nothing written, no seq used), and ``rtportal.events.log`` then writes the same
batch through ``rtp_append_events``, which finds it. Skipping the lookup
saves about a fifth of PostgreSQL's CPU per row of a large batch.

Same locks and guarantees as ``rtp_append_events``: the matters' rows are
locked in ascending id order before anything is read or written, seqs come
from ``matters.last_seq`` under that lock, gapless and in item order per
matter. A matter that no longer exists has no head: its items are not
written ("not found"). Only batches of two or more come here (a batch of one
takes ``rtp_append_events``' plain statements).
"""

from __future__ import annotations

from alembic import op

revision: str = "0004_pg_append_fresh"
down_revision: str | None = "0003_pg_append_lookup"
branch_labels: str | None = None
depends_on: str | None = None

_CREATE = """
CREATE OR REPLACE FUNCTION rtp_append_fresh(
    p_idx INTEGER[], p_matter INTEGER[], p_kind TEXT[], p_audience TEXT[],
    p_actor_kind TEXT[], p_actor_id INTEGER[], p_actor_name TEXT[], p_payload TEXT[],
    p_blob BYTEA[], p_client_id TEXT[], p_at TIMESTAMPTZ)
RETURNS TABLE (o_src TEXT, o_idx INTEGER, o_seq INTEGER)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
BEGIN
    PERFORM 1 FROM matters WHERE id = ANY(p_matter) ORDER BY id FOR UPDATE;
    RETURN QUERY
    WITH r AS (
        SELECT * FROM unnest(p_idx, p_matter, p_kind, p_audience, p_actor_kind, p_actor_id,
            p_actor_name, p_payload, p_blob, p_client_id)
        AS r(idx, matter_id, kind, audience, actor_kind, actor_id, actor_name, payload, blob,
            client_id)),
    fresh AS (
        SELECT r.*, row_number() OVER (PARTITION BY r.matter_id ORDER BY r.idx) AS k,
            count(*) OVER (PARTITION BY r.matter_id) AS n
        FROM r),
    heads AS (
        UPDATE matters AS m SET last_seq = m.last_seq + c.n
        FROM (SELECT DISTINCT f.matter_id, f.n FROM fresh AS f) AS c WHERE m.id = c.matter_id
        RETURNING m.id, m.last_seq),
    ins AS (
        INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,
            payload, blob, client_id, created_at)
        SELECT f.matter_id, h.last_seq - f.n + f.k, f.kind, f.audience, f.actor_kind,
            f.actor_id, f.actor_name, f.payload, f.blob, f.client_id, p_at
        FROM fresh AS f JOIN heads AS h ON h.id = f.matter_id)
    SELECT 'head'::TEXT, heads.id, heads.last_seq FROM heads;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS rtp_append_fresh(INTEGER[], INTEGER[], TEXT[], TEXT[],"
            " TEXT[], INTEGER[], TEXT[], TEXT[], BYTEA[], TEXT[], TIMESTAMPTZ)"
        )
