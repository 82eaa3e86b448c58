"""The one Origin check, shared by websocket upgrades and cookie-authenticated HTTP writes.

A browser sends its page's origin serialized exactly (lower-case scheme and
host, no path, no trailing slash), so the comparison is exact: the header
must equal one entry of ``RTPORTAL_ALLOWED_ORIGINS`` character for
character. No Origin header (bots, native apps, curl) is allowed: such
clients carry no ambient browser credentials to abuse.
"""

from __future__ import annotations

__all__ = ["origin_allowed"]


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a request with this ``Origin`` header (``None``: none sent) may proceed."""
    return origin is None or origin in allowed
