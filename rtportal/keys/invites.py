"""The ``crypto`` object of an invite round (docs/keys.md "Portal on / client invited").

A firm with a root key invites only end-to-end encrypted: the round must
carry ``crypto: {delivery, certs, epoch: {manifest, head, wraps},
welcome: {<contact id>: envelope}, secrets?: {<contact id>: R}}``
(``e2ee_required`` otherwise). In the round's transaction the client
certificates and the next epoch are stored (as ``POST /keys/certs`` and
``POST /keys/matters/{ref}/epochs`` would), each welcome envelope is checked
like a message under that epoch, and the invites go out as ``delivery``
says: ``own_mail`` sends nothing and gives the link tokens back;
``portal`` puts ``R`` into the link's fragment (and nowhere else). A firm
without a root key invites without keys (docs/access.md); ``crypto`` there
is ``frk_missing``. ``parse_epoch_part`` and ``parse_secret`` are the parts
of a ``crypto`` object that resend and regenerate (``keys.relink``) share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtportal.access import invites
from rtportal.access.invites import InviteRequest, RoundKeys, Sent
from rtportal.db.models import Matter
from rtportal.errors import BadRequest, E2eeRequired, FrkMissing
from rtportal.events.send import Send
from rtportal.events.unit import Unit
from rtportal.keys import envelopes, epochs, store
from rtportal.keys.records import Limits, raw, raw_list
from rtportal.notify.outbox import Notifier
from rtportal.principal import Principal
from rtportal.settings import Settings

__all__ = [
    "DELIVERIES",
    "EpochPart",
    "RoundCrypto",
    "e2ee_round",
    "link_bodies",
    "parse_crypto",
    "parse_epoch_part",
    "parse_secret",
]

DELIVERIES = ("portal", "own_mail")
SECRET_BYTES = 32
WELCOME_MAX = 64 * 1024


@dataclass(frozen=True, slots=True)
class RoundCrypto:
    delivery: str
    certs: list[bytes]
    manifest: bytes
    head: bytes
    wraps: list[bytes]
    welcome: dict[int, bytes]
    secrets: dict[int, str]


def _by_contact(raw_map: object, field: str) -> dict[int, object]:
    if not isinstance(raw_map, dict):
        raise BadRequest(f"{field}: must be an object keyed by contact id", field=field)
    out: dict[int, object] = {}
    for key, value in raw_map.items():
        if not isinstance(key, str) or not key.isascii() or not key.isdigit() or len(key) > 15:
            raise BadRequest(f"{field}: keys are contact ids", field=field)
        out[int(key)] = value
    return out


@dataclass(frozen=True, slots=True)
class EpochPart:
    """What every ``crypto`` object carries: how the links go out, the client
    certificates and the next epoch's records."""

    delivery: str
    certs: list[bytes]
    manifest: bytes
    head: bytes
    wraps: list[bytes]


def parse_epoch_part(value: dict[str, Any]) -> EpochPart:
    """``delivery``, ``certs`` and ``epoch: {manifest, head, wraps}`` of a ``crypto`` object."""
    delivery = value.get("delivery")
    if delivery not in DELIVERIES:
        raise BadRequest("crypto.delivery: portal or own_mail", field="crypto.delivery")
    epoch = value.get("epoch")
    if not isinstance(epoch, dict) or set(epoch) - {"manifest", "head", "wraps"}:
        raise BadRequest("crypto.epoch: must be {manifest, head, wraps}", field="crypto.epoch")
    return EpochPart(
        delivery=str(delivery),
        certs=raw_list(value.get("certs"), Limits.CERT, "crypto.certs", Limits.CERTS_PER_REQUEST),
        manifest=raw(epoch.get("manifest"), Limits.MANIFEST, "crypto.epoch.manifest"),
        head=raw(epoch.get("head"), Limits.HEAD, "crypto.epoch.head"),
        wraps=raw_list(
            epoch.get("wraps"), Limits.WRAP, "crypto.epoch.wraps", Limits.WRAPS_PER_REQUEST
        ),
    )


