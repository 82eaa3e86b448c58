"""Threads, tags and the phase timeline (docs/threads.md).

Revision ID: 0010_threads
Revises: 0009_key_handovers
Create Date: 2026-12-06

* ``ix_events_thread``: an expression index on ``(matter_id, payload.thread,
  seq)`` of the events that are items or act on one (``message``, ``note``,
  ``edit``, ``delete``, ``tag``), partial on those kinds. An item is the
  event that made it; this index is what thread pages and unread counts
  read. The expression is spelled once per dialect in
  ``rtportal.threads.sql`` and must match it.
* ``events.redacted``: a deleted item's events, blob erased.
* New: ``read_marks``, ``tags``, ``item_tags``, ``matter_types``,
  ``timeline_steps``, ``phases``.
* ``firms`` gains ``show_timeline`` and ``hide_staff_receipts``;
  ``matters`` gains ``matter_type_id`` and ``phase_id``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0010_threads"
down_revision: str | None = "0009_key_handovers"
branch_labels: str | None = None
depends_on: str | None = None

ITEM_KINDS = "('message', 'note', 'edit', 'delete', 'tag')"


def _thread_expr(dialect: str) -> str:
    # Keep equal to rtportal.threads.sql.THREAD_EXPR.
    if dialect == "postgresql":
        return "((payload::jsonb) ->> 'thread')"
    return "json_extract(payload, '$.thread')"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=f"fk_{table}_{column}_{target}",
        ondelete=ondelete,
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("redacted", sa.Boolean(), server_default="0", nullable=False))
    op.execute(
        f"CREATE INDEX ix_events_thread ON events (matter_id, {_thread_expr(dialect)}, seq) "
        f"WHERE kind IN {ITEM_KINDS}"
    )
    op.create_table(
        "read_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("thread", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("read_marks", "matter_id", "matters", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_read_marks"),
        sa.UniqueConstraint(
            "matter_id", "reader", "thread", name="uq_read_marks_matter_id_reader_thread"
        ),
    )
    op.create_index("ix_read_marks_reader", "read_marks", ["reader"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("name_blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        _fk("tags", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("firm_id", "tag", name="uq_tags_firm_id_tag"),
    )
    op.create_table(
        "item_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(140), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        _fk("item_tags", "matter_id", "matters", "CASCADE"),
        _fk("item_tags", "tag_id", "tags", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_item_tags"),
        sa.UniqueConstraint(
            "matter_id", "item", "tag_id", name="uq_item_tags_matter_id_item_tag_id"
        ),
    )
    op.create_index("ix_item_tags_tag", "item_tags", ["tag_id", "matter_id"])
    op.create_table(
        "matter_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("matter_types", "firm_id", "firms", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_matter_types"),
        sa.UniqueConstraint("firm_id", "name", name="uq_matter_types_firm_id_name"),
    )
    op.create_table(
        "timeline_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_type_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        _fk("timeline_steps", "matter_type_id", "matter_types", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_timeline_steps"),
        sa.UniqueConstraint(
            "matter_type_id", "position", name="uq_timeline_steps_matter_type_id_position"
        ),
    )
    op.create_table(
        "phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matter_type_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=True),
        _fk("phases", "matter_type_id", "matter_types", "CASCADE"),
        _fk("phases", "step_id", "timeline_steps", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_phases"),
        sa.UniqueConstraint("matter_type_id", "position", name="uq_phases_matter_type_id_position"),
    )
    with op.batch_alter_table("firms") as batch:
        batch.add_column(
            sa.Column("show_timeline", sa.Boolean(), server_default="1", nullable=False)
        )
        batch.add_column(
            sa.Column("hide_staff_receipts", sa.Boolean(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("matters") as batch:
        batch.add_column(sa.Column("matter_type_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("phase_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_matters_matter_type_id_matter_types",
            "matter_types",
            ["matter_type_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            "fk_matters_phase_id_phases", "phases", ["phase_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("matters") as batch:
        batch.drop_constraint("fk_matters_phase_id_phases", type_="foreignkey")
        batch.drop_constraint("fk_matters_matter_type_id_matter_types", type_="foreignkey")
        batch.drop_column("phase_id")
        batch.drop_column("matter_type_id")
    with op.batch_alter_table("firms") as batch:
        batch.drop_column("hide_staff_receipts")
        batch.drop_column("show_timeline")
    op.drop_table("phases")
    op.drop_table("timeline_steps")
    op.drop_table("matter_types")
    op.drop_index("ix_item_tags_tag", "item_tags")
    op.drop_table("item_tags")
    op.drop_table("tags")
    op.drop_index("ix_read_marks_reader", "read_marks")
    op.drop_table("read_marks")
    op.execute("DROP INDEX ix_events_thread")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("redacted")
