"""CSRF tokens of browser sessions.

A cookie-authenticated write must carry ``X-CSRF-Token``: a value only the
portal's own pages can know, because it comes in a JSON answer (sign-in,
``GET /api/v1/me``) that another site cannot read. It is derived from the
session, so nothing is stored: ``base64url(HMAC-SHA-256(server secret,
"csrf" | session id))``, where the session id is the public name of the
session (``sessions.session_id_of``).
"""

from __future__ import annotations

import hashlib
import hmac

from rtportal import base64url

__all__ = ["HEADER", "matches", "token_for"]

HEADER = "X-CSRF-Token"


def token_for(key: bytes, session_id: str) -> str:
    mac = hmac.new(key, b"csrf|" + session_id.encode("ascii"), hashlib.sha256).digest()
    return base64url.encode(mac)


def matches(key: bytes, session_id: str | None, presented: str | None) -> bool:
    """Whether ``presented`` is the CSRF token of ``session_id`` (constant time)."""
    if not session_id or not presented:
        return False
    return hmac.compare_digest(token_for(key, session_id).encode(), presented.encode("utf-8"))
