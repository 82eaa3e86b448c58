"""A small firm built from the library's own calls: for tests, benchmarks, demos.

It is also the shortest worked example of the lifecycle flows: certify users,
sign the revocation list and escrow records, start an epoch (new MEK,
manifest, head, wraps), remove a member (next epoch), revoke a key.
Private keys of everyone live in one object here, which only a test may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtportal.crypto.certs import (
    FRK_ISSUER,
    CertBody,
    Certificate,
    Flag,
    Reason,
    RevocationEntry,
    RevocationList,
    RevocationListBody,
    Role,
    issue,
    sign_revocation_list,
)
from rtportal.crypto.directory import Directory
from rtportal.crypto.kdf import commitment
from rtportal.crypto.keys import (
    EscrowRecord,
    EscrowRecordBody,
    FirmEscrowKey,
    FirmRootKey,
    IdentityKey,
    sign_escrow_record,
)
from rtportal.crypto.manifest import (
    GENESIS_HASH,
    EpochHead,
    HeadBody,
    Manifest,
    ManifestBody,
    Member,
    sign_head,
    sign_manifest,
)
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, Wrap, WrapInfo, WrapKind, wrap_key

__all__ = ["NOW_MS", "World"]

NOW_MS = 1_790_000_000_000
_DAY = 86_400_000
NO_FLAGS = Flag(0)


@dataclass
class _Chain:
    epoch: int = 0
    last_hash: bytes = GENESIS_HASH
    manifests: dict[int, Manifest] = field(default_factory=dict)
    meks: dict[int, bytes] = field(default_factory=dict)


class World:
    """One firm with an FRK, FEK v1 and any number of users and matters."""

    def __init__(
        self, firm: str = "firm-1", *, rng: Rng = system_rng, now_ms: int = NOW_MS
    ) -> None:
        self.firm = firm
        self.rng = rng
        self.now_ms = now_ms
        self.frk = FirmRootKey.generate(rng)
        self.fek = FirmEscrowKey.generate(firm, 1, rng)
        self.ids: dict[str, IdentityKey] = {}
        self.certs: dict[str, Certificate] = {}
        self.chains: dict[str, _Chain] = {}
        self._serial = 0
        self.revoked: list[RevocationEntry] = []
        self.list_version = 1
        self.escrow: dict[int, EscrowRecord] = {}
        self.feks: dict[int, FirmEscrowKey] = {}
        self._record_escrow(self.fek)

    # ---- the FRK's records: revocation list, escrow ----------------------
    def _record_escrow(self, fek: FirmEscrowKey) -> None:
        body = EscrowRecordBody(self.firm, fek.version, fek.public.x_pk, self.now_ms - _DAY)
        self.escrow[fek.version] = sign_escrow_record(body, self.frk)
        self.feks[fek.version] = fek

    def rotate_escrow(self) -> FirmEscrowKey:
        """The next FEK/FIR version (someone left); new epochs use it."""
        self.fek = FirmEscrowKey.generate(self.firm, self.fek.version + 1, self.rng)
        self._record_escrow(self.fek)
        return self.fek

    def revocation_list(self, *, next_update_ms: int | None = None) -> RevocationList:
        """The current FRK-signed list: issued a day ago, next update in 30 days."""
        body = RevocationListBody(
            self.firm,
            self.list_version,
            self.now_ms - _DAY,
            self.now_ms + 30 * _DAY if next_update_ms is None else next_update_ms,
            tuple(self.revoked),
        )
        return sign_revocation_list(body, self.frk)

    def revoke(self, user: str, reason: Reason, revoked_at_ms: int) -> RevocationList:
        """Put ``user``'s current key on the next version of the list."""
        self.revoked.append(RevocationEntry(user, self.ids[user].kid, revoked_at_ms, reason))
        self.list_version += 1
        return self.revocation_list()

    def add_user(
        self,
        user: str,
        role: Role,
        *,
        flags: Flag = NO_FLAGS,
        scopes: tuple[str, ...] = (),
        issuer: str | None = None,
        key: IdentityKey | None = None,
    ) -> IdentityKey:
        """Create (or re-key) and certify a user: FRK for staff/bots, a staff member for clients."""
        k = key or IdentityKey.generate(self.rng)
        if issuer is None:
            issuer = "frk" if role is not Role.CLIENT else self._certifier()
        signer: FirmRootKey | IdentityKey = self.frk if issuer == "frk" else self.ids[issuer]
        self._serial += 1
        body = CertBody(
            self.firm,
            role,
            user,
            k.public.x_pk,
            k.public.ed_pk,
            self._serial,
            self.now_ms - _DAY,
            0,
            flags,
            scopes,
            FRK_ISSUER if issuer == "frk" else issuer,
            signer.kid,
        )
        self.ids[user] = k
        self.certs[user] = issue(body, signer)
        return k

    def _certifier(self) -> str:
        for user, cert in self.certs.items():
            if cert.body.role is Role.STAFF and cert.body.flags & Flag.CERTIFY_CLIENTS:
                return user
        raise LookupError("no staff member may certify clients")

    def directory(self) -> Directory:
        """A fresh verifier state pinned to this firm's FRK, with every certificate loaded."""
        d = Directory(self.firm, self.frk.public)
        d.set_revocation_list(self.revocation_list(), self.now_ms)
        for record in self.escrow.values():
            d.add_escrow_record(record)
        pending = list(self.certs.values())
        while pending:  # issuers before the certificates they issued
            progressed = False
            for c in list(pending):
                if c.body.issuer == FRK_ISSUER or any(
                    (c.body.issuer, c.body.issuer_kid) == (o.body.user, o.body.kid)
                    for o in self.certs.values()
                    if o not in pending
                ):
                    d.add_certificate(c, self.now_ms)
                    pending.remove(c)
                    progressed = True
            if not progressed:
                raise LookupError("certificate issuers missing")
        return d

    def role(self, user: str) -> Role:
        return self.certs[user].body.role

    def new_epoch(
        self,
        matter: str,
        members: tuple[str, ...],
        *,
        creator: str = "staff-1",
        ts_ms: int | None = None,
    ) -> tuple[Manifest, bytes]:
        """Next epoch of ``matter``: fresh MEK, manifest signed by ``creator``."""
        ch = self.chains.setdefault(matter, _Chain())
        epoch = ch.epoch + 1
        mek = self.rng(32)
        body = ManifestBody(
            self.firm,
            matter,
            epoch,
            ch.last_hash,
            self.fek.version,
            tuple(Member(u, self.ids[u].kid, self.role(u)) for u in members),
            False,
            creator,
            self.ids[creator].kid,
            self.now_ms if ts_ms is None else ts_ms,
            commitment(mek, self.firm, matter, epoch),
        )
        m = sign_manifest(body, self.ids[creator])
        ch.epoch, ch.last_hash = epoch, body.hash
        ch.manifests[epoch], ch.meks[epoch] = m, mek
        return m, mek

    def head(self, matter: str, *, signer: str = "staff-1", ts_ms: int | None = None) -> EpochHead:
        """A signed head of ``matter``'s current epoch."""
        ch = self.chains[matter]
        body = HeadBody(
            self.firm,
            matter,
            ch.epoch,
            ch.last_hash,
            self.now_ms if ts_ms is None else ts_ms,
            signer,
            self.ids[signer].kid,
        )
        return sign_head(body, self.ids[signer])

    def wrap_mek(
        self, matter: str, epoch: int, recipient: str, *, wrapper: str = "staff-1"
    ) -> Wrap:
        mek = self.chains[matter].meks[epoch]
        if recipient == FEK_RECIPIENT:
            fek = self.feks[self.chains[matter].manifests[epoch].body.fek_version]
            info = WrapInfo(self.firm, matter, epoch, WrapKind.MEK, FEK_RECIPIENT, fek.kid)
            pk = fek.public.x_pk
        else:
            info = WrapInfo(
                self.firm, matter, epoch, WrapKind.MEK, recipient, self.ids[recipient].kid
            )
            pk = self.ids[recipient].public.x_pk
        return wrap_key(mek, info, pk, wrapper, self.ids[wrapper], rng=self.rng)

    def wrap_firm_keys(
        self, recipient: str, *, wrapper: str = "staff-1", fek: FirmEscrowKey | None = None
    ) -> Wrap:
        fek = fek or self.fek
        info = WrapInfo(
            self.firm,
            FIRM_MATTER,
            fek.version,
            WrapKind.FIRM,
            recipient,
            self.ids[recipient].kid,
        )
        return wrap_key(
            fek.wrapped_plaintext(),
            info,
            self.ids[recipient].public.x_pk,
            wrapper,
            self.ids[wrapper],
            rng=self.rng,
        )

    def mek_info(self, matter: str, epoch: int, recipient: str) -> WrapInfo:
        return WrapInfo(self.firm, matter, epoch, WrapKind.MEK, recipient, self.ids[recipient].kid)

    def reader(self, user: str, matter: str) -> Directory:
        """A member's verifier with every manifest of ``matter`` accepted and its MEKs unwrapped."""
        d = self.directory()
        ch = self.chains.get(matter, _Chain())
        for epoch in sorted(ch.manifests):
            d.accept_manifest(ch.manifests[epoch], matter, self.now_ms)
            body = ch.manifests[epoch].body
            if self.role(user) is Role.STAFF:
                w = self.wrap_mek(matter, epoch, FEK_RECIPIENT)
                fek = self.feks[body.fek_version]
                info = WrapInfo(self.firm, matter, epoch, WrapKind.MEK, FEK_RECIPIENT, fek.kid)
                d.unwrap(w, info, fek.x_sk, self.now_ms)
            elif body.member(user, self.ids[user].kid) is not None:
                w = self.wrap_mek(matter, epoch, user)
                d.unwrap(w, self.mek_info(matter, epoch, user), self.ids[user].x_sk, self.now_ms)
        if ch.manifests:
            d.accept_head(self.head(matter), matter, self.now_ms)
        if self.role(user) is Role.STAFF:
            for fek in self.feks.values():
                d.add_firm_keys(fek)
        return d
