"""Core (no I/O): a client's second matter (docs/keys.md "A second matter").

A contact who already has an identity (certified in a matter of the firm,
in the key backup under their password) is invited to another matter. The
invite round is the ordinary one -- staff cannot know which key the client
will bring -- so the new epoch and welcome are wrapped to the invite key of
that link's ``R``. The client accepts with the existing password, reads and
writes there with the invite key at once, and has the invite key sign a
**binding**: an ``RTK1`` handover naming the identity the client already
holds. A staff member then certifies that identity for the second matter as
well (one certificate with both scopes and a higher serial: verifiers keep
only the newest certificate of a key), moves the matter to an epoch with
it, re-wraps the history and revokes the invite key. No code is compared:
the named key is already the contact's certified key, so a server that
knew ``R`` (portal delivery) can only bind the matter to the client's own
key; a handover to any other key is an ordinary one (its code is compared).
"""

from __future__ import annotations

from rtportal.crypto.certs import CertBody, Certificate, Flag, Role, issue
from rtportal.crypto.directory import Directory
from rtportal.crypto.errors import Uncertified
from rtportal.crypto.keys import IdentityKey, IdentityPublic
from rtportal.crypto.recovery import Handover, HandoverBody, sign_handover, verify_handover
from rtportal.crypto.rng import Rng, system_rng
from rtportal.errors import CryptoInvalid
from rtportal.keys.ids import of_kind
from rtportal.sdk.actor import Actor
from rtportal.sdk.epochs import current_members
from rtportal.sdk.invitekeys import KeyReplacement, replace_key

__all__ = ["bind", "bound_key", "confirm_binding", "widened_certificate"]


def bind(
    invite: IdentityKey, *, firm: str, user: str, identity: IdentityPublic, now_ms: int
) -> Handover:
    """A client: the invite key names the identity I already have."""
    return sign_handover(HandoverBody(firm, user, invite.kid, identity, now_ms), invite)


def widened_certificate(actor: Actor, held: CertBody, matter: str, now_ms: int) -> Certificate:
    """The client key of ``held`` certified for ``matter`` too (its other scopes kept)."""
    body = CertBody(
        actor.firm,
        Role.CLIENT,
        held.user,
        held.public.x_pk,
        held.public.ed_pk,
        max(now_ms, held.serial + 1),  # replaces the narrower certificate in every verifier
        now_ms,
        0,
        Flag(0),
        tuple(sorted({*held.scopes, matter})),
        actor.uid,
        actor.kid,
    )
    return issue(body, actor.identity)


def bound_key(
    d: Directory, *, firm: str, user: str, matter: str, handover: Handover, now_ms: int
) -> CertBody | None:
    """The certificate of the key ``handover`` binds ``user``'s invite key in ``matter`` to,
    when it is a binding: signed by the user's one key in the current epoch and naming a key
    of theirs ``d`` holds certified. ``None`` for a handover to a key not certified yet (an
    ordinary handover: its code must be compared) or one that is not about this matter."""
    current = [m for m in current_members(d, matter) if m.user == user]
    if len(current) != 1 or current[0].kid != handover.body.old_kid:
        return None
    old = d.certificate(user, current[0].kid, now_ms)
    new = verify_handover(handover, old.public, firm=firm, user=user).new
    try:
        held = d.certificate(user, new.kid, now_ms)
    except CryptoInvalid:
        return None
    return held if held.public == new else None


def confirm_binding(
    d: Directory,
    actor: Actor,
    *,
    matter: str,
    contact_id: int,
    handover: bytes,
    now_ms: int,
    rng: Rng = system_rng,
) -> KeyReplacement:
    """Staff: the contact's certified identity in place of the invite key in ``matter``
    (certificate widened, next epoch, history re-wrapped, invite key revoked)."""
    user = of_kind("contact", contact_id)
    h = Handover.decode(handover)
    held = bound_key(d, firm=actor.firm, user=user, matter=matter, handover=h, now_ms=now_ms)
    if held is None:
        raise Uncertified(f"{user}'s handover in {matter} names no key certified for them")
    cert = widened_certificate(actor, held, matter, now_ms)
    return replace_key(d, actor, matter=matter, cert=cert, now_ms=now_ms, rng=rng)
