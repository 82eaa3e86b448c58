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
    # a client's other keys: the invite key it handed over from (it still opens what was
    # wrapped to it), and the fresh key waiting for staff to confirm its code
    previous: list[IdentityKey] = field(default_factory=list)
    next: IdentityKey | None = None
    # a client's second matter (docs/keys.md "A second matter"): the invite key that signs
    # and reads there until staff certify the identity above for that matter too
    bound: dict[str, IdentityKey] = field(default_factory=dict)

    @property
    def kid(self) -> bytes:
        return self.identity.kid

    def key_of(self, kid: bytes) -> IdentityKey | None:
        """Whichever of my keys has ``kid``."""
        for key in (self.identity, *self.previous, self.next, *self.bound.values()):
            if key is not None and key.kid == kid:
                return key
        return None

    def signer(self, matter: str) -> IdentityKey:
        """The key I sign with in ``matter``: its bound invite key, else my identity."""
        return self.bound.get(matter, self.identity)

    def unbind(self, matter: str) -> None:
        """Staff certified my identity for ``matter``: it signs there from now on."""
        key = self.bound.pop(matter, None)
        if key is not None:
            self.previous.append(key)  # still opens what was wrapped to it

    def promote(self) -> None:
        """Staff certified the handed-over key: it signs from now on."""
        if self.next is not None:
            self.previous.append(self.identity)
            self.identity, self.next = self.next, None

    def newest_fek(self) -> FirmEscrowKey:
        if not self.firm_keys:
            raise PreconditionFailed("no_firm_keys", "no firm escrow key: not approved yet")
        return self.firm_keys[max(self.firm_keys)]
