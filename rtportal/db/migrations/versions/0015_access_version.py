"""``matters.access_version``: a counter that moves whenever what a send's checks read moves.

Revision ID: 0015_access_version
Revises: 0014_portal_events
Create Date: 2026-12-06

A worker remembers what the checks of a matter's sends read (its client
members, its newest key epoch, who of them is stale, certified sender keys:
``rtportal.events.guards``), so that a batch of sends is not a read
transaction plus a write transaction. What it remembers is only as good as
the version it was read at: every send written on the strength of it
carries that version, and the write refuses the batch if the matter's
``access_version`` is no longer it (in the same transaction as the insert,
under the matter's row lock: the check and the write are one step, where
before a change committed between them went unseen).

The counter is moved by triggers, not by the code that changes the rows,
so no writer (the invite flow, removal, expiry edits, key posts, another
process's) can forget it:

* ``matter_members``: any insert or delete, and updates of the columns the
  rules read (who, role, removed, expiry, ``see_applicants``);
* ``invites``: insert, delete, updates of ``status`` (a pending invitee may
  be named by an epoch);
* ``key_manifests``: insert (a new epoch);
* ``key_certs``: updates of ``revoked_at`` move every matter of the firm;
* ``firms``: updates of ``slug`` (the envelope names the firm by it).

Rows are locked in ascending id order where a trigger moves several
matters (as the write path locks them), so a revocation and a batch append
queue rather than deadlock.

PostgreSQL: ``rtp_append_guarded`` is the group commit's append when a batch
carries versions: it locks the batch's matters, raises SQLSTATE ``RTP01``
(detail: the moved matter ids) if any version differs, which undoes the
whole statement, else runs ``rtp_append_fresh`` or ``rtp_append_events``
(0002-0004) in the same statement.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_access_version"
down_revision: str | None = "0014_portal_events"
branch_labels: str | None = None
depends_on: str | None = None

_MEMBER_COLUMNS = (
    "matter_id, principal_kind, principal_id, role, see_applicants, removed_at, expires_at"
)
_BUMP = "UPDATE matters SET access_version = access_version + 1"

# (table, name, event, the matters to move)
_SQLITE = [
    ("matter_members", "ins", "INSERT", "id = NEW.matter_id"),
    ("matter_members", "del", "DELETE", "id = OLD.matter_id"),
    (
        "matter_members",
        "upd",
        f"UPDATE OF {_MEMBER_COLUMNS}",
        "id IN (OLD.matter_id, NEW.matter_id)",
    ),
    ("invites", "ins", "INSERT", "id = NEW.matter_id"),
    ("invites", "del", "DELETE", "id = OLD.matter_id"),
    (
        "invites",
        "upd",
        "UPDATE OF status, matter_id, contact_id",
        "id IN (OLD.matter_id, NEW.matter_id)",
    ),
    ("key_manifests", "ins", "INSERT", "id = NEW.matter_id"),
    ("key_certs", "upd", "UPDATE OF revoked_at", "firm_id = NEW.firm_id"),
    ("firms", "upd", "UPDATE OF slug", "firm_id = NEW.id"),
]

_PG_FUNCTIONS = [
    """
CREATE OR REPLACE FUNCTION rtp_access_moved_matter() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE matters SET access_version = access_version + 1 WHERE id = OLD.matter_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.matter_id IS DISTINCT FROM OLD.matter_id) THEN
        UPDATE matters SET access_version = access_version + 1 WHERE id = NEW.matter_id;
    END IF;
    RETURN NULL;
END
$fn$
""",
    """
CREATE OR REPLACE FUNCTION rtp_access_moved_firm() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_firm INTEGER;
BEGIN
    -- one statement each: plpgsql prepares a field reference only when it runs it
    IF TG_TABLE_NAME = 'firms' THEN
        v_firm := NEW.id;
    ELSE
        v_firm := NEW.firm_id;
    END IF;
    -- in id order, as the write path locks matters: queue, never deadlock
    UPDATE matters SET access_version = access_version + 1 WHERE id IN (
        SELECT id FROM matters WHERE firm_id = v_firm ORDER BY id FOR UPDATE);
    RETURN NULL;
END
$fn$
""",
    """
