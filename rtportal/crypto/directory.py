"""A client's verifier state: trusted FRK, certificates, revocations, manifests, keys.

Everything a server (the "directory") hands a client passes through here:
certificates are checked against the pinned firm root key, manifests
against certificates and the remembered ``(epoch, hash)`` per matter, wraps
and messages against both, and seen ``msg_id``s are remembered so replays are
refused. Holding this state on the client is what stops a malicious server
from adding a reader, substituting a key, rolling an epoch back or replaying.

Certificate status (revocation list, time of use, escrow records) is
``TrustStore``'s; on top of it a writer needs a fresh signed head of the
current epoch and the newest escrow version, and a reader refuses a removed
member's message dated after the manifest that left them out.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from rtportal.crypto.certs import CLOCK_SKEW_MS, CertBody, Flag, Role
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
    Rollback,
    Stale,
    StaleEpochWrite,
    Uncertified,
    WrongContext,
)
from rtportal.crypto.kdf import commitment, internal_key, message_key
from rtportal.crypto.keys import FirmEscrowKey, FirmRootPublic, IdentityKey
from rtportal.crypto.manifest import (
    GENESIS_HASH,
    HEAD_MAX_AGE_MS,
    EpochHead,
    HeadBody,
    Manifest,
    ManifestBody,
)
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.trust import TrustStore
from rtportal.crypto.wrap import Wrap, WrapInfo, WrapKind, open_wrap

__all__ = ["Directory", "MatterState"]


@dataclass(slots=True)
class MatterState:
    last_epoch: int = 0
    last_hash: bytes = GENESIS_HASH
    manifests: dict[int, ManifestBody] = field(default_factory=dict)
    meks: dict[int, bytes] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    head: HeadBody | None = None  # the newest verified head (may be ahead of the chain)


class Directory(TrustStore):
    """Verifier state of one client for one firm (see module docstring)."""

    def __init__(self, firm: str, frk: FirmRootPublic) -> None:
        super().__init__(firm, frk)
        self._matters: dict[str, MatterState] = {}
        self._firm_keys: dict[int, FirmEscrowKey] = {}

    # ---- manifests ----------------------------------------------------
    def matter(self, matter: str) -> MatterState:
        return self._matters.setdefault(matter, MatterState())

    def _check_epoch_signer(
        self, user: str, kid: bytes, matter: str, now_ms: int, at_ms: int
    ) -> CertBody:
        """Manifests and heads: staff or a custodian bot in scope, usable at the object's time."""
        signer = self.certificate(user, kid, now_ms, at_ms=at_ms)
        if not (signer.role is Role.STAFF or signer.flags & Flag.CUSTODIAN):
            raise Uncertified("manifests and heads are signed by staff or a custodian bot")
        if not signer.in_scope(matter):
            raise Uncertified("signer not scoped to this matter")
        return signer

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
        # judged at the manifest's time: a creator or member who left or expired since
        # does not break the history (a compromised key does, whatever the time)
        creator = self._check_epoch_signer(b.creator, b.creator_kid, matter, now_ms, b.ts_ms)
        creator.public.verify(m.sig, b.encode())
        for member in b.members:
            cert = self.certificate(member.user, member.kid, now_ms, at_ms=b.ts_ms)
            if cert.role is not member.role:
                raise Uncertified(f"member {member.user} has role {cert.role.name}")
            if not cert.in_scope(matter):
                raise Uncertified(f"member {member.user} not scoped to this matter")
        st = self.matter(matter)
        h = b.hash
        if st.head is not None and st.head.epoch == b.epoch and st.head.hash != h:
            raise ChainBroken("manifest differs from the signed head of its epoch (a fork)")
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

    def accept_head(self, head: EpochHead | bytes, matter: str, now_ms: int) -> HeadBody:
        """Check a signed head of ``matter`` and remember the newest.

        Signer in scope and usable at the head's time; not older than
        ``HEAD_MAX_AGE_MS`` (``crypto_stale``); not behind the verified chain
        (``crypto_stale``) and, at the chain's last epoch, of the same hash
        (``crypto_chain``: a fork). A head ahead of the chain is kept: the
        writer must sync the newer epochs before it may write.
        """
        eh = head if isinstance(head, EpochHead) else EpochHead.decode(head)
        b = eh.body
        if (b.firm, b.matter) != (self.firm, matter):
            raise WrongContext("head of another firm or matter")
        # the bound first: a head too old to count is stale whoever signed it
        if b.ts_ms + HEAD_MAX_AGE_MS < now_ms:
            raise Stale("the epoch head is older than 90 days")
        if b.ts_ms > now_ms + CLOCK_SKEW_MS:
            raise Stale("the epoch head is dated in the future")
        signer = self._check_epoch_signer(b.signer, b.signer_kid, matter, now_ms, b.ts_ms)
        signer.public.verify(eh.sig, b.encode())
        st = self.matter(matter)
        if b.epoch < st.last_epoch:
            raise Stale(f"head names epoch {b.epoch}, the chain is at {st.last_epoch}")
        if b.epoch == st.last_epoch and b.hash != st.last_hash:
            raise ChainBroken("head names another manifest of the current epoch (a fork)")
        known = st.head
        if known is not None and (known.epoch, known.ts_ms) > (b.epoch, b.ts_ms):
            if known.epoch > b.epoch:
                raise Stale(f"head names epoch {b.epoch}, a newer head names {known.epoch}")
            return known
        st.head = b
        return b

    def _check_head(self, matter: str, now_ms: int) -> None:
        """A writer's view is current: a fresh head names the last verified epoch."""
        st = self.matter(matter)
        h = st.head
        if h is None or (h.epoch, h.hash) != (st.last_epoch, st.last_hash):
            raise Stale("no verified head of the current epoch: sync the matter")
        if h.ts_ms + HEAD_MAX_AGE_MS < now_ms:
            raise Stale("the epoch head is older than 90 days")

    def manifest(self, matter: str, epoch: int) -> ManifestBody:
        b = self.matter(matter).manifests.get(epoch)
        if b is None:
            raise WrongContext(f"no verified manifest for {matter} epoch {epoch}")
        return b

    def current_epoch(self, matter: str) -> int:
        return self.matter(matter).last_epoch

    # ---- keys ---------------------------------------------------------
    def _check_wrapper(self, wrap: Wrap, matter: str, now_ms: int, then_ms: int) -> CertBody:
        """Staff or a custodian bot in scope, usable now or when the key was made (``then_ms``).

        A wrap carries no time of its own: the epoch's (or escrow version's)
        time keeps wraps from someone who left since valid, and "now" lets a
        staff member who joined later re-wrap old epochs for a recovered client.
        """
        w = self.certificate_now_or_then(wrap.wrapper, wrap.wrapper_kid, now_ms, then_ms)
        if not (w.role is Role.STAFF or (w.role is Role.BOT and w.flags & Flag.CUSTODIAN)):
            raise Uncertified("key wraps are made by staff or a custodian bot")
        # a bot with scopes wraps only in those matters; firm keys ("#firm") are never in a
        # scope, so only an unscoped custodian bot distributes them (same rule as JavaScript)
        if not w.in_scope(matter):
            raise Uncertified("wrapper not scoped to this matter")
        return w

    def unwrap(self, wrap: Wrap | bytes, expected: WrapInfo, x_sk: bytes, now_ms: int) -> bytes:
        """Open a wrap addressed to us (``expected`` built from our own context).

        Firm keys must be the FEK the FRK signed for that version (``RTF1``):
        a staff member cannot hand others an escrow key of their own making.
        """
        w = wrap if isinstance(wrap, Wrap) else Wrap.decode(wrap)
        if w.info != expected:
            raise WrongContext("wrap is for another firm, matter, epoch, kind or recipient")
        commit = None
        if expected.kind is WrapKind.MEK:
            manifest = self.manifest(expected.matter, expected.epoch)
            commit, then_ms = manifest.commit, manifest.ts_ms
        else:
            escrow = self.escrow_record(expected.epoch)
            then_ms = escrow.created_at_ms
        wrapper = self._check_wrapper(w, expected.matter, now_ms, then_ms)
        key = open_wrap(w, expected, x_sk, wrapper.ed_pk, commit=commit)
        if expected.kind is WrapKind.MEK:
            self.matter(expected.matter).meks[expected.epoch] = key
        else:
            self.add_firm_keys(FirmEscrowKey(self.firm, expected.epoch, key[:32], key[32:]))
        return key

    def add_mek(self, matter: str, epoch: int, mek: bytes) -> None:
        """A MEK this client made itself (or got from FEK); checked against the manifest."""
        if not hmac.compare_digest(
            commitment(mek, self.firm, matter, epoch), self.manifest(matter, epoch).commit
        ):
            raise CommitmentMismatch("MEK does not match the manifest commitment")
        self.matter(matter).meks[epoch] = mek

    def add_firm_keys(self, keys: FirmEscrowKey) -> None:
        """FEK/FIR of a version; its public key must be the FRK-signed escrow record's."""
        if keys.firm != self.firm:
            raise WrongContext("firm keys of another firm")
        if keys.public.x_pk != self.escrow_record(keys.version).x_pk:
            raise Uncertified("FEK is not the one the firm root key signed for this version")
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
        """Step 3 of §8: the sender's certificate at the message's time, role, vis, scope."""
        cert = self.certificate(h.sender, h.sender_kid, now_ms, at_ms=h.ts_ms)
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
        if member and not (cert.role is Role.BOT and cert.flags & Flag.CUSTODIAN):
            self._check_not_removed(h)

    def _check_not_removed(self, h: Header) -> None:
        """A member's message under an old epoch, dated at or after the first later
        manifest that left them out, is a removed member still writing: refused."""
        st = self.matter(h.matter)
        for epoch in range(h.epoch + 1, st.last_epoch + 1):
            later = st.manifests.get(epoch)
            if later is not None and later.member(h.sender, h.sender_kid) is None:
                if h.ts_ms >= later.ts_ms:
                    raise StaleEpochWrite(
                        f"{h.sender} was left out at epoch {epoch}; message dated after that"
                    )
                return

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
        self._check_head(matter, ts_ms)
        newest = self.newest_escrow_version
        fek_version = self.manifest(matter, current).fek_version
        if fek_version < newest:
            # a rotated escrow key (someone left): nothing new under the old one
            raise StaleEpochWrite(f"epoch uses escrow version {fek_version}, newest is {newest}")
        if fek_version > newest:
            raise Stale(f"no FRK-signed escrow record of version {fek_version} yet")
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
