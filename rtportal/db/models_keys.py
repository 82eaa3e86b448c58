"""SQLAlchemy 2 typed tables of the key directory (docs/keys.md; rtportal/keys/).

Records are stored as the bytes the client sent (rtp1, checked by
rtportal.keys.records); the other columns are what the server looks them up
by. Created by migration 0008, like every table by Alembic.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rtportal.db.models import Base, UTCDateTime, utcnow

__all__ = [
    "KeyCert",
    "KeyClientRevocation",
    "KeyEscrow",
    "KeyHandover",
    "KeyHead",
    "KeyManifest",
    "KeyRevocationList",
    "KeyRoot",
    "KeyWrap",
]


class KeyRoot(Base):
    """The firm root public key (``RTKR`` record), set once per firm."""

    __tablename__ = "key_roots"

    firm_id: Mapped[int] = mapped_column(
        ForeignKey("firms.id", ondelete="CASCADE"), primary_key=True
    )
    record: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyCert(Base):
    """A certificate (``RTCX``) of a staff member, bot or client (rtp1 id ``principal``)."""

    __tablename__ = "key_certs"
    __table_args__ = (UniqueConstraint("firm_id", "principal", "kid", "serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    principal: Mapped[str] = mapped_column(String(64))
    kid: Mapped[bytes] = mapped_column(LargeBinary(16))
    role: Mapped[int] = mapped_column(Integer)  # rtp1 Role: 1 staff, 2 client, 3 bot
    serial: Mapped[int] = mapped_column(BigInteger)
    issuer: Mapped[str] = mapped_column(String(64))
    # The matter references of a client certificate, space-separated.
    scopes: Mapped[str] = mapped_column(Text, default="", server_default="")
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when a client revocation or the revocation list names this key: the
    # server then refuses its writes (rtportal.keys.envelopes).
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KeyRevocationList(Base):
    """The FRK-signed revocation list (``RTL1``), every version kept."""

    __tablename__ = "key_revocation_lists"

    firm_id: Mapped[int] = mapped_column(
        ForeignKey("firms.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyClientRevocation(Base):
    """A client key revoked by the staff member who certified clients (``RTVX``)."""

    __tablename__ = "key_client_revocations"
    __table_args__ = (UniqueConstraint("firm_id", "principal", "kid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    principal: Mapped[str] = mapped_column(String(64))
    kid: Mapped[bytes] = mapped_column(LargeBinary(16))
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyEscrow(Base):
    """The FRK-signed escrow key record (``RTF1``), one per FEK version."""

    __tablename__ = "key_escrow"

    firm_id: Mapped[int] = mapped_column(
        ForeignKey("firms.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyManifest(Base):
    """One epoch of a matter (``RTEX``); the primary key is the chain's compare-and-set."""

    __tablename__ = "key_manifests"

    matter_id: Mapped[int] = mapped_column(
        ForeignKey("matters.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyHead(Base):
    """The newest signed epoch head (``RTH1``) of a matter."""

    __tablename__ = "key_heads"

    matter_id: Mapped[int] = mapped_column(
        ForeignKey("matters.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyWrap(Base):
    """A signed key wrap (``RTWX``): an MEK of a matter's epoch (``matter_id``), or
    the firm keys (``matter_id`` NULL, ``epoch`` = FEK version)."""

    __tablename__ = "key_wraps"
    __table_args__ = (
        Index("ix_key_wraps_matter_recipient", "matter_id", "recipient"),
        Index("ix_key_wraps_firm_recipient", "firm_id", "recipient"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    recipient: Mapped[str] = mapped_column(String(64))
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KeyHandover(Base):
    """A client's fresh identity key named by a handover (``RTKX``) its invite key
    signed (portal delivery: the server saw the invite secret). Append-only; staff
    compare the 6-digit code of ``public_keys`` and certify it (docs/keys.md)."""

    __tablename__ = "key_handovers"
    __table_args__ = (Index("ix_key_handovers_firm_principal", "firm_id", "principal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    principal: Mapped[str] = mapped_column(String(64))
    old_kid: Mapped[bytes] = mapped_column(LargeBinary(16))
    new_kid: Mapped[bytes] = mapped_column(LargeBinary(16))
    public_keys: Mapped[bytes] = mapped_column(LargeBinary)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
