"""SQLAlchemy 2 typed tables.

The schema is created by Alembic migrations (``rtportal/db/migrations``), never
by ``metadata.create_all``; ``tests/test_migrations.py`` checks that this
metadata and the migrated schema agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuditEntry",
    "AuthToken",
    "Base",
    "Contact",
    "ContactEmail",
    "ContactPhone",
    "Credential",
    "DocumentDefault",
    "DocumentFile",
    "DocumentItem",
    "DocumentRecipient",
    "DocumentType",
    "Event",
    "Firm",
    "Invite",
    "ItemTag",
    "KeyCert",
    "KeyClientRevocation",
    "KeyEscrow",
    "KeyHandover",
    "KeyHead",
    "KeyManifest",
    "KeyRevocationList",
    "KeyRoot",
    "KeyWrap",
    "Matter",
    "MatterApplicant",
    "MatterMember",
    "MatterType",
    "MessageTemplate",
    "OutboxMessage",
    "Phase",
    "ReadMark",
    "RecoveryCode",
    "Review",
    "StaffUser",
    "StoredFile",
    "Tag",
    "TimelineStep",
    "UTCDateTime",
    "utcnow",
]

# Deterministic constraint names: migrations and reflection agree on them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite stores no offset; values are normalised to UTC on the way in and
    marked UTC on the way out, so comparisons never mix naive and aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: rtportal stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Firm(Base):
    __tablename__ = "firms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The firm's name in URLs and on the sign-in form (``?firm=<slug>``).
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # Every staff member must use a second factor (org admins always must).
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A client's portal access ends this many days after acceptance; NULL: until removed.
    invite_expiry_days: Mapped[int | None] = mapped_column(Integer)
    # Clients see the matter's timeline of steps (docs/threads.md).
    show_timeline: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Clients are not shown which staff members have read their messages.
    hide_staff_receipts: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Attachments (docs/files.md): ciphertext bytes per file and per matter; NULL: the server's.
    file_max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    portal_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The disclosure documents a matter must have shared before a contact is
    # invited (docs/documents.md): a JSON list of document type labels.
    required_disclosures: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    # The review inbox (docs/reviews.md): the firm's day (an IANA name; NULL: UTC) and
    # who reviews what clients send (NULL: each matter's responsible staff member).
    timezone: Mapped[str | None] = mapped_column(String(64))
    # No foreign key (migration 0018 says why): checked when set; the reviewer rule
    # skips an id that no longer names an active staff member.
    review_staff_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StaffUser(Base):
    """Staff members and bots of a firm (a bot is a user with role ``bot``).

    ``status``: ``invited`` (an org admin invited them; no password yet),
    ``active``, ``disabled`` (cannot sign in; sessions revoked).
    """

    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("firm_id", "email"),
        CheckConstraint("role IN ('org_admin', 'matter_admin', 'staff', 'bot')", name="role"),
        CheckConstraint("status IN ('invited', 'active', 'disabled')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contact(Base):
    """A client of the firm; reaches matters only through ``matter_members``.

    Addresses and numbers live in ``contact_emails`` / ``contact_phones``
    (several each, ordered; the first is the primary).
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContactEmail(Base):
    __tablename__ = "contact_emails"
    __table_args__ = (UniqueConstraint("contact_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(320))  # stored lower-cased
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ContactPhone(Base):
    """A phone number (E.164); SMS invites go only to a number marked personal mobile."""

    __tablename__ = "contact_phones"
    __table_args__ = (UniqueConstraint("contact_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(32))
    personal_mobile: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Matter(Base):
    """A case of the firm; ``last_seq`` is the head of its event log."""

    __tablename__ = "matters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    # Globally unique (not only per firm) so the wire needs only the reference.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    responsible_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    matter_type: Mapped[str | None] = mapped_column(String(64))
    # The matter's type and current internal phase (rtportal.timeline).
    matter_type_id: Mapped[int | None] = mapped_column(
        ForeignKey("matter_types.id", ondelete="SET NULL")
    )
    phase_id: Mapped[int | None] = mapped_column(ForeignKey("phases.id", ondelete="SET NULL"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Moved by triggers whenever what a send's checks read about the matter
    # moves (members, invites, key epochs, revocations): a worker's remembered
    # checks hold for one version only (migration 0015, rtportal.events.guards).
    access_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MatterMember(Base):
    """A contact (role ``client``) or bot (role ``bot``) admitted to a matter."""

    __tablename__ = "matter_members"
    __table_args__ = (
        CheckConstraint("principal_kind IN ('contact', 'bot')", name="principal_kind"),
        CheckConstraint("role IN ('client', 'bot')", name="role"),
        Index("ix_matter_members_principal", "principal_kind", "principal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"), index=True)
    principal_kind: Mapped[str] = mapped_column(String(10))
    principal_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(10))
    # May this client see the matter's other applicants (their threads, names)?
    see_applicants: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The firm's access expiry (the invite's ``access_expires_at``): past it the
    # membership is no longer active, without a job having to end it.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MatterApplicant(Base):
    """A contact linked to a matter as an applicant (whether or not the portal is on)."""

    __tablename__ = "matter_applicants"
    __table_args__ = (UniqueConstraint("matter_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Event(Base):
    """One entry of a matter's conversation stream (see ``rtportal.events.log``)."""

    __tablename__ = "events"
    __table_args__ = (
        # Also the index of the hot query "events of a matter after seq N".
        UniqueConstraint("matter_id", "seq"),
        # Idempotency: one event per (matter, actor, client-chosen id).
        UniqueConstraint("matter_id", "actor_kind", "actor_id", "client_id"),
        CheckConstraint("audience IN ('portal', 'staff')", name="audience"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(8))
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON text
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A deleted item's events (rtportal.threads): its blob erased, shown as a tombstone.
    redacted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class AuthToken(Base):
    """A login link, browser session or API token, stored only as its keyed hash.

    ``kind``: ``login`` (a login link: short-lived, exchanged once, then
    ``used_at`` is set), ``session`` (a browser session made by an exchange:
    idle timeout ``idle_seconds`` after ``last_seen_at``, absolute end
    ``expires_at``, ``parent_id`` the token it was exchanged from) or
    ``api`` (a bearer token for a program; ``expires_at`` optional) or
    ``setup`` (a staff invitation link: single use, expiring; its holder
    chooses a password).
    Revoking a token revokes its descendants (``rtportal.access.sessions``).
    """

    __tablename__ = "auth_tokens"
    __table_args__ = (
        CheckConstraint("principal_kind IN ('staff', 'contact', 'bot')", name="principal_kind"),
        CheckConstraint("kind IN ('login', 'session', 'api', 'setup')", name="kind"),
        Index("ix_auth_tokens_principal", "principal_kind", "principal_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="api", server_default="api")
    principal_kind: Mapped[str] = mapped_column(String(10))
    principal_id: Mapped[int] = mapped_column(Integer)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_tokens.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idle_seconds: Mapped[int | None] = mapped_column(Integer)


class Credential(Base):
    """How a person signs in: one row per staff member or contact with a login.

    The browser derives ``Argon2id(password, kdf_salt, kdf_params)`` and
    sends only ``HKDF(out, "rtp1/login")`` (the login secret); ``verifier``
    is the argon2-cffi hash of that secret (NULL until a password is set).
    ``key_backup`` and ``public_keys`` are opaque to this layer (the key
    directory certifies and uses them) and are handed out only after the
    login secret was verified. Emails are unique per firm across staff and
    contacts: the sign-in form names the firm, the email names the person.
    """

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("firm_id", "email"),
        UniqueConstraint("principal_kind", "principal_id"),
        CheckConstraint("principal_kind IN ('staff', 'contact')", name="principal_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))  # lower-cased
    principal_kind: Mapped[str] = mapped_column(String(10))
    principal_id: Mapped[int] = mapped_column(Integer)
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    kdf_params: Mapped[str] = mapped_column(Text)  # JSON {"alg","m","t","p","len"}
    verifier: Mapped[str | None] = mapped_column(Text)
    key_backup: Mapped[bytes | None] = mapped_column(LargeBinary)
    public_keys: Mapped[bytes | None] = mapped_column(LargeBinary)
    # TOTP (RFC 6238): the shared secret encrypted under the server secret;
    # enabled once confirmed; the last accepted time step refuses replays.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecoveryCode(Base):
    """A one-time second-factor recovery code, stored as its keyed hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Invite(Base):
    """A contact's invitation to a matter's portal, and then their access to it.

    ``status``: ``pending`` (sent, not yet accepted) -> ``active``
    (accepted: a ``matter_members`` row exists) -> ``removed``; or
    ``expired`` (the firm's access expiry passed). A resend replaces
    ``link_hash`` and ``passcode_hash`` (the previous link and passcode stop
    working at once) and counts ``resends``. ``method``: ``email``,
    ``sms`` or ``email_sms`` (email link + SMS passcode).
    """

    __tablename__ = "invites"
    __table_args__ = (
        CheckConstraint("method IN ('email', 'sms', 'email_sms')", name="method"),
        CheckConstraint("status IN ('pending', 'active', 'removed', 'expired')", name="status"),
        CheckConstraint("delivery IN ('portal', 'own_mail')", name="delivery"),
        Index("ix_invites_matter_contact", "matter_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(10))
    # ``portal``: the portal sends the link; ``own_mail``: the staff member's
    # own mail client does (the portal sends nothing: docs/keys.md).
    delivery: Mapped[str] = mapped_column(String(10), default="portal", server_default="portal")
    see_applicants: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    link_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passcode_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    passcode_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passcode_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MessageTemplate(Base):
    """A firm's welcome message template; merge fields ``{company}``,
    ``{client_name}``, ``{matter_ref}``, ``{portal_link}``."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("firm_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxMessage(Base):
    """An email or SMS the portal sent or holds, with its delivery status.

    ``transport``: ``smtp`` / ``sms_http`` (sent to a provider) or
    ``outbox`` (no provider configured: held here for an org admin to
    read). ``status``: ``queued`` -> ``sent`` | ``failed`` (``error`` says
    why), or ``held`` for the outbox transport. ``body`` is kept only for
    held messages: a message a provider delivered keeps no login secret here.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms')", name="channel"),
        CheckConstraint("status IN ('queued', 'sent', 'failed', 'held')", name="status"),
        Index("ix_outbox_firm_created", "firm_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    transport: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="", server_default="")
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="queued", server_default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    invite_id: Mapped[int | None] = mapped_column(
        ForeignKey("invites.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """The append-only, hash-chained audit log, one chain per firm.

    ``hash = SHA-256(prev_hash || canonical JSON of the entry)``;
    ``(firm_id, firm_seq)`` is unique, so two writers cannot fork the chain
    (``rtportal.access.audit``; ``rtportal audit verify`` checks it).
    """

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("firm_id", "firm_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    firm_seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_kind: Mapped[str | None] = mapped_column(String(10))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str | None] = mapped_column(String(16))
    target_id: Mapped[int | None] = mapped_column(Integer)
    matter_id: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


# The key directory's tables live in their own module (one idea each); imported
# here so the metadata Alembic and tests compare holds every table, and so
# ``from rtportal.db.models import KeyCert`` keeps working.
from rtportal.db.models_documents import (  # noqa: E402
    DocumentDefault,
    DocumentFile,
    DocumentItem,
    DocumentRecipient,
    DocumentType,
)
from rtportal.db.models_files import StoredFile  # noqa: E402
from rtportal.db.models_keys import (  # noqa: E402
    KeyCert,
    KeyClientRevocation,
    KeyEscrow,
    KeyHandover,
    KeyHead,
    KeyManifest,
    KeyRevocationList,
    KeyRoot,
    KeyWrap,
)
from rtportal.db.models_reviews import Review  # noqa: E402
from rtportal.db.models_threads import (  # noqa: E402
    ItemTag,
    MatterType,
    Phase,
    ReadMark,
    Tag,
    TimelineStep,
)
