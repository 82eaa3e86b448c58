"""Core (no I/O): the firm's keys: set-up, staff approval, escrow rotation when staff leave.

Only an org admin holding the firm root key (FRK) runs these. The FRK signs
staff certificates, revocation lists and escrow records; the FEK/FIR of
each version is wrapped to every active staff member's identity key by the
admin's own identity (wraps are made by staff, whose certificates readers
check).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtportal import base64url
from rtportal.crypto.certs import FRK_ISSUER, CertBody, Certificate, Flag, Role, issue
from rtportal.crypto.keys import FirmEscrowKey, FirmRootKey, IdentityPublic
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.wrap import FIRM_MATTER, Wrap, WrapInfo, WrapKind, wrap_key
from rtportal.sdk import records
from rtportal.sdk.actor import Actor

__all__ = [
    "EscrowRotation",
    "FirmSetup",
    "StaffApproval",
    "approve_staff",
    "firm_setup",
    "firm_wraps",
    "rotate_escrow",
    "staff_certificate",
]


def _b64(data: bytes) -> str:
    return base64url.encode(data)


def staff_certificate(
    frk: FirmRootKey, *, firm: str, user: str, public: IdentityPublic, now_ms: int
) -> Certificate:
    """An FRK-signed staff certificate, unscoped, allowed to certify clients."""
    body = CertBody(
        firm,
        Role.STAFF,
        user,
        public.x_pk,
        public.ed_pk,
        now_ms,  # serial: the issuing time in ms, monotone per firm root key
        now_ms,
        0,
        Flag.CERTIFY_CLIENTS,
        (),
        FRK_ISSUER,
        frk.kid,
    )
    return issue(body, frk)


def firm_wraps(
    actor: Actor,
    keys: Iterable[FirmEscrowKey],
    recipients: Iterable[tuple[str, IdentityPublic]],
    rng: Rng,
) -> tuple[Wrap, ...]:
    """Each FEK/FIR version in ``keys`` wrapped to each ``(user, public)``."""
    out: list[Wrap] = []
    for fek in keys:
        for user, public in recipients:
            info = WrapInfo(actor.firm, FIRM_MATTER, fek.version, WrapKind.FIRM, user, public.kid)
            out.append(
                wrap_key(
                    fek.wrapped_plaintext(), info, public.x_pk, actor.uid, actor.identity, rng=rng
                )
            )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FirmSetup:
    frk: FirmRootKey
    cert: Certificate
    fek: FirmEscrowKey
    escrow: records.EscrowRecord
    wraps: tuple[Wrap, ...]
    revocations: records.RevocationList

    def root_body(self) -> dict[str, object]:
        return {"frk": _b64(self.frk.public.record())}

    def certs_body(self) -> dict[str, object]:
        return {"certs": [_b64(self.cert.encode())]}

    def escrow_body(self) -> dict[str, object]:
        return {
            "record": _b64(self.escrow.encode()),
            "wraps": [_b64(w.encode()) for w in self.wraps],
        }

    def revocations_body(self) -> dict[str, object]:
        return {"list": _b64(self.revocations.encode())}


def firm_setup(frk: FirmRootKey, admin: Actor, *, now_ms: int, rng: Rng = system_rng) -> FirmSetup:
    """Steps 2-4 of "Firm set-up": root, the admin's certificate, FEK/FIR v1, revocation list v1."""
    cert = staff_certificate(
        frk, firm=admin.firm, user=admin.uid, public=admin.identity.public, now_ms=now_ms
    )
    fek = FirmEscrowKey.generate(admin.firm, 1, rng)
    escrow = records.escrow_record(frk, fek, now_ms)
    wraps = firm_wraps(admin, [fek], [(admin.uid, admin.identity.public)], rng)
    rl = records.revocation_list(frk, firm=admin.firm, version=1, entries=(), now_ms=now_ms)
    return FirmSetup(frk, cert, fek, escrow, wraps, rl)


@dataclass(frozen=True, slots=True)
class StaffApproval:
    certs: tuple[Certificate, ...]
    wraps: tuple[Wrap, ...]

    def body(self) -> dict[str, object]:
        """``POST /keys/certs {certs, wraps}``."""
        return {
            "certs": [_b64(c.encode()) for c in self.certs],
            "wraps": [_b64(w.encode()) for w in self.wraps],
        }


def approve_staff(
    frk: FirmRootKey,
    admin: Actor,
    pending: Sequence[tuple[str, IdentityPublic]],
    *,
    now_ms: int,
    rng: Rng = system_rng,
) -> StaffApproval:
    """Certificates for the pending staff keys and every FEK/FIR version wrapped to them."""
    certs = tuple(
        staff_certificate(frk, firm=admin.firm, user=user, public=public, now_ms=now_ms)
        for user, public in pending
    )
    keys = [admin.firm_keys[v] for v in sorted(admin.firm_keys)]
    return StaffApproval(certs, firm_wraps(admin, keys, pending, rng))


@dataclass(frozen=True, slots=True)
class EscrowRotation:
    revocations: records.RevocationList
    fek: FirmEscrowKey
    escrow: records.EscrowRecord
    wraps: tuple[Wrap, ...]

    def revocations_body(self) -> dict[str, object]:
        return {"list": _b64(self.revocations.encode())}

    def escrow_body(self) -> dict[str, object]:
        return {
            "record": _b64(self.escrow.encode()),
            "wraps": [_b64(w.encode()) for w in self.wraps],
        }


def rotate_escrow(
    frk: FirmRootKey,
    admin: Actor,
    *,
    current: records.RevocationList,
    leaving: Sequence[tuple[str, bytes]],
    remaining: Sequence[tuple[str, IdentityPublic]],
    now_ms: int,
    rng: Rng = system_rng,
) -> EscrowRotation:
    """ "Staff member leaves": the next revocation list and FEK/FIR version for the others.

    The matters' next epochs (under the new ``fek_version``) are made with
    ``epochs.next_epoch`` once the new key is in ``admin.firm_keys``.
    """
    entries = records.revocation_entries(current) + tuple(
        records.left_entry(user, kid, now_ms) for user, kid in leaving
    )
    version = records.revocation_version(current) + 1
    rl = records.revocation_list(
        frk, firm=admin.firm, version=version, entries=entries, now_ms=now_ms
    )
    fek = FirmEscrowKey.generate(admin.firm, admin.newest_fek().version + 1, rng)
    escrow = records.escrow_record(frk, fek, now_ms)
    wraps = firm_wraps(admin, [fek], remaining, rng)
    return EscrowRotation(rl, fek, escrow, wraps)
