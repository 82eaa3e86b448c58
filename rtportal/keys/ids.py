"""rtp1 ids of principals, firms and matters (docs/keys.md "Identifiers").

The one place on the server that maps a principal to the id inside rtp1
records and back: staff ``s<id>``, contacts ``c<id>``, bots ``b<id>``; a
firm is its slug, a matter its reference.
"""

from __future__ import annotations

import re

from rtportal.principal import Principal, PrincipalKind

__all__ = ["PREFIX", "of", "of_kind", "parse"]

PREFIX: dict[PrincipalKind, str] = {"staff": "s", "contact": "c", "bot": "b"}
_KIND = {prefix: kind for kind, prefix in PREFIX.items()}
_ID_RE = re.compile(r"([scb])([1-9][0-9]{0,9})")
_ID_MAX = 2**31 - 1  # the tables' integer ids


def of_kind(kind: PrincipalKind, principal_id: int) -> str:
    return f"{PREFIX[kind]}{principal_id}"


def of(principal: Principal) -> str:
    """The rtp1 user id of ``principal``."""
    return of_kind(principal.kind, principal.id)


def parse(user: str) -> tuple[PrincipalKind, int] | None:
    """``(kind, id)`` of an rtp1 user id, or ``None`` for anything else."""
    match = _ID_RE.fullmatch(user)
    if match is None or int(match.group(2)) > _ID_MAX:
        return None
    return _KIND[match.group(1)], int(match.group(2))
