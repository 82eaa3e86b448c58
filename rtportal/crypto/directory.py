"""A client's verifier state: trusted FRK, certificates, revocations, manifests, keys.

Everything a server (the "directory") hands a client passes through here:
certificates are checked against the pinned firm root key, manifests
against certificates and the remembered ``(epoch, hash)`` per matter, wraps
and messages against both, and seen ``msg_id``s are remembered so replays are
refused. Holding this state on the client is what stops a malicious server
from adding a reader, substituting a key, rolling an epoch back or replaying.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtportal.crypto.certs import FRK_ISSUER, CertBody, Certificate, Flag, Revocation, Role
from rtportal.crypto.edwards import check_ed25519_public
from rtportal.crypto.envelope import (
    CTYPE_BODY,
    CTYPE_TEXT,
    Body,
    Envelope,
    Header,
    Visibility,
    decrypt_envelope,
    seal_envelope,
    verify_envelope,
)
from rtportal.crypto.errors import (
    ChainBroken,
    CommitmentMismatch,
    EncodingInvalid,
    EpochGap,
    Replay,
    Revoked,
    Rollback,
    StaleEpochWrite,
    Uncertified,
    WrongContext,
)
from rtportal.crypto.kdf import commitment, internal_key, message_key
from rtportal.crypto.keys import FirmEscrowKey, FirmRootPublic, IdentityKey, check_x25519_public
from rtportal.crypto.manifest import GENESIS_HASH, Manifest, ManifestBody
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.wrap import Wrap, WrapInfo, WrapKind, open_wrap

__all__ = ["Directory", "MatterState"]


@dataclass(slots=True)
class MatterState:
    last_epoch: int = 0
    last_hash: bytes = GENESIS_HASH
    manifests: dict[int, ManifestBody] = field(default_factory=dict)
    meks: dict[int, bytes] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)


class Directory:
    """Verifier state of one client for one firm (see module docstring)."""

    def __init__(self, firm: str, frk: FirmRootPublic) -> None:
        self.firm = firm
        self.frk = frk
        self._certs: dict[tuple[str, bytes], Certificate] = {}
        self._revoked: set[tuple[str, bytes]] = set()
        self._matters: dict[str, MatterState] = {}
        self._firm_keys: dict[int, FirmEscrowKey] = {}

    # ---- certificates -------------------------------------------------
    def add_certificate(self, cert: Certificate | bytes, now_ms: int) -> CertBody:
        """Verify ``cert`` against the FRK (or a certifying staff member) and remember it."""
        c = cert if isinstance(cert, Certificate) else Certificate.decode(cert)
        b = c.body
        if b.firm != self.firm:
            raise WrongContext("certificate of another firm")
        check_x25519_public(b.x_pk)
        check_ed25519_public(b.ed_pk)
        if b.role in (Role.STAFF, Role.BOT):
            if b.issuer != FRK_ISSUER or b.issuer_kid != self.frk.kid:
                raise Uncertified("staff and bot certificates are issued by the firm root key")
            c.verify_signature(self.frk.ed_pk)
        else:
            issuer = self.certificate(b.issuer, b.issuer_kid, now_ms)
            if issuer.role is not Role.STAFF or not issuer.flags & Flag.CERTIFY_CLIENTS:
                raise Uncertified("issuer may not certify clients")
            c.verify_signature(issuer.ed_pk)
        if not b.valid_at(now_ms):
            raise Uncertified("certificate not valid now")
        if (b.user, b.kid) in self._revoked:
            raise Revoked("certificate key is revoked")
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
        r = rev if isinstance(rev, Revocation) else Revocation.decode(rev)
        b = r.body
        if b.firm != self.firm:
            raise WrongContext("revocation of another firm")
        target = self._certs.get((b.user, b.kid))
        if b.issuer == FRK_ISSUER and b.issuer_kid == self.frk.kid:
            self.frk.verify(r.sig, b.encode())
        else:
            issuer = self.certificate(b.issuer, b.issuer_kid, now_ms)
            if issuer.role is not Role.STAFF or not issuer.flags & Flag.CERTIFY_CLIENTS:
                raise Uncertified("issuer may not revoke")
            if target is None or target.body.role is not Role.CLIENT:
                raise Uncertified("staff members revoke client certificates only")
            issuer.public.verify(r.sig, b.encode())
        self._revoked.add((b.user, b.kid))

    def certificate(self, user: str, kid: bytes, now_ms: int) -> CertBody:
        """The valid, unrevoked certificate of ``(user, kid)`` or an rtp1 error."""
        if (user, kid) in self._revoked:
            raise Revoked(f"key of {user} is revoked")
        c = self._certs.get((user, kid))
        if c is None:
            raise Uncertified(f"no certificate for {user}")
        if not c.body.valid_at(now_ms):
            raise Uncertified(f"certificate of {user} not valid now")
        return c.body

    # ---- manifests ----------------------------------------------------
    def matter(self, matter: str) -> MatterState:
        return self._matters.setdefault(matter, MatterState())

    def _check_creator(self, body: ManifestBody, now_ms: int) -> CertBody:
        creator = self.certificate(body.creator, body.creator_kid, now_ms)
        if not (creator.role is Role.STAFF or creator.flags & Flag.CUSTODIAN):
            raise Uncertified("manifests are signed by staff or a custodian bot")
        if not creator.in_scope(body.matter):
            raise Uncertified("creator not scoped to this matter")
        return creator

    def accept_manifest(
        self, manifest: Manifest | bytes, matter: str, now_ms: int, *, pin: bool = False
    ) -> ManifestBody:
        """Check a manifest and advance the matter's ``(epoch, hash)``.

        ``pin=True`` accepts a first manifest at a later epoch (trust on first
        use for a member joining without history); otherwise the chain starts at 1.
        """
        m = manifest if isinstance(manifest, Manifest) else Manifest.decode(manifest)
        b = m.body
        if (b.firm, b.matter) != (self.firm, matter):
            raise WrongContext("manifest of another firm or matter")
        creator = self._check_creator(b, now_ms)
        creator.public.verify(m.sig, b.encode())
        for member in b.members:
            cert = self.certificate(member.user, member.kid, now_ms)
            if cert.role is not member.role:
                raise Uncertified(f"member {member.user} has role {cert.role.name}")
            if not cert.in_scope(matter):
                raise Uncertified(f"member {member.user} not scoped to this matter")
        st = self.matter(matter)
        h = b.hash
        if st.last_epoch == 0 and not pin:
            if b.epoch != 1 or b.prev_hash != GENESIS_HASH:
                raise ChainBroken("a matter's chain starts at epoch 1 with a zero prev_hash")
        elif st.last_epoch != 0:
            if b.epoch == st.last_epoch and h == st.last_hash:
                return b  # the same manifest delivered again
            if b.epoch <= st.last_epoch:
                raise Rollback(f"epoch {b.epoch} is not after {st.last_epoch}")
            if b.epoch > st.last_epoch + 1:
                raise EpochGap(f"epoch {b.epoch} skips epochs after {st.last_epoch}")
            if b.prev_hash != st.last_hash:
                raise ChainBroken("prev_hash does not chain to the last epoch")
        st.last_epoch, st.last_hash = b.epoch, h
        st.manifests[b.epoch] = b
        return b

    def manifest(self, matter: str, epoch: int) -> ManifestBody:
        b = self.matter(matter).manifests.get(epoch)
        if b is None:
            raise WrongContext(f"no verified manifest for {matter} epoch {epoch}")
        return b

    def current_epoch(self, matter: str) -> int:
        return self.matter(matter).last_epoch

    # ---- keys ---------------------------------------------------------
    def _check_wrapper(self, wrap: Wrap, matter: str, now_ms: int) -> CertBody:
        w = self.certificate(wrap.wrapper, wrap.wrapper_kid, now_ms)
        if not (w.role is Role.STAFF or (w.role is Role.BOT and w.flags & Flag.CUSTODIAN)):
            raise Uncertified("key wraps are made by staff or a custodian bot")
        # a bot with scopes wraps only in those matters; firm keys ("#firm") are never in a
        # scope, so only an unscoped custodian bot distributes them (same rule as JavaScript)
        if not w.in_scope(matter):
            raise Uncertified("wrapper not scoped to this matter")
        return w

    def unwrap(self, wrap: Wrap | bytes, expected: WrapInfo, x_sk: bytes, now_ms: int) -> bytes:
        """Open a wrap addressed to us (``expected`` built from our own context)."""
        w = wrap if isinstance(wrap, Wrap) else Wrap.decode(wrap)
        if w.info != expected:
            raise WrongContext("wrap is for another firm, matter, epoch, kind or recipient")
        wrapper = self._check_wrapper(w, expected.matter, now_ms)
        commit = None
        if expected.kind is WrapKind.MEK:
            commit = self.manifest(expected.matter, expected.epoch).commit
        key = open_wrap(w, expected, x_sk, wrapper.ed_pk, commit=commit)
        if expected.kind is WrapKind.MEK:
            self.matter(expected.matter).meks[expected.epoch] = key
        else:
            fek = FirmEscrowKey(self.firm, expected.epoch, key[:32], key[32:])
            self._firm_keys[expected.epoch] = fek
        return key

    def add_mek(self, matter: str, epoch: int, mek: bytes) -> None:
        """A MEK this client made itself (or got from FEK); checked against the manifest."""
        if not hmac.compare_digest(
            commitment(mek, self.firm, matter, epoch), self.manifest(matter, epoch).commit
        ):
            raise CommitmentMismatch("MEK does not match the manifest commitment")
        self.matter(matter).meks[epoch] = mek

    def add_firm_keys(self, keys: FirmEscrowKey) -> None:
        self._firm_keys[keys.version] = keys

    def _key_for(self, h: Header) -> bytes:
        st = self.matter(h.matter)
        if h.vis is Visibility.STAFF:
            version = self.manifest(h.matter, h.epoch).fek_version
            fek = self._firm_keys.get(version)
            if fek is None:
                raise Uncertified("staff-only content: no firm internal key")
            return internal_key(fek.fir, self.firm, h.matter, version)
        mek = st.meks.get(h.epoch)
        if mek is None:
            raise WrongContext(f"no key for {h.matter} epoch {h.epoch}")
        return message_key(mek, self.firm, h.matter, h.epoch)

    # ---- messages -----------------------------------------------------
    def _check_sender(self, h: Header, now_ms: int) -> CertBody:
        """Step 3 of §8: the sender's certificate, role, visibility and scope."""
        cert = self.certificate(h.sender, h.sender_kid, now_ms)
        if cert.role is Role.CLIENT and h.vis is not Visibility.PORTAL:
            raise Uncertified("clients cannot write staff-only content")
        if not cert.in_scope(h.matter):  # a scoped certificate acts only in its matters
            raise Uncertified("sender not scoped to this matter")
        return cert

    def _check_membership(self, h: Header, cert: CertBody) -> None:
        """Step 5 of §8: the epoch manifest is verified; clients and plain bots are members."""
        manifest = self.manifest(h.matter, h.epoch)
        member = manifest.member(h.sender, h.sender_kid) is not None
        if cert.role is Role.CLIENT and not member:
            raise Uncertified("sender is not a member of this epoch")
        if cert.role is Role.BOT and not member and not cert.flags & Flag.CUSTODIAN:
            raise Uncertified("bot is not a member of this epoch")

    def open_message(
        self, blob: Envelope | bytes, *, matter: str, thread: str, now_ms: int
    ) -> tuple[Header, CertBody, bytes]:
        """Verify and decrypt a message for the thread being shown; remembers its ``msg_id``.

        Returns the header, the sender's certificate (role ``bot`` = system
        update) and the plaintext.
        """
        env = blob if isinstance(blob, Envelope) else Envelope.decode(blob)
        h = env.header
        if (h.firm, h.matter, h.thread) != (self.firm, matter, thread):
            raise WrongContext("message belongs to another firm, matter or thread")
        sender = self._check_sender(h, now_ms)
        aad = verify_envelope(
            env, firm=self.firm, matter=matter, thread=thread, sender_ed_pk=sender.ed_pk
        )
        self._check_membership(h, sender)
        key = self._key_for(h)
        seen = self.matter(matter).seen
        if h.msg_id in seen:
            raise Replay("msg_id seen before")
        pt = decrypt_envelope(env, aad, key)
        _check_plaintext(h.ctype, pt)
        seen.add(h.msg_id)
        return h, sender, pt

    def seal_message(
        self,
        sender: IdentityKey,
        *,
        sender_id: str,
        matter: str,
        thread: str,
        plaintext: bytes,
        ts_ms: int,
        ctype: str,
        vis: Visibility = Visibility.PORTAL,
        parent: bytes | None = None,
        epoch: int | None = None,
        rng: Rng = system_rng,
    ) -> Envelope:
        """Encrypt under the newest verified epoch; an older ``epoch`` is refused."""
        current = self.current_epoch(matter)
        use = current if epoch is None else epoch
        if current == 0 or use != current:
            raise StaleEpochWrite(f"epoch {use} is not the newest verified ({current})")
        h = Header(
            self.firm,
            matter,
            thread,
            rng(16),
            parent,
            sender_id,
            sender.kid,
            use,
            vis,
            ts_ms,
            ctype,
        )
        env = seal_envelope(h, self._key_for(h), plaintext, sender, rng=rng)
        self.matter(matter).seen.add(h.msg_id)  # our own messages come back from the server
        return env

    def mark_seen(self, matter: str, msg_ids: Iterable[bytes]) -> None:
        """Restore replay state (e.g. from local storage)."""
        self.matter(matter).seen.update(msg_ids)


def _check_plaintext(ctype: str, pt: bytes) -> None:
    """The plaintext is what its (signed) ctype says, as JavaScript's ``openMessage`` checks.

    A malformed body is ``crypto_encoding`` and its ``msg_id`` is not recorded.
    """
    if ctype == CTYPE_BODY:
        Body.decode(pt)
    elif ctype == CTYPE_TEXT:
        try:
            pt.decode("utf-8")
        except UnicodeDecodeError:
            raise EncodingInvalid("text message is not UTF-8") from None
