"""Core tables: firms, staff, contacts, matters, members, events, auth tokens.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _created() -> sa.Column[object]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "firms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_firms"),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        _created(),
        sa.CheckConstraint(
            "role IN ('org_admin', 'project_admin', 'staff', 'bot')", name="ck_staff_users_role"
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"], ["firms.id"], name="fk_staff_users_firm_id_firms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_users"),
        sa.UniqueConstraint("firm_id", "email", name="uq_staff_users_firm_id_email"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["firm_id"], ["firms.id"], name="fk_contacts_firm_id_firms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_index("ix_contacts_firm_id", "contacts", ["firm_id"])
    op.create_table(
        "matters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("responsible_staff_id", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.Integer(), server_default="0", nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["firm_id"], ["firms.id"], name="fk_matters_firm_id_firms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["responsible_staff_id"],
            ["staff_users.id"],
            name="fk_matters_responsible_staff_id_staff_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_matters"),
        sa.UniqueConstraint("reference", name="uq_matters_reference"),
    )
    op.create_index("ix_matters_firm_id", "matters", ["firm_id"])
    op.create_table(
        "matter_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("principal_kind", sa.String(10), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "principal_kind IN ('contact', 'bot')", name="ck_matter_members_principal_kind"
        ),
        sa.CheckConstraint("role IN ('client', 'bot')", name="ck_matter_members_role"),
        sa.ForeignKeyConstraint(
            ["matter_id"],
            ["matters.id"],
            name="fk_matter_members_matter_id_matters",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_matter_members"),
    )
    op.create_index("ix_matter_members_matter_id", "matter_members", ["matter_id"])
    op.create_index(
        "ix_matter_members_principal", "matter_members", ["principal_kind", "principal_id"]
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("audience", sa.String(8), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        _created(),
        sa.CheckConstraint("audience IN ('portal', 'staff')", name="ck_events_audience"),
        sa.ForeignKeyConstraint(
            ["matter_id"], ["matters.id"], name="fk_events_matter_id_matters", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("matter_id", "seq", name="uq_events_matter_id_seq"),
        sa.UniqueConstraint(
            "matter_id",
            "actor_kind",
            "actor_id",
            "client_id",
            name="uq_events_matter_id_actor_kind_actor_id_client_id",
        ),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("principal_kind", sa.String(10), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        _created(),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "principal_kind IN ('staff', 'contact', 'bot')", name="ck_auth_tokens_principal_kind"
        ),
        sa.ForeignKeyConstraint(
            ["firm_id"], ["firms.id"], name="fk_auth_tokens_firm_id_firms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auth_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_auth_tokens_token_hash"),
    )
    op.create_index("ix_auth_tokens_principal", "auth_tokens", ["principal_kind", "principal_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_auth_tokens_principal", "auth_tokens"),
        ("ix_matter_members_principal", "matter_members"),
        ("ix_matter_members_matter_id", "matter_members"),
        ("ix_matters_firm_id", "matters"),
        ("ix_contacts_firm_id", "contacts"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "auth_tokens",
        "events",
        "matter_members",
        "matters",
        "contacts",
        "staff_users",
        "firms",
    ):
        op.drop_table(table)
