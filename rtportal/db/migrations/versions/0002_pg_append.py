"""PostgreSQL: ``rtp_append_events``, a group-commit batch in one statement.

Revision ID: 0002_pg_append
Revises: 0001_core
Create Date: 2026-12-05

Why a function: a batch written as BEGIN, the ordered row locks, the write
statement and COMMIT is four round trips, and SQLAlchemy's transaction
machinery around them; called on its own (autocommit), this function is one
round trip and one implicit transaction, with the same guarantees (see
``rtportal.events.log``'s write path). SQLite has no server side: nothing here.
"""

from __future__ import annotations

from alembic import op

revision: str = "0002_pg_append"
down_revision: str | None = "0001_core"
branch_labels: str | None = None
depends_on: str | None = None

# Generic plans (``plan_cache_mode``): with the default, PostgreSQL plans
# the statement below afresh on every call (its generic plan's estimate for
# ``unnest`` of a parameter looks worse than the custom plans), which costs
# about half of the function's CPU for a small batch. A batch of one takes
# plain statements instead, cheaper still.
#
# Statement by statement:
# 1. Lock the matters' rows in ascending id order: two writers (workers,
#    or any other transaction) of overlapping matters queue, never deadlock.
# 2. One statement does the rest. In READ COMMITTED every statement of a
#    (volatile) PL/pgSQL function takes a new snapshot, so this one, taken
#    once the locks are held, sees whatever a writer that held them
#    committed: ``old`` finds the stored events among the items'
#    idempotency keys; the other items (``fresh``) are numbered per matter
#    (``k`` of ``n``, in item order); ``heads`` adds ``n`` to each matter's
#    ``last_seq``; the insert gives item ``k`` the seq ``head - n + k``.
#    Returned: the ``old`` rows and the new heads (Python derives the same
#    seqs). A matter that no longer exists has no head: its items are
#    "not found". Any error aborts the statement's implicit transaction:
#    nothing is written, no seq is used.
_CREATE = """
CREATE OR REPLACE FUNCTION rtp_append_events(
    p_idx INTEGER[], p_matter INTEGER[], p_kind TEXT[], p_audience TEXT[],
    p_actor_kind TEXT[], p_actor_id INTEGER[], p_actor_name TEXT[], p_payload TEXT[],
    p_blob BYTEA[], p_client_id TEXT[], p_at TIMESTAMPTZ)
RETURNS TABLE (o_src TEXT, o_idx INTEGER, o_seq INTEGER, o_kind TEXT, o_audience TEXT,
    o_actor_name TEXT, o_payload TEXT, o_blob BYTEA, o_created_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_head INTEGER;
    v_id INTEGER;
BEGIN
    IF cardinality(p_idx) = 1 THEN
        -- A batch of one (light load): plain statements, cheaper than the CTE.
        -- The UPDATE takes the row lock and the next seq; a concurrent retry
        -- of the same key waits for it, then meets the committed row.
        UPDATE matters SET last_seq = last_seq + 1 WHERE id = p_matter[1]
            RETURNING last_seq INTO v_head;
        IF v_head IS NULL THEN
            RETURN;  -- the matter is gone: "not found"
        END IF;
        INSERT INTO events (matter_id, seq, kind, audience, actor_kind, actor_id, actor_name,
            payload, blob, client_id, created_at)
        VALUES (p_matter[1], v_head, p_kind[1], p_audience[1], p_actor_kind[1], p_actor_id[1],
            p_actor_name[1], p_payload[1], p_blob[1], p_client_id[1], p_at)
        ON CONFLICT (matter_id, actor_kind, actor_id, client_id) DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN QUERY SELECT 'head'::TEXT, p_matter[1], v_head, NULL::TEXT, NULL::TEXT,
                NULL::TEXT, NULL::TEXT, NULL::BYTEA, NULL::TIMESTAMPTZ;
            RETURN;
        END IF;
        -- A retry of a stored event: give the seq back (no gap), return the row.
        UPDATE matters SET last_seq = last_seq - 1 WHERE id = p_matter[1];
        RETURN QUERY SELECT 'old'::TEXT, p_idx[1], e.seq, e.kind::TEXT, e.audience::TEXT,
            e.actor_name::TEXT, e.payload, e.blob, e.created_at
            FROM events AS e WHERE e.matter_id = p_matter[1] AND e.actor_kind = p_actor_kind[1]
            AND e.actor_id = p_actor_id[1] AND e.client_id = p_client_id[1];
        RETURN;
    END IF;
    PERFORM 1 FROM matters WHERE id = ANY(p_matter) ORDER BY id FOR UPDATE;
    RETURN QUERY
    WITH r AS (
        SELECT * FROM unnest(p_idx, p_matter, p_kind, p_audience, p_actor_kind, p_actor_id,
            p_actor_name, p_payload, p_blob, p_client_id)
        AS r(idx, matter_id, kind, audience, actor_kind, actor_id, actor_name, payload, blob,
            client_id)),
    old AS (
        SELECT r.idx, e.seq, e.kind, e.audience, e.actor_name, e.payload, e.blob, e.created_at
        FROM r JOIN events AS e ON e.matter_id = r.matter_id AND e.actor_kind = r.actor_kind
            AND e.actor_id = r.actor_id AND e.client_id = r.client_id),
    fresh AS (
        SELECT r.*, row_number() OVER (PARTITION BY r.matter_id ORDER BY r.idx) AS k,
            count(*) OVER (PARTITION BY r.matter_id) AS n
        FROM r WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.idx = r.idx)),
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
    SELECT 'old'::TEXT, old.idx, old.seq, old.kind::TEXT, old.audience::TEXT,
        old.actor_name::TEXT, old.payload, old.blob, old.created_at FROM old
    UNION ALL
    SELECT 'head'::TEXT, heads.id, heads.last_seq, NULL::TEXT, NULL::TEXT, NULL::TEXT,
        NULL::TEXT, NULL::BYTEA, NULL::TIMESTAMPTZ FROM heads;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS rtp_append_events(INTEGER[], INTEGER[], TEXT[], TEXT[],"
            " TEXT[], INTEGER[], TEXT[], TEXT[], BYTEA[], TEXT[], TIMESTAMPTZ)"
        )
