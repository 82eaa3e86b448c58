"""Authentication: opaque tokens (``tokens.py``) resolving to a ``Principal``."""

from __future__ import annotations

from rtportal.auth.tokens import (
    SESSION_COOKIE,
    authenticate,
    issue_token,
    revoke_principal_tokens,
    revoke_token,
    token_from_connection,
)

__all__ = [
    "SESSION_COOKIE",
    "authenticate",
    "issue_token",
    "revoke_principal_tokens",
    "revoke_token",
    "token_from_connection",
]
