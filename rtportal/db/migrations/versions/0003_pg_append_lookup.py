"""PostgreSQL: ``rtp_append_events`` plans that do not go stale as ``events`` grows.

Revision ID: 0003_pg_append_lookup
Revises: 0002_pg_append
Create Date: 2026-12-05

The function of 0002 runs on a generic plan (``plan_cache_mode``), made once
per connection and kept until something invalidates it (an ANALYZE, a schema
change, ``DISCARD PLANS``). Made while ``events`` is small, 0002's
idempotency lookup (``old``) is a hash join over a sequential scan of
``events``; as the table grows that plan reads every row on every batch (at
100,000 events with autovacuum off, a 40-row call takes ten times as long as
on a freshly planned connection, and an overloaded server cannot catch up).
Here ``old`` looks each
item up through the unique index (a LATERAL subquery with LIMIT 1: one index
probe per item whatever the table's size when the plan was made). The rest
of the function is unchanged; ``rtportal.db`` also re-plans every pooled
connection's statements once a minute (``REPLAN_SECONDS``) for the others.
SQLite has no server side: nothing here.
"""

from __future__ import annotations

from alembic import op

from rtportal.db.migrations import revision_module

revision: str = "0003_pg_append_lookup"
down_revision: str | None = "0002_pg_append"
branch_labels: str | None = None
depends_on: str | None = None

# The function as 0002 left it, but for ``old`` (see the module docstring).
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
        FROM r CROSS JOIN LATERAL (
            SELECT x.seq, x.kind, x.audience, x.actor_name, x.payload, x.blob, x.created_at
            FROM events AS x WHERE x.matter_id = r.matter_id AND x.actor_kind = r.actor_kind
                AND x.actor_id = r.actor_id AND x.client_id = r.client_id
            LIMIT 1) AS e),
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
        op.execute(_previous())


def _previous() -> str:
    """0002's function text (a downgrade puts it back; not copied here)."""
    return str(revision_module("0002_pg_append.py")._CREATE)
