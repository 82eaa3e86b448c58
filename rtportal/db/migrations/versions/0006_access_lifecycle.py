"""Access lifecycle: credentials, invites, contacts' addresses, templates, outbox, audit log.

Revision ID: 0006_access_lifecycle
Revises: 0005_session_lifetimes
Create Date: 2026-12-06

* ``firms`` gains ``slug`` (existing firms get ``firm-<id>``),
  ``require_totp`` and ``invite_expiry_days``.
* ``staff_users``: the role ``project_admin`` is now ``matter_admin``;
  ``status`` (``invited``, ``active``, ``disabled``).
* ``contacts``: the single ``email`` / ``phone`` columns move to
  ``contact_emails`` / ``contact_phones`` (several each; a phone may be
  marked personal mobile, which existing numbers are not).
* ``matters`` gains ``matter_type``; ``matter_members`` ``see_applicants``;
  ``matter_applicants`` links contacts to matters.
* ``auth_tokens.kind`` admits ``setup`` (a staff invitation link).
* New: ``credentials``, ``recovery_codes``, ``invites``,
  ``message_templates``, ``outbox``, ``audit_log``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rtportal.db.models import UTCDateTime

revision: str = "0006_access_lifecycle"
down_revision: str | None = "0005_session_lifetimes"
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _fk(column: str, table: str, ondelete: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=f"fk_{name}_{column}_{table}", ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("firms") as batch:
        batch.add_column(sa.Column("slug", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("require_totp", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("invite_expiry_days", sa.Integer(), nullable=True))
    op.execute("UPDATE firms SET slug = 'firm-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("firms") as batch:
        batch.alter_column("slug", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_firms_slug", ["slug"])

    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint("ck_staff_users_role", type_="check")
    op.execute("UPDATE staff_users SET role = 'matter_admin' WHERE role = 'project_admin'")
    with op.batch_alter_table("staff_users") as batch:
        batch.create_check_constraint(
            "ck_staff_users_role", "role IN ('org_admin', 'matter_admin', 'staff', 'bot')"
        )
        batch.add_column(
            sa.Column("status", sa.String(10), nullable=False, server_default="active")
        )
        batch.create_check_constraint(
            "ck_staff_users_status", "status IN ('invited', 'active', 'disabled')"
        )

    op.create_table(
        "contact_emails",
        _id(),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        _fk("contact_id", "contacts", "CASCADE", "contact_emails"),
        sa.PrimaryKeyConstraint("id", name="pk_contact_emails"),
        sa.UniqueConstraint("contact_id", "address", name="uq_contact_emails_contact_id_address"),
    )
    op.create_index("ix_contact_emails_contact_id", "contact_emails", ["contact_id"])
    op.create_table(
        "contact_phones",
        _id(),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("personal_mobile", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        _fk("contact_id", "contacts", "CASCADE", "contact_phones"),
        sa.PrimaryKeyConstraint("id", name="pk_contact_phones"),
        sa.UniqueConstraint("contact_id", "number", name="uq_contact_phones_contact_id_number"),
    )
    op.create_index("ix_contact_phones_contact_id", "contact_phones", ["contact_id"])
    op.execute(
        "INSERT INTO contact_emails (contact_id, address, position) "
        "SELECT id, LOWER(email), 0 FROM contacts WHERE email IS NOT NULL"
    )
    op.execute(
        "INSERT INTO contact_phones (contact_id, number, personal_mobile, position) "
        "SELECT id, phone, false, 0 FROM contacts WHERE phone IS NOT NULL"
    )
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("email")
        batch.drop_column("phone")

    with op.batch_alter_table("matters") as batch:
        batch.add_column(sa.Column("matter_type", sa.String(64), nullable=True))
    with op.batch_alter_table("matter_members") as batch:
        batch.add_column(
            sa.Column("see_applicants", sa.Boolean(), nullable=False, server_default="1")
        )
    op.create_table(
        "matter_applicants",
        _id(),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        _fk("matter_id", "matters", "CASCADE", "matter_applicants"),
        _fk("contact_id", "contacts", "CASCADE", "matter_applicants"),
        sa.PrimaryKeyConstraint("id", name="pk_matter_applicants"),
        sa.UniqueConstraint(
            "matter_id", "contact_id", name="uq_matter_applicants_matter_id_contact_id"
        ),
    )
    op.create_index("ix_matter_applicants_contact_id", "matter_applicants", ["contact_id"])

    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_constraint("ck_auth_tokens_kind", type_="check")
        batch.create_check_constraint(
            "ck_auth_tokens_kind", "kind IN ('login', 'session', 'api', 'setup')"
        )

    op.create_table(
        "credentials",
        _id(),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("principal_kind", sa.String(10), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("kdf_salt", sa.LargeBinary(32), nullable=False),
        sa.Column("kdf_params", sa.Text(), nullable=False),
        sa.Column("verifier", sa.Text(), nullable=True),
        sa.Column("key_backup", sa.LargeBinary(), nullable=True),
        sa.Column("public_keys", sa.LargeBinary(), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_enabled_at", UTCDateTime(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("password_set_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "principal_kind IN ('staff', 'contact')", name="ck_credentials_principal_kind"
        ),
        _fk("firm_id", "firms", "CASCADE", "credentials"),
        sa.PrimaryKeyConstraint("id", name="pk_credentials"),
        sa.UniqueConstraint("firm_id", "email", name="uq_credentials_firm_id_email"),
        sa.UniqueConstraint(
            "principal_kind", "principal_id", name="uq_credentials_principal_kind_principal_id"
        ),
    )
    op.create_table(
        "recovery_codes",
        _id(),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        _fk("credential_id", "credentials", "CASCADE", "recovery_codes"),
        sa.PrimaryKeyConstraint("id", name="pk_recovery_codes"),
        sa.UniqueConstraint("code_hash", name="uq_recovery_codes_code_hash"),
    )
    op.create_index("ix_recovery_codes_credential_id", "recovery_codes", ["credential_id"])
    op.create_table(
        "invites",
        _id(),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("matter_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("see_applicants", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("link_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("link_expires_at", UTCDateTime(), nullable=True),
        sa.Column("passcode_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("passcode_expires_at", UTCDateTime(), nullable=True),
        sa.Column("passcode_tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("access_expires_at", UTCDateTime(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("resends", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("method IN ('email', 'sms', 'email_sms')", name="ck_invites_method"),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'removed', 'expired')", name="ck_invites_status"
        ),
        _fk("firm_id", "firms", "CASCADE", "invites"),
        _fk("matter_id", "matters", "CASCADE", "invites"),
        _fk("contact_id", "contacts", "CASCADE", "invites"),
        _fk("created_by", "staff_users", "SET NULL", "invites"),
        sa.PrimaryKeyConstraint("id", name="pk_invites"),
        sa.UniqueConstraint("link_hash", name="uq_invites_link_hash"),
    )
    op.create_index("ix_invites_contact_id", "invites", ["contact_id"])
    op.create_index("ix_invites_matter_contact", "invites", ["matter_id", "contact_id"])
    op.create_table(
        "message_templates",
        _id(),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("firm_id", "firms", "CASCADE", "message_templates"),
        sa.PrimaryKeyConstraint("id", name="pk_message_templates"),
        sa.UniqueConstraint("firm_id", "name", name="uq_message_templates_firm_id_name"),
    )
    op.create_table(
        "outbox",
        _id(),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False, server_default=""),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False, server_default="queued"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("invite_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("channel IN ('email', 'sms')", name="ck_outbox_channel"),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'held')", name="ck_outbox_status"
        ),
        _fk("firm_id", "firms", "CASCADE", "outbox"),
        _fk("invite_id", "invites", "SET NULL", "outbox"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_firm_created", "outbox", ["firm_id", "id"])
    op.create_index("ix_outbox_invite_id", "outbox", ["invite_id"])
    op.create_table(
        "audit_log",
        _id(),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("firm_seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("matter_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        _fk("firm_id", "firms", "CASCADE", "audit_log"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("firm_id", "firm_seq", name="uq_audit_log_firm_id_firm_seq"),
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "outbox",
        "message_templates",
        "invites",
        "recovery_codes",
        "credentials",
        "matter_applicants",
    ):
        op.drop_table(table)
    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_constraint("ck_auth_tokens_kind", type_="check")
        batch.create_check_constraint("ck_auth_tokens_kind", "kind IN ('login', 'session', 'api')")
    with op.batch_alter_table("matter_members") as batch:
        batch.drop_column("see_applicants")
    with op.batch_alter_table("matters") as batch:
        batch.drop_column("matter_type")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(32), nullable=True))
    op.execute(
        "UPDATE contacts SET email = (SELECT address FROM contact_emails e "
        "WHERE e.contact_id = contacts.id ORDER BY position LIMIT 1), "
        "phone = (SELECT number FROM contact_phones p "
        "WHERE p.contact_id = contacts.id ORDER BY position LIMIT 1)"
    )
    op.drop_table("contact_phones")
    op.drop_table("contact_emails")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint("ck_staff_users_status", type_="check")
        batch.drop_column("status")
        batch.drop_constraint("ck_staff_users_role", type_="check")
    op.execute("UPDATE staff_users SET role = 'project_admin' WHERE role = 'matter_admin'")
    with op.batch_alter_table("staff_users") as batch:
        batch.create_check_constraint(
            "ck_staff_users_role", "role IN ('org_admin', 'project_admin', 'staff', 'bot')"
        )
    with op.batch_alter_table("firms") as batch:
        batch.drop_constraint("uq_firms_slug", type_="unique")
        for column in ("invite_expiry_days", "require_totp", "slug"):
            batch.drop_column(column)