def parse_secret(value: object, field: str) -> str:
    """An invite secret ``R``: 32 bytes of base64url, kept in its text form."""
    if len(raw(value, SECRET_BYTES, field)) != SECRET_BYTES:
        raise BadRequest(f"{field}: 32 bytes of base64url", field=field)
    assert isinstance(value, str)
    return value


def parse_crypto(value: object) -> RoundCrypto | None:
    """The round's ``crypto`` object (``None`` when absent)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {
        "delivery",
        "certs",
        "epoch",
        "welcome",
        "secrets",
    }:
        raise BadRequest(
            "crypto: must be {delivery, certs, epoch, welcome, secrets?}", field="crypto"
        )
    part = parse_epoch_part(value)
    welcome = {
        cid: raw(v, WELCOME_MAX, f"crypto.welcome.{cid}")
        for cid, v in _by_contact(value.get("welcome"), "crypto.welcome").items()
    }
    secrets: dict[int, str] = {}
    if value.get("secrets") is not None:
        for cid, v in _by_contact(value["secrets"], "crypto.secrets").items():
            secrets[cid] = parse_secret(v, f"crypto.secrets.{cid}")
    return RoundCrypto(
        part.delivery, part.certs, part.manifest, part.head, part.wraps, welcome, secrets
    )


async def e2ee_round(
    unit: Unit,
    settings: Settings,
    notifier: Notifier,
    principal: Principal,
    matter: Matter,
    requests: list[InviteRequest],
    subject: str | None,
    text: str | None,
    address: str | None,
    crypto: RoundCrypto | None,
) -> Sent:
    """``invites.invite_round``, end-to-end encrypted when the firm has a root key."""
    frk = await store.frk(unit.session, principal.firm_id)
    if frk is None:
        if crypto is not None:
            raise FrkMissing("the firm has no root key: invite without crypto")
        return await invites.invite_round(
            unit, settings, notifier, principal, matter, requests, subject, text, address
        )
    if crypto is None:
        raise E2eeRequired("this firm is end-to-end encrypted: the round needs its crypto object")
    contacts = {r.contact_id for r in requests}
    if set(crypto.welcome) != contacts:
        raise BadRequest("crypto.welcome: one envelope per invited contact", field="crypto.welcome")
    wanted = contacts if crypto.delivery == "portal" else set()
    if set(crypto.secrets) != wanted:
        raise BadRequest(
            "crypto.secrets: one per invited contact for delivery portal, none for own_mail",
            field="crypto.secrets",
        )
    invited = frozenset((matter.id, cid) for cid in contacts)
    epoch = await epochs.post_epoch(
        unit,
        principal,
        matter,
        crypto.manifest,
        crypto.head,
        crypto.wraps,
        crypto.certs,
        invited=invited,
    )
    for cid, blob in crypto.welcome.items():
        send = Send(matter.reference, "welcome", "portal", {"thread": f"welcome-{cid}"}, blob)
        await envelopes.check_send(unit.session, principal, matter, send, epoch)
    keys = RoundKeys(crypto.delivery, frk.link, crypto.welcome, crypto.secrets)
    if crypto.delivery == "own_mail":
        # The server sends nothing, so it keeps none of the staff member's words: the
        # welcome is the envelope, the mail text goes from their own mail client.
        subject = text = None
    return await invites.invite_round(
        unit, settings, notifier, principal, matter, requests, subject, text, address, keys
    )


def link_bodies(sent: Sent, url: str) -> list[dict[str, Any]]:
    """The ``own_mail`` answer: each invite's link token (the caller builds the fragment)."""
    return [
        {"invite": invite_id, "contact_id": cid, "token": token, "url": url}
        for invite_id, cid, token in sent.links
    ]
