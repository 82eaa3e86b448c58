"""Key handovers: a client's fresh key signed over by its invite key (docs/keys.md).

Revision ID: 0009_key_handovers
Revises: 0008_keys
Create Date: 2026-12-06

* New: ``key_handovers`` (append-only): the ``RTKX`` record a client's
  invite key signed for the fresh identity it registered after a portal
  delivered invite, with the fresh public keys; staff confirm its 6-digit
  code by phone and certify the fresh key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0009_key_handovers"
down_revision: str | None = "0008_keys"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "key_handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("old_kid", sa.LargeBinary(16), nullable=False),
        sa.Column("new_kid", sa.LargeBinary(16), nullable=False),
        sa.Column("public_keys", sa.LargeBinary(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name="fk_key_handovers_firm_id_firms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_key_handovers"),
    )
    op.create_index("ix_key_handovers_firm_principal", "key_handovers", ["firm_id", "principal"])


def downgrade() -> None:
    op.drop_index("ix_key_handovers_firm_principal", "key_handovers")
    op.drop_table("key_handovers")