CREATE OR REPLACE FUNCTION rtp_append_guarded(
    p_idx INTEGER[], p_matter INTEGER[], p_kind TEXT[], p_audience TEXT[],
    p_actor_kind TEXT[], p_actor_id INTEGER[], p_actor_name TEXT[], p_payload TEXT[],
    p_blob BYTEA[], p_client_id TEXT[], p_at TIMESTAMPTZ,
    p_fresh BOOLEAN, p_guard_matter INTEGER[], p_guard_version INTEGER[])
RETURNS TABLE (o_src TEXT, o_idx INTEGER, o_seq INTEGER, o_kind TEXT, o_audience TEXT,
    o_actor_name TEXT, o_payload TEXT, o_blob BYTEA, o_created_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_moved TEXT;
BEGIN
    PERFORM 1 FROM matters WHERE id = ANY(p_matter) ORDER BY id FOR UPDATE;
    SELECT string_agg(m.id::TEXT, ',') INTO v_moved
        FROM matters AS m JOIN unnest(p_guard_matter, p_guard_version) AS g(mid, ver)
        ON m.id = g.mid WHERE m.access_version <> g.ver;
    IF v_moved IS NOT NULL THEN
        -- an error, not rows: it undoes the whole statement, whatever else it
        -- writes beside this call (a companion's rows)
        RAISE EXCEPTION 'access_version moved' USING ERRCODE = 'RTP01', DETAIL = v_moved;
    END IF;
    IF p_fresh THEN
        RETURN QUERY SELECT f.o_src, f.o_idx, f.o_seq, NULL::TEXT, NULL::TEXT, NULL::TEXT,
            NULL::TEXT, NULL::BYTEA, NULL::TIMESTAMPTZ
            FROM rtp_append_fresh(p_idx, p_matter, p_kind, p_audience, p_actor_kind,
                p_actor_id, p_actor_name, p_payload, p_blob, p_client_id, p_at) AS f;
    ELSE
        RETURN QUERY SELECT * FROM rtp_append_events(p_idx, p_matter, p_kind, p_audience,
            p_actor_kind, p_actor_id, p_actor_name, p_payload, p_blob, p_client_id, p_at);
    END IF;
END
$fn$
""",
]

_PG_TRIGGERS = [
    (
        "matter_members",
        "rtp_access_moved_matter",
        f"INSERT OR DELETE OR UPDATE OF {_MEMBER_COLUMNS}",
    ),
    (
        "invites",
        "rtp_access_moved_matter",
        "INSERT OR DELETE OR UPDATE OF status, matter_id, contact_id",
    ),
    ("key_manifests", "rtp_access_moved_matter", "INSERT"),
    ("key_certs", "rtp_access_moved_firm", "UPDATE OF revoked_at"),
    ("firms", "rtp_access_moved_firm", "UPDATE OF slug"),
]


def upgrade() -> None:
    with op.batch_alter_table("matters") as batch:
        batch.add_column(
            sa.Column("access_version", sa.Integer(), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        for function in _PG_FUNCTIONS:
            op.execute(function)
        for table, function, events in _PG_TRIGGERS:
            op.execute(
                f"CREATE TRIGGER rtp_access_{table} AFTER {events} ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        return
    for table, name, event, where in _SQLITE:
        op.execute(
            f"CREATE TRIGGER rtp_access_{table}_{name} AFTER {event} ON {table}"
            f" BEGIN {_BUMP} WHERE {where}; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _, _ in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS rtp_access_{table} ON {table}")
        op.execute(
            "DROP FUNCTION IF EXISTS rtp_append_guarded(INTEGER[], INTEGER[], TEXT[], TEXT[],"
            " TEXT[], INTEGER[], TEXT[], TEXT[], BYTEA[], TEXT[], TIMESTAMPTZ, BOOLEAN,"
            " INTEGER[], INTEGER[])"
        )
        op.execute("DROP FUNCTION IF EXISTS rtp_access_moved_matter()")
        op.execute("DROP FUNCTION IF EXISTS rtp_access_moved_firm()")
    else:
        for table, name, _, _ in _SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS rtp_access_{table}_{name}")
    with op.batch_alter_table("matters") as batch:
        batch.drop_column("access_version")
