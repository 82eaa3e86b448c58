"""Helpers of the invite tests: what the client's browser would send, and what
the contact received (read from the outbox, where the held transport keeps it)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rtportal.base64url import encode
from rtportal.db import Database
from rtportal.db.models import OutboxMessage

__all__ = ["Received", "acceptance", "kdf_body", "login_secret", "received"]

_LINK_RE = re.compile(r"#invite=([A-Za-z0-9_-]{43})")
_PASSCODE_RE = re.compile(r"passcode is ([0-9]{6})")


def kdf_body() -> dict[str, Any]:
    """A browser's Argon2id parameters (the server stores them, never runs them)."""
    return {"alg": "argon2id", "salt": encode(os.urandom(16)), "m_kib": 65536, "t": 3, "p": 1}


def login_secret() -> str:
    """A login secret as the browser sends it (HKDF output: 32 bytes, base64url)."""
    return encode(os.urandom(32))


def acceptance(
    token: str, secret: str, *, passcode: str | None = None, kdf: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {"token": token, "login_secret": secret}
    if kdf:
        body["kdf"] = kdf_body()
    if passcode is not None:
        body["passcode"] = passcode
    return body


@dataclass(frozen=True, slots=True)
class Received:
    """The latest link (and passcode) sent for an invite, and the messages."""

    link: str | None
    passcode: str | None
    messages: list[OutboxMessage]


async def received(db: Database, invite_id: int) -> Received:
    """What the contact of ``invite_id`` got in its latest send."""
    async with db.read() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.invite_id == invite_id)
            .order_by(OutboxMessage.id.desc())
        )
        messages = list(rows.scalars())
    link = passcode = None
    for message in messages:
        text = message.body or ""
        if link is None and (found := _LINK_RE.search(text)):
            link = found.group(1)
        if passcode is None and (code := _PASSCODE_RE.search(text)):
            passcode = code.group(1)
        if link is not None and (passcode is not None or "passcode" not in text):
            break
    return Received(link, passcode, messages)
