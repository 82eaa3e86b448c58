"""Core (no I/O): the next epoch of a matter, a refreshed head, history re-wraps.

Every membership change is the same act: a new MEK, a manifest chained to
the newest verified one, wraps to the firm escrow key (so every staff
member reads it) and to each client member, and a fresh signed head. The
bundle is applied to the local ``Directory`` first, so a staff client
only ever posts what it would itself accept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtportal import base64url
from rtportal.crypto.directory import Directory
from rtportal.crypto.kdf import commitment
from rtportal.crypto.manifest import GENESIS_HASH, Manifest, ManifestBody, Member, sign_manifest
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.wrap import FEK_RECIPIENT, Wrap, WrapInfo, WrapKind, wrap_key
from rtportal.sdk import records
from rtportal.sdk.actor import Actor

__all__ = ["EpochBundle", "current_members", "next_epoch", "refresh_head", "rewrap_history"]


@dataclass(frozen=True, slots=True)
class EpochBundle:
    matter: str
    manifest: Manifest
    head: records.EpochHead
    wraps: tuple[Wrap, ...]
    mek: bytes

    @property
    def epoch(self) -> int:
        return self.manifest.body.epoch

    def body(self) -> dict[str, object]:
        """``{manifest, head, wraps}`` of ``POST /keys/matters/{ref}/epochs``."""
        return {
            "manifest": base64url.encode(self.manifest.encode()),
            "head": base64url.encode(self.head.encode()),
            "wraps": [base64url.encode(w.encode()) for w in self.wraps],
        }

    def apply(self, d: Directory, now_ms: int) -> None:
        """Accept our own manifest, head and MEK into the verifier (what readers will do)."""
        d.accept_manifest(self.manifest, self.matter, now_ms)
        records.accept_head(d, self.head, self.matter, now_ms)
        d.add_mek(self.matter, self.epoch, self.mek)


def current_members(d: Directory, matter: str) -> tuple[Member, ...]:
    epoch = d.current_epoch(matter)
    return d.manifest(matter, epoch).members if epoch else ()


def mek_wrap(
    d: Directory,
    actor: Actor,
    matter: str,
    epoch: int,
    mek: bytes,
    member: Member,
    now_ms: int,
    rng: Rng,
) -> Wrap:
    cert = d.certificate(member.user, member.kid, now_ms)
    info = WrapInfo(actor.firm, matter, epoch, WrapKind.MEK, member.user, member.kid)
    return wrap_key(mek, info, cert.x_pk, actor.uid, actor.identity, rng=rng)


def next_epoch(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    members: Iterable[Member],
    share_history: bool = True,
    now_ms: int,
    rng: Rng = system_rng,
) -> EpochBundle:
    """Epoch ``e + 1`` with exactly ``members`` (clients, bots), under the newest FEK."""
    fek = actor.newest_fek()
    st = d.matter(matter)
    epoch = st.last_epoch + 1
    prev = st.last_hash if st.last_epoch else GENESIS_HASH
    mek = rng(32)
    chosen = tuple(sorted(set(members)))
    body = ManifestBody(
        actor.firm,
        matter,
        epoch,
        prev,
        fek.version,
        chosen,
        share_history,
        actor.uid,
        actor.kid,
        now_ms,
        commitment(mek, actor.firm, matter, epoch),
    )
    signed = sign_manifest(body, actor.identity)
    fek_info = WrapInfo(actor.firm, matter, epoch, WrapKind.MEK, FEK_RECIPIENT, fek.kid)
    wraps = [wrap_key(mek, fek_info, fek.public.x_pk, actor.uid, actor.identity, rng=rng)]
    wraps += [mek_wrap(d, actor, matter, epoch, mek, m, now_ms, rng) for m in chosen]
    h = records.head(
        actor.identity,
        signer_id=actor.uid,
        firm=actor.firm,
        matter=matter,
        epoch=epoch,
        hash_=body.hash,
        now_ms=now_ms,
    )
    return EpochBundle(matter, signed, h, tuple(wraps), mek)


def refresh_head(d: Directory, actor: Actor, *, matter: str, now_ms: int) -> records.EpochHead:
    """A new signed head of the current epoch (heads expire: ``HEAD_MAX_AGE_MS``)."""
    st = d.matter(matter)
    return records.head(
        actor.identity,
        signer_id=actor.uid,
        firm=actor.firm,
        matter=matter,
        epoch=st.last_epoch,
        hash_=st.last_hash,
        now_ms=now_ms,
    )


def rewrap_history(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    user: str,
    new_member: Member,
    now_ms: int,
    rng: Rng = system_rng,
) -> tuple[Wrap, ...]:
    """The MEK of every epoch ``user`` was a member of (under any key), wrapped to their new key.

    Only epochs the user was in: a regenerated client gets back what it
    had, nothing more. The MEKs come from the staff client's own ``#fek``
    unwraps, already in ``d``.
    """
    st = d.matter(matter)
    out: list[Wrap] = []
    for epoch, body in sorted(st.manifests.items()):
        was_member = any(m.user == user for m in body.members)
        if not was_member or epoch not in st.meks:
            continue
        out.append(mek_wrap(d, actor, matter, epoch, st.meks[epoch], new_member, now_ms, rng))
    return tuple(out)
