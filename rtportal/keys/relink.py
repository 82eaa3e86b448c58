"""A resend or regeneration in an end-to-end encrypted firm: a new invite secret ``R'``.

docs/keys.md "Regenerate login details / lost password". Only the staff
browser can make ``R'``, so the request carries ``crypto: {delivery, certs,
epoch: {manifest, head, wraps}, revocations, secrets?: {<contact id>: R'}}``:
the certificate of the key ``R'`` determines, the matter's next epoch with
that key and without the contact's previous ones, the wraps of that epoch
and the history wraps to the new key (``checks.history_wrap``), and the
client revocation of every previous key. In the access change's transaction
(password cleared, sessions ended, new link) the epoch is stored as
``POST /keys/matters/{ref}/epochs`` would, the revocations as ``POST
/keys/client-revocations`` would, and the server then requires that the
contact's only usable key in the matter is the new one. A firm without a
root key resends and regenerates without keys (docs/access.md); ``crypto``
there is ``frk_missing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtportal.access import invites
from rtportal.access.invites import Closing, LinkKeys, Sent
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.manifest import Manifest
from rtportal.db.models import Matter
from rtportal.errors import BadRequest, E2eeRequired, FrkMissing
from rtportal.events.unit import Unit
from rtportal.keys import epochs, ids, store
from rtportal.keys.firmkeys import add_client_revocations
from rtportal.keys.invites import parse_epoch_part, parse_secret
from rtportal.keys.records import Limits, raw_list
from rtportal.notify.outbox import Notifier
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = ["RelinkCrypto", "parse_relink_crypto", "relink"]

_FIELDS = {"delivery", "certs", "epoch", "revocations", "secrets"}


@dataclass(frozen=True, slots=True)
class RelinkCrypto:
    delivery: str
    certs: list[bytes]
    manifest: bytes
    head: bytes
    wraps: list[bytes]
    revocations: list[bytes]
    secrets: dict[str, str]  # contact id (text) -> R'


def parse_relink_crypto(value: object) -> RelinkCrypto | None:
    """The request's ``crypto`` object (``None`` when absent)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - _FIELDS:
        raise BadRequest(
            "crypto: must be {delivery, certs, epoch, revocations, secrets?}", field="crypto"
        )
    part = parse_epoch_part(value)
    secrets = value.get("secrets") or {}
    if not isinstance(secrets, dict):
        raise BadRequest("crypto.secrets: an object keyed by contact id", field="crypto.secrets")
    return RelinkCrypto(
        delivery=part.delivery,
        certs=part.certs,
        manifest=part.manifest,
        head=part.head,
        wraps=part.wraps,
        revocations=raw_list(
            value.get("revocations"),
            Limits.REVOCATION,
            "crypto.revocations",
            Limits.CERTS_PER_REQUEST,
        ),
        secrets={str(k): parse_secret(v, f"crypto.secrets.{k}") for k, v in secrets.items()},
    )


async def relink(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    invite_id: object,
    method: str | None,
    address: str | None,
    crypto: RelinkCrypto | None,
    act: Literal["resend", "regenerate"],
) -> tuple[Sent, Closing | None]:
    """``invites.resend`` / ``invites.regenerate``, with a new key when the firm has a root key."""
    frk = await store.frk(unit.session, principal.firm_id)
    if frk is None:
        if crypto is not None:
            raise FrkMissing("the firm has no root key: resend or regenerate without crypto")
        return await _access(unit, settings, notifier, principal, invite_id, method, address, act)
    if crypto is None:
        raise E2eeRequired("this firm is end-to-end encrypted: the request needs its crypto object")
    invite = await invites.load_invite(unit.session, principal, invite_id)
    wanted = {str(invite.contact_id)} if crypto.delivery == "portal" else set()
    if set(crypto.secrets) != wanted:
        raise BadRequest(
            "crypto.secrets: the contact's R' for delivery portal, none for own_mail",
            field="crypto.secrets",
        )
    keys = LinkKeys(crypto.delivery, frk.link, crypto.secrets.get(str(invite.contact_id)))
    sent, closing = await _access(
        unit, settings, notifier, principal, invite_id, method, address, act, keys
    )
    matter = await unit.session.get(Matter, invite.matter_id)
    assert matter is not None
    await _new_key(unit, principal, matter, ids.of_kind("contact", invite.contact_id), crypto)
    return sent, closing


async def _access(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    invite_id: object,
    method: str | None,
    address: str | None,
    act: Literal["resend", "regenerate"],
    keys: LinkKeys | None = None,
) -> tuple[Sent, Closing | None]:
    if act == "resend":
        sent = await invites.resend(
            unit, settings, notifier, principal, invite_id, method, address, keys
        )
        return sent, None
    return await invites.regenerate(
        unit, settings, notifier, principal, invite_id, method, address, keys
    )


async def _new_key(
    unit: Unit, principal: Principal, matter: Matter, user: str, crypto: RelinkCrypto
) -> None:
    """The next epoch with ``user``'s new key and the old keys revoked, then the check
    that the new key is the only one of ``user`` usable in the matter."""
    session = unit.session
    await epochs.post_epoch(
        unit, principal, matter, crypto.manifest, crypto.head, crypto.wraps, crypto.certs
    )
    await add_client_revocations(unit, principal, crypto.revocations)
    # post_epoch decoded and checked every certificate; these are the new ones of ``user``
    certified_now = {
        c.body.kid
        for c in map(Certificate.decode, crypto.certs)
        if c.body.user == user and c.body.role is Role.CLIENT
    }
    newest = await store.newest_manifest(session, matter.id)
    assert newest is not None
    mine = {m.kid for m in Manifest.decode(newest.record).body.members if m.user == user}
    if len(mine) != 1 or not mine <= certified_now:
        raise BadRequest(
            f"crypto.epoch.manifest: must hold {user} with exactly the newly certified key",
            field="crypto.epoch.manifest",
            reason="not_the_new_key",
        )
    earlier = {
        c.kid
        for c in await store.certs_of(session, principal.firm_id, user)
        if c.role == int(Role.CLIENT) and matter.reference in c.scopes.split()
    }
    for kid in sorted(earlier - mine):
        if await store.certified(session, principal.firm_id, user, kid, matter.reference):
            raise BadRequest(
                f"crypto.revocations: {user}'s previous key is not revoked",
                field="crypto.revocations",
                reason="old_key_not_revoked",
            )
