"""Core (no I/O): inviting clients, removing them, regenerating their login details.

An invited client's identity key is derived from an invite secret ``R``
that only the link fragment carries, so the staff client can certify it,
put it in the next epoch and encrypt a welcome to it before the client has
ever connected: acceptance needs no staff online. Regeneration is the same
with a fresh ``R'``: the old key is left out of the next epoch and revoked,
and the epochs the client was in are wrapped again to the new key.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from rtportal import base64url
from rtportal.crypto.certs import (
    CertBody,
    Certificate,
    Flag,
    Revocation,
    RevocationBody,
    Role,
    issue,
    revoke,
)
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import CTYPE_BODY, Body, Envelope
from rtportal.crypto.errors import RecoveryInvalid, Uncertified
from rtportal.crypto.keys import FirmRootPublic, IdentityKey, IdentityPublic
from rtportal.crypto.manifest import Member
from rtportal.crypto.recovery import (
    Handover,
    HandoverBody,
    sas_code,
    sign_handover,
    verify_handover,
)
from rtportal.crypto.rng import Rng, system_rng
from rtportal.crypto.wrap import Wrap
from rtportal.errors import CryptoInvalid
from rtportal.keys.ids import of_kind
from rtportal.sdk import records
from rtportal.sdk.actor import Actor
from rtportal.sdk.epochs import EpochBundle, current_members, next_epoch, rewrap_history

__all__ = [
    "SECRET_LEN",
    "InviteRound",
    "Invitee",
    "KeyReplacement",
    "Regeneration",
    "accept_link",
    "client_certificate",
    "confirm_handover",
    "hand_over",
    "invite_round",
    "parse_accept_fragment",
    "regenerate",
    "removal",
    "replace_key",
    "welcome_thread",
]

SECRET_LEN = 32
DELIVERIES = ("own_mail", "portal")


def welcome_thread(contact_id: int) -> str:
    return f"welcome-{contact_id}"


def client_certificate(
    actor: Actor, *, matter: str, user: str, public: IdentityPublic, now_ms: int
) -> Certificate:
    """A client certificate scoped to ``matter``, issued by a staff member who certifies clients."""
    body = CertBody(
        actor.firm,
        Role.CLIENT,
        user,
        public.x_pk,
        public.ed_pk,
        now_ms,
        now_ms,
        0,
        Flag(0),
        (matter,),
        actor.uid,
        actor.kid,
    )
    return issue(body, actor.identity)


@dataclass(frozen=True, slots=True)
class Invitee:
    contact_id: int
    uid: str
    secret: bytes
    identity: IdentityKey
    cert: Certificate

    @property
    def member(self) -> Member:
        return Member(self.uid, self.identity.kid, Role.CLIENT)


def _new_invitee(actor: Actor, matter: str, contact_id: int, now_ms: int, rng: Rng) -> Invitee:
    uid = of_kind("contact", contact_id)
    secret = rng(SECRET_LEN)
    identity = records.invite_identity(secret, actor.firm, uid)
    cert = client_certificate(actor, matter=matter, user=uid, public=identity.public, now_ms=now_ms)
    return Invitee(contact_id, uid, secret, identity, cert)


def accept_link(public_url: str, token: str, secret: bytes, frk: FirmRootPublic) -> str:
    """The ``own_mail`` link: the portal's page (the server's ``url``) with token, secret and
    FRK fingerprint in the fragment only, which browsers never send to the server."""
    base = public_url.split("#", 1)[0]
    return f"{base}#t={token}&r={base64url.encode(secret)}&frk={frk.link}"


def parse_accept_fragment(link: str) -> tuple[str, bytes, bytes]:
    """``(token, R, frk fingerprint)`` from an accept link (or its fragment)."""
    fragment = link.split("#", 1)[-1]
    fields = dict(part.split("=", 1) for part in fragment.split("&") if "=" in part)
    secret = base64url.decode(fields.get("r"), SECRET_LEN, "r")
    frk = base64url.decode(fields.get("frk"), 32, "frk")
    token = fields.get("t")
    if (
        token is None
        or secret is None
        or frk is None
        or len(secret) != SECRET_LEN
        or len(frk) != 32
    ):
        raise ValueError("an accept link carries t, r (32 bytes) and frk (32 bytes)")
    return token, secret, frk


@dataclass(frozen=True, slots=True)
class InviteRound:
    invitees: tuple[Invitee, ...]
    epoch: EpochBundle
    welcome: dict[int, Envelope]
    delivery: str

    def crypto_body(self) -> dict[str, object]:
        """The ``crypto`` member of ``POST /matters/{ref}/invites``."""
        out: dict[str, object] = {
            "delivery": self.delivery,
            "certs": [base64url.encode(i.cert.encode()) for i in self.invitees],
            "epoch": self.epoch.body(),
            "welcome": {str(cid): base64url.encode(e.encode()) for cid, e in self.welcome.items()},
        }
        if self.delivery == "portal":
            out["secrets"] = {str(i.contact_id): base64url.encode(i.secret) for i in self.invitees}
        return out


def invite_round(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    welcomes: Sequence[tuple[int, Body]],
    delivery: str = "own_mail",
    now_ms: int,
    rng: Rng = system_rng,
) -> InviteRound:
    """Keys, certificates, the next epoch and an encrypted welcome per invited contact.

    ``d`` must hold the matter's verified chain; the new epoch is applied to
    it (so the welcomes are sealed under it).
    """
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery is one of {DELIVERIES}")
    invitees = tuple(_new_invitee(actor, matter, cid, now_ms, rng) for cid, _ in welcomes)
    for inv in invitees:
        d.add_certificate(inv.cert, now_ms)
    new_users = {inv.uid for inv in invitees}
    members = [m for m in current_members(d, matter) if m.user not in new_users]
    bundle = next_epoch(
        d,
        actor,
        matter=matter,
        members=[*members, *(i.member for i in invitees)],
        now_ms=now_ms,
        rng=rng,
    )
    bundle.apply(d, now_ms)
    welcome = {
        cid: d.seal_message(
            actor.identity,
            sender_id=actor.uid,
            matter=matter,
            thread=welcome_thread(cid),
            plaintext=body.encode(),
            ts_ms=now_ms,
            ctype=CTYPE_BODY,
            rng=rng,
        )
        for cid, body in welcomes
    }
    return InviteRound(invitees, bundle, welcome, delivery)


def removal(
    d: Directory, actor: Actor, *, matter: str, user: str, now_ms: int, rng: Rng = system_rng
) -> EpochBundle:
    """The next epoch without ``user`` (applied to ``d``)."""
    members = [m for m in current_members(d, matter) if m.user != user]
    bundle = next_epoch(d, actor, matter=matter, members=members, now_ms=now_ms, rng=rng)
    bundle.apply(d, now_ms)
    return bundle


@dataclass(frozen=True, slots=True)
class KeyReplacement:
    """A client's new key in place of the old: certificate, next epoch, history, revocations."""

    cert: Certificate
    epoch: EpochBundle
    history: tuple[Wrap, ...]
    revocations: tuple[Revocation, ...]

    def certs_body(self) -> dict[str, object]:
        return {"certs": [base64url.encode(self.cert.encode())]}

    def wraps_body(self) -> dict[str, object]:
        return {"wraps": [base64url.encode(w.encode()) for w in self.history]}

    def revocations_body(self) -> dict[str, object]:
        return {"revocations": [base64url.encode(r.encode()) for r in self.revocations]}


