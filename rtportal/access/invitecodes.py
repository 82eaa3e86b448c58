"""An invite's secrets: the link's 32 random bytes and the SMS passcode.

Both are stored only as ``HMAC-SHA-256(server secret, ...)``
(``sessions.hash_token``), like session tokens. One copy in clear exists
while no email/SMS provider is configured: the held outbox message of the
latest send (read by org admins), blanked once a resend replaces it or the
link is used, removed or expired (``notify.outbox.forget_held_bodies``).
The link secret travels only in the URL fragment
(``#invite=<secret>``), which browsers never send to a server. A passcode
is 6 digits from ``secrets``; its hash names the invite, so the same
digits of two invites hash differently.
"""

from __future__ import annotations

import hmac
import re
import secrets

from rtportal.access.sessions import hash_token

__all__ = [
    "PASSCODE_TRIES",
    "link_hash",
    "new_link",
    "new_passcode",
    "passcode_hash",
    "passcode_matches",
]

PASSCODE_TRIES = 5
_LINK_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_PASSCODE_RE = re.compile(r"[0-9]{6}")


def new_link(key: bytes) -> tuple[str, bytes]:
    """A fresh link secret (43 characters of base64url) and its stored hash."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_token(key, secret)


def link_hash(key: bytes, secret: object) -> bytes | None:
    """The stored hash of a presented link secret; ``None`` when it is malformed."""
    if not isinstance(secret, str) or _LINK_RE.fullmatch(secret) is None:
        return None
    return hash_token(key, secret)


def passcode_hash(key: bytes, invite_id: int, code: str) -> bytes:
    return hash_token(key, f"passcode:{invite_id}:{code}")


def new_passcode(key: bytes, invite_id: int) -> tuple[str, bytes]:
    """Six random digits and their stored hash."""
    code = f"{secrets.randbelow(10**6):06d}"
    return code, passcode_hash(key, invite_id, code)


def passcode_matches(key: bytes, invite_id: int, stored: bytes | None, code: object) -> bool:
    if stored is None or not isinstance(code, str) or _PASSCODE_RE.fullmatch(code) is None:
        return False
    return hmac.compare_digest(stored, passcode_hash(key, invite_id, code))
