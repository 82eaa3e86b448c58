"""Portal invites: a client's membership may expire.

Revision ID: 0007_invites
Revises: 0006_access_lifecycle
Create Date: 2026-12-06

* ``matter_members`` gains ``expires_at``: the firm's access expiry
  (``firms.invite_expiry_days`` after the invite was accepted). A
  membership past it is not active (``rtportal.access.membership``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0007_invites"
down_revision: str | None = "0006_access_lifecycle"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("matter_members") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matter_members") as batch:
        batch.drop_column("expires_at")