@dataclass(frozen=True, slots=True)
class Regeneration(KeyReplacement):
    """A replacement whose new key comes from a new invite secret ``R'``."""

    invitee: Invitee

    def crypto_body(self, delivery: str = "own_mail") -> dict[str, object]:
        """The ``crypto`` member of ``POST /invites/{id}/regenerate`` (or ``resend``): the new
        key's certificate, the next epoch with its wraps and the history wraps, the revocations."""
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery is one of {DELIVERIES}")
        epoch = self.epoch.body()
        epoch["wraps"] = [base64url.encode(w.encode()) for w in (*self.epoch.wraps, *self.history)]
        out: dict[str, object] = {
            "delivery": delivery,
            "epoch": epoch,
            **self.certs_body(),
            **self.revocations_body(),
        }
        if delivery == "portal":
            out["secrets"] = {str(self.invitee.contact_id): base64url.encode(self.invitee.secret)}
        return out


def regenerate(
    d: Directory, actor: Actor, *, matter: str, contact_id: int, now_ms: int, rng: Rng = system_rng
) -> Regeneration:
    """New secret ``R'`` and key; history re-wrapped to it; next epoch without the old key."""
    inv = _new_invitee(actor, matter, contact_id, now_ms, rng)
    r = replace_key(d, actor, matter=matter, cert=inv.cert, now_ms=now_ms, rng=rng)
    return Regeneration(r.cert, r.epoch, r.history, r.revocations, inv)


