"""Session lifetimes: token kinds, single-use login links, idle timeout, token families.

Revision ID: 0005_session_lifetimes
Revises: 0004_pg_append_fresh
Create Date: 2026-12-06

``auth_tokens`` gains ``kind`` (``login``, ``session`` or ``api``; existing
rows become ``api``), ``parent_id`` (the token a session was exchanged
from; revoking a token revokes its descendants), ``used_at`` (a login link
is exchanged once), ``last_seen_at`` and ``idle_seconds`` (the idle
timeout of a session). Token hashes become HMAC-SHA-256 keyed with the
server secret, so every token issued before this revision no longer
matches: they are revoked here, and their holders sign in again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0005_session_lifetimes"
down_revision: str | None = "0004_pg_append_fresh"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="api"))
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("used_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("idle_seconds", sa.Integer(), nullable=True))
        batch.create_check_constraint("ck_auth_tokens_kind", "kind IN ('login', 'session', 'api')")
        batch.create_foreign_key(
            "fk_auth_tokens_parent_id_auth_tokens",
            "auth_tokens",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_auth_tokens_parent_id", ["parent_id"])
    # Hashed without the server secret: no presented token can match them again.
    op.execute("UPDATE auth_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_index("ix_auth_tokens_parent_id")
        batch.drop_constraint("fk_auth_tokens_parent_id_auth_tokens", type_="foreignkey")
        batch.drop_constraint("ck_auth_tokens_kind", type_="check")
        for column in ("idle_seconds", "last_seen_at", "used_at", "parent_id", "kind"):
            batch.drop_column(column)
