"""``Principal``: who is calling (a staff member, a contact or a bot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Principal", "PrincipalKind"]

PrincipalKind = Literal["staff", "contact", "bot"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, always bound to one firm.

    Staff see every matter of their firm; contacts and bots only the matters
    they are active members of (``rtportal.access.membership.can_access``).
    """

    kind: PrincipalKind
    id: int
    firm_id: int
    display_name: str
    # Staff role (``org_admin``, ``matter_admin``, ``staff``; ``bot`` for
    # bots); None for contacts. Checked by ``rtportal.access.roles``.
    role: str | None = field(default=None, compare=False)
    # Which login session (token) authenticated this caller, when known: a
    # logout closes that session's websockets, not the user's other devices.
    # Not part of equality: the same person is the same principal everywhere.
    session_id: str | None = field(default=None, compare=False)
    # The session has an idle timeout: activity on it is recorded
    # (``rtportal.access.sessions.touch``), at most once a minute.
    session_idle: bool = field(default=False, compare=False)

    @property
    def is_staff(self) -> bool:
        """Staff and bots of the firm see staff-audience events; contacts never do."""
        return self.kind != "contact"

    def actor(self) -> dict[str, object]:
        """The ``actor`` object recorded on events this principal writes."""
        return {"kind": self.kind, "id": self.id, "name": self.display_name}
