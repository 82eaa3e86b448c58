"""The key directory (docs/keys.md): public records, signed records, wraps.

Revision ID: 0008_keys
Revises: 0007_invites
Create Date: 2026-12-06

* New: ``key_roots`` (one firm root public key per firm, set once),
  ``key_certs``, ``key_revocation_lists`` and ``key_escrow`` (versioned:
  the primary key is the compare-and-set), ``key_client_revocations``,
  ``key_manifests`` (primary key (matter, epoch): the chain's
  compare-and-set), ``key_heads`` (one per matter) and ``key_wraps``.
* ``invites`` gains ``delivery``: ``portal`` (the portal sends the link)
  or ``own_mail`` (the staff member's own mail client; the portal sends
  nothing).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0008_keys"
down_revision: str | None = "0007_invites"
branch_labels: str | None = None
depends_on: str | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "key_roots",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_roots", "firm_id", "firms", "CASCADE"),
        _fk("key_roots", "created_by", "staff_users", "SET NULL"),
        sa.PrimaryKeyConstraint("firm_id", name="pk_key_roots"),
    )
    op.create_table(
        "key_certs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("kid", sa.LargeBinary(16), nullable=False),
        sa.Column("role", sa.Integer(), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False, server_default=""),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        _fk("key_certs", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_key_certs"),
        sa.UniqueConstraint(
            "firm_id",
            "principal",
            "kid",
            "serial",
            name="uq_key_certs_firm_id_principal_kid_serial",
        ),
    )
    op.create_table(
        "key_revocation_lists",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_revocation_lists", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("firm_id", "version", name="pk_key_revocation_lists"),
    )
    op.create_table(
        "key_client_revocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("kid", sa.LargeBinary(16), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_client_revocations", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_key_client_revocations"),
        sa.UniqueConstraint(
            "firm_id", "principal", "kid", name="uq_key_client_revocations_firm_id_principal_kid"
        ),
    )
    op.create_table(
        "key_escrow",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_escrow", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("firm_id", "version", name="pk_key_escrow"),
    )
    op.create_table(
        "key_manifests",
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_manifests", "matter_id", "matters", "CASCADE"),
        sa.PrimaryKeyConstraint("matter_id", "epoch", name="pk_key_manifests"),
    )
    op.create_table(
        "key_heads",
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("key_heads", "matter_id", "matters", "CASCADE"),
        sa.PrimaryKeyConstraint("matter_id", name="pk_key_heads"),
    )
    op.create_table(
        "key_wraps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("key_wraps", "firm_id", "firms", "CASCADE"),
        _fk("key_wraps", "matter_id", "matters", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_key_wraps"),
    )
    op.create_index("ix_key_wraps_matter_recipient", "key_wraps", ["matter_id", "recipient"])
    op.create_index("ix_key_wraps_firm_recipient", "key_wraps", ["firm_id", "recipient"])
    with op.batch_alter_table("invites") as batch:
        batch.add_column(
            sa.Column("delivery", sa.String(10), nullable=False, server_default="portal")
        )
        batch.create_check_constraint("ck_invites_delivery", "delivery IN ('portal', 'own_mail')")


def downgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.drop_constraint("ck_invites_delivery", type_="check")
        batch.drop_column("delivery")
    op.drop_index("ix_key_wraps_firm_recipient", "key_wraps")
    op.drop_index("ix_key_wraps_matter_recipient", "key_wraps")
    for table in (
        "key_wraps",
        "key_heads",
        "key_manifests",
        "key_escrow",
        "key_client_revocations",
        "key_revocation_lists",
        "key_certs",
        "key_roots",
    ):
        op.drop_table(table)