def replace_key(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    cert: Certificate,
    now_ms: int,
    history: bool = True,
    rng: Rng = system_rng,
) -> KeyReplacement:
    """The client's newly certified key (``cert``) in place of every live old one:
    (``history``) the epochs they were in re-wrapped to it, the next epoch with it,
    and the old keys revoked from now (what they signed before stays valid)."""
    user, new = cert.body.user, cert.body.public
    d.add_certificate(cert, now_ms)
    member = Member(user, new.kid, Role.CLIENT)
    current = current_members(d, matter)
    old = [kid for kid in _live_keys(d, matter, user, now_ms) if kid != new.kid]
    rewrapped = (
        rewrap_history(
            d, actor, matter=matter, user=user, new_member=member, now_ms=now_ms, rng=rng
        )
        if history
        else ()
    )
    members = [m for m in current if m.user != user] + [member]
    bundle = next_epoch(d, actor, matter=matter, members=members, now_ms=now_ms, rng=rng)
    bundle.apply(d, now_ms)
    revocations = tuple(
        revoke(
            RevocationBody(
                actor.firm,
                user,
                kid,
                d.certificate(user, kid, now_ms).serial,
                now_ms,
                actor.uid,
                actor.kid,
            ),
            actor.identity,
        )
        for kid in old
    )
    return KeyReplacement(cert, bundle, rewrapped, revocations)


# ---- portal delivery: the handover to a fresh key and its 6-digit code ----------------


def hand_over(invite: Actor, *, now_ms: int, rng: Rng = system_rng) -> tuple[IdentityKey, Handover]:
    """A client: a fresh identity and the handover the invite key signs for it."""
    fresh = IdentityKey.generate(rng)
    body = HandoverBody(invite.firm, invite.uid, invite.kid, fresh.public, now_ms)
    return fresh, sign_handover(body, invite.identity)


def digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


def confirm_handover(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    contact_id: int,
    handover: bytes,
    code: str,
    now_ms: int,
    rng: Rng = system_rng,
) -> KeyReplacement:
    """Staff: the handover must be signed by the client's certified key in the matter's
    current epoch, and ``code`` (read out by the client) must be the 6-digit code of the
    key it names; then that key replaces the invite key (no history re-wraps: the
    client keeps the invite key to read what came before)."""
    user = of_kind("contact", contact_id)
    old = [m for m in current_members(d, matter) if m.user == user]
    if len(old) != 1:
        raise Uncertified(f"{user} is not a member of the current epoch of {matter}")
    h = Handover.decode(handover)
    old_public = d.certificate(user, old[0].kid, now_ms).public
    body = verify_handover(h, old_public, firm=actor.firm, user=user)
    wanted = digits(sas_code(actor.firm, user, body.new))
    if len(digits(code)) != len(wanted) or not hmac.compare_digest(digits(code), wanted):
        raise RecoveryInvalid("the verification code does not match the handed-over key")
    cert = client_certificate(actor, matter=matter, user=user, public=body.new, now_ms=now_ms)
    return replace_key(d, actor, matter=matter, cert=cert, now_ms=now_ms, rng=rng)


def _live_keys(d: Directory, matter: str, user: str, now_ms: int) -> list[bytes]:
    """Every still-valid key of ``user`` in any epoch of ``matter`` (all are revoked)."""
    kids = {
        m.kid
        for body in d.matter(matter).manifests.values()
        for m in body.members
        if m.user == user
    }
    live: list[bytes] = []
    for kid in sorted(kids):
        try:
            d.certificate(user, kid, now_ms)
        except CryptoInvalid:
            continue
        live.append(kid)
    return live
