"""The CSRF header of a session token, for tests that write with a session cookie."""

from __future__ import annotations

from rtportal.access import csrf
from rtportal.access.sessions import session_id_of


def csrf_header(key: bytes, token: str) -> dict[str, str]:
    """``X-CSRF-Token`` of the session ``token`` (what sign-in and /me hand out)."""
    return {csrf.HEADER: csrf.token_for(key, session_id_of(key, token))}
