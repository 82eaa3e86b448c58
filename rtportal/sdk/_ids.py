"""rtp1 ids of principals (docs/keys.md "Identifiers"), until ``rtportal.keys.ids`` lands.

Private on purpose: the one mapping lives in ``rtportal.keys.ids``; this
stand-in is deleted when that module is merged.
"""

from __future__ import annotations

__all__ = ["principal_uid"]

_PREFIX = {"staff": "s", "contact": "c", "bot": "b"}


def principal_uid(kind: str, pid: int) -> str:
    """``("staff", 3)`` -> ``"s3"``, ``("contact", 12)`` -> ``"c12"``, bot 1 -> ``"b1"``."""
    return f"{_PREFIX[kind]}{pid}"
