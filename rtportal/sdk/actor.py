"""Who is acting: an rtp1 user id with its identity key (and, for staff, the firm keys)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtportal.crypto.keys import FirmEscrowKey, IdentityKey
from rtportal.errors import PreconditionFailed

__all__ = ["Actor"]


@dataclass(slots=True)
class Actor:
    firm: str
    uid: str
    identity: IdentityKey
    firm_keys: dict[int, FirmEscrowKey] = field(default_factory=dict)  # FEK/FIR by version

    @property
    def kid(self) -> bytes:
        return self.identity.kid

    def newest_fek(self) -> FirmEscrowKey:
        if not self.firm_keys:
            raise PreconditionFailed("no_firm_keys", "no firm escrow key: not approved yet")
        return self.firm_keys[max(self.firm_keys)]
