"""What a client trusts about keys: the pinned FRK, certificates, revocations, escrow records.

Lifecycle rules (docs/security.md §5): no certificate is usable without a
fresh FRK-signed revocation list, so a server cannot withhold a revocation
unnoticed. Each use names the time of the signed object (``at_ms``: a
manifest's or message's ``ts_ms``): expiry and a non-compromise revocation
(``left``, ``superseded``, a client revocation) end a key's use from then on
but keep its history verifiable; ``compromised`` ends it for everything. A
client certificate's issuer is checked again at every use. ``Directory``
builds the per-matter rules on top of this.
"""

from __future__ import annotations

from rtportal.crypto.certs import (
    CLOCK_SKEW_MS,
    FRK_ISSUER,
    CertBody,
    Certificate,
    Flag,
    Reason,
    Revocation,
    RevocationList,
    RevocationListBody,
    Role,
)
from rtportal.crypto.edwards import check_ed25519_public
from rtportal.crypto.errors import (
    ChainBroken,
    EncodingInvalid,
    Revoked,
    Rollback,
    Stale,
    Uncertified,
    WrongContext,
)
from rtportal.crypto.keys import EscrowRecord, EscrowRecordBody, FirmRootPublic, check_x25519_public

__all__ = ["TrustStore"]


class TrustStore:
    """Certificates and their status for one firm (see module docstring)."""

    def __init__(self, firm: str, frk: FirmRootPublic) -> None:
        self.firm = firm
        self.frk = frk
        self._certs: dict[tuple[str, bytes], Certificate] = {}
        # (user, kid) -> (reason, revoked_at_ms) from client revocations (RTV1)
        self._revoked: dict[tuple[str, bytes], tuple[Reason, int]] = {}
        self._list: RevocationListBody | None = None
        self._list_bytes = b""
        self._escrow: dict[int, EscrowRecordBody] = {}

    # ---- revocation list and escrow records ---------------------------
    def set_revocation_list(self, lst: RevocationList | bytes, now_ms: int) -> RevocationListBody:
        """Verify the FRK-signed list and make it current: never an older version, never stale."""
        rl = lst if isinstance(lst, RevocationList) else RevocationList.decode(lst)
        b = rl.body
        if b.firm != self.firm:
            raise WrongContext("revocation list of another firm")
        rl.verify(self.frk)
        current = self._list
        if current is not None:
            if b.version < current.version:
                raise Rollback(f"revocation list {b.version} is older than {current.version}")
            if b.version == current.version and b.encode() != self._list_bytes:
                raise Rollback(f"two different revocation lists of version {b.version}")
        if now_ms > b.next_update_ms:
            raise Stale("the revocation list is past its next_update")
        self._list, self._list_bytes = b, b.encode()
        return b

    @property
    def revocation_list(self) -> RevocationListBody | None:
        return self._list

    def _check_fresh(self, now_ms: int) -> None:
        if self._list is None:
            raise Stale("no revocation list yet: no certificate is usable")
        if now_ms > self._list.next_update_ms:
            raise Stale("the revocation list is past its next_update: fetch the newer one")

    def add_escrow_record(self, record: EscrowRecord | bytes) -> EscrowRecordBody:
        """An FRK-signed escrow record; the newest version is what writers require."""
        r = record if isinstance(record, EscrowRecord) else EscrowRecord.decode(record)
        b = r.body
        if b.firm != self.firm:
            raise WrongContext("escrow record of another firm")
        r.verify(self.frk)
        known = self._escrow.get(b.version)
        if known is not None and known != b:
            raise ChainBroken(f"two different escrow records of version {b.version}")
        self._escrow[b.version] = b
        return b

    def escrow_record(self, version: int) -> EscrowRecordBody:
        b = self._escrow.get(version)
        if b is None:
            raise Uncertified(f"no FRK-signed escrow record of version {version}")
        return b

    @property
    def newest_escrow_version(self) -> int:
        return max(self._escrow, default=0)

    # ---- certificates -------------------------------------------------
    def _revocation(self, user: str, kid: bytes) -> tuple[Reason, int] | None:
        """The strongest revocation known for a key: compromise first, else the earliest."""
        found = []
        if self._list is not None and (e := self._list.entry(user, kid)) is not None:
            found.append((e.reason, e.revoked_at_ms))
        if (r := self._revoked.get((user, kid))) is not None:
            found.append(r)
        if not found:
            return None
        if any(reason is Reason.COMPROMISED for reason, _ in found):
            return Reason.COMPROMISED, 0
        return min(found, key=lambda f: f[1])

    def _check_not_revoked(self, user: str, kid: bytes, at_ms: int) -> None:
        rev = self._revocation(user, kid)
        if rev is None:
            return
        reason, revoked_at = rev
        if reason is Reason.COMPROMISED:
            raise Revoked(f"key of {user} is compromised")
        if at_ms >= revoked_at:
            raise Revoked(f"key of {user} is revoked since {revoked_at}")

    def _check_issuer(self, b: CertBody) -> CertBody:
        """The issuer of a client certificate, usable when it issued (at ``issued_at_ms``).

        A staff member with CERTIFY_CLIENTS or an unscoped custodian bot may
        certify clients; an issuer that left later does not undo what it issued,
        a compromised one does.
        """
        c = self._certs.get((b.issuer, b.issuer_kid))
        if c is None:
            raise Uncertified(f"no certificate for the issuer {b.issuer}")
        issuer = c.body
        certifier = issuer.role is Role.STAFF and issuer.flags & Flag.CERTIFY_CLIENTS
        custodian = issuer.role is Role.BOT and issuer.flags & Flag.CUSTODIAN and not issuer.scopes
        if not (certifier or custodian):
            raise Uncertified("issuer may not certify clients")
        self._check_not_revoked(issuer.user, issuer.kid, b.issued_at_ms)
        if not issuer.valid_at(b.issued_at_ms):
            raise Uncertified("issuer's certificate was not valid when it issued")
        return issuer

    def add_certificate(self, cert: Certificate | bytes, now_ms: int) -> CertBody:
        """Verify ``cert`` against the FRK (or a certifying staff member) and remember it.

        An expired certificate, or one of a key revoked for a non-compromise
        reason after it was issued, is kept: old history signed with it stays
        verifiable; :meth:`certificate` decides each use by the object's time.
        """
        c = cert if isinstance(cert, Certificate) else Certificate.decode(cert)
        b = c.body
        if b.firm != self.firm:
            raise WrongContext("certificate of another firm")
        check_x25519_public(b.x_pk)
        check_ed25519_public(b.ed_pk)  # a small-order key would verify any message
        if b.role in (Role.STAFF, Role.BOT):
            if b.issuer != FRK_ISSUER or b.issuer_kid != self.frk.kid:
                raise Uncertified("staff and bot certificates are issued by the firm root key")
            c.verify_signature(self.frk.ed_pk)
        else:
            c.verify_signature(self._check_issuer(b).ed_pk)
        if b.issued_at_ms > now_ms + CLOCK_SKEW_MS:
            raise Uncertified("certificate issued in the future")
        if not b.valid_at(b.issued_at_ms):
            raise Uncertified("certificate expires before it is issued")
        self._check_not_revoked(b.user, b.kid, b.issued_at_ms)
        known = self._certs.get((b.user, b.kid))
        if known is not None and known.body.serial > b.serial:
            # an older certificate of the same key (served again, e.g. with wider scopes
            # or more flags) never replaces a newer one this client has seen
            return known.body
        if known is not None and known.body.serial == b.serial:
            # a serial names one certificate: the same bytes again are a no-op, other bytes
            # (wider scopes, more flags) are refused and the first is kept (never widen)
            if known.body.encode() == b.encode():
                return known.body
            raise EncodingInvalid("another certificate of this key with the same serial")
        self._certs[(b.user, b.kid)] = c
        return b

    def add_revocation(self, rev: Revocation | bytes, now_ms: int) -> None:
        """A client revocation (``RTV1``): the key's use ends at ``revoked_at_ms``.

        Signed by a CERTIFY_CLIENTS staff member or an unscoped custodian bot
        (clients only), or by the FRK (any key; then nothing the key signed
        stays valid, as for a compromise: the FRK's usual channel is the list).
        """
        r = rev if isinstance(rev, Revocation) else Revocation.decode(rev)
        b = r.body
        if b.firm != self.firm:
            raise WrongContext("revocation of another firm")
        target = self._certs.get((b.user, b.kid))
        if b.issuer == FRK_ISSUER and b.issuer_kid == self.frk.kid:
            self.frk.verify(r.sig, b.encode())
            entry = (Reason.COMPROMISED, 0)
        else:
            issuer = self.certificate(b.issuer, b.issuer_kid, now_ms, at_ms=b.revoked_at_ms)
            certifier = issuer.role is Role.STAFF and issuer.flags & Flag.CERTIFY_CLIENTS
            custodian = issuer.role is Role.BOT and issuer.flags & Flag.CUSTODIAN
            if not (certifier or (custodian and not issuer.scopes)):
                raise Uncertified("issuer may not revoke")
            if target is None or target.body.role is not Role.CLIENT:
                raise Uncertified("staff members revoke client certificates only")
            issuer.public.verify(r.sig, b.encode())
            entry = (Reason.SUPERSEDED, b.revoked_at_ms)
        known = self._revoked.get((b.user, b.kid))
        if known is None or entry[1] < known[1]:  # compromise is stored as revoked_at 0
            self._revoked[(b.user, b.kid)] = entry

    def certificate(
        self, user: str, kid: bytes, now_ms: int, *, at_ms: int | None = None
    ) -> CertBody:
        """The certificate of ``(user, kid)`` if usable for an object made at ``at_ms``.

        ``now_ms`` is the reader's clock (the revocation list must be fresh);
        ``at_ms`` the signed object's own time (default: now). A client
        certificate's issuer is checked again at every use.
        """
        self._check_fresh(now_ms)
        at = now_ms if at_ms is None else at_ms
        self._check_not_revoked(user, kid, at)
        c = self._certs.get((user, kid))
        if c is None:
            raise Uncertified(f"no certificate for {user}")
        if not c.body.valid_at(at):
            raise Uncertified(f"certificate of {user} not valid at {at}")
        if c.body.role is Role.CLIENT:
            self._check_issuer(c.body)
        return c.body

    def certificate_now_or_then(self, user: str, kid: bytes, now_ms: int, then_ms: int) -> CertBody:
        """For signatures without a time of their own (key wraps): usable now, or at
        ``then_ms`` (the time of what is wrapped) if it left or expired since."""
        try:
            return self.certificate(user, kid, now_ms)
        except (Revoked, Uncertified):
            return self.certificate(user, kid, now_ms, at_ms=then_ms)
