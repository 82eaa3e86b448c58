"""The checks of signed records against the directory's stored certificates.

A record's signer must be the caller (its rtp1 id) signing with a
certified, unrevoked key (``key_not_certified`` otherwise); the signature
must verify with that certificate's key. Client certificates must name a
contact of the firm linked to every matter in their scope, and be issued by
the caller under a certificate that may certify clients. Wraps must come
from the caller, address a member of the epoch they wrap (or the escrow
key), and fit their matter and kind. A client's history is the exception
(``history_wrap``): a wrap of epoch ``e`` may go to a key that is not in
``e`` when the client was a member of ``e`` under another key and the new
key is a member of the matter's newest epoch, made with ``share_history``
(a regenerated or re-sent client reads what it could read before).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import roles
from rtportal.crypto.certs import Certificate, Flag
from rtportal.crypto.manifest import Manifest
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, Wrap, WrapKind
from rtportal.db.models import (
    Contact,
    KeyCert,
    KeyWrap,
    Matter,
    MatterApplicant,
    MatterMember,
)
from rtportal.errors import BadRequest, Forbidden, KeyNotCertified, NotFound
from rtportal.keys import ids, records, store
from rtportal.principal import Principal

__all__ = ["check_client_cert", "check_wraps", "history_wrap", "signer_cert", "wrap_rows"]


async def signer_cert(
    session: AsyncSession,
    principal: Principal,
    user: str,
    kid: bytes,
    field: str,
    *,
    matter: str | None = None,
) -> Certificate:
    """The certificate of the caller's key ``kid`` (``user`` must be the caller)."""
    if user != ids.of(principal):
        raise KeyNotCertified(f"{field}: signed by {user}, not by the caller", field=field)
    row = await store.certified(session, principal.firm_id, user, kid, matter)
    if row is None:
        raise KeyNotCertified(f"{field}: the signing key is not certified", field=field)
    return Certificate.decode(row.record)


async def _linked(session: AsyncSession, matter: Matter, contact_id: int) -> bool:
    applicant = await session.scalar(
        select(MatterApplicant.id).where(
            MatterApplicant.matter_id == matter.id, MatterApplicant.contact_id == contact_id
        )
    )
    if applicant is not None:
        return True
    member = await session.scalar(
        select(MatterMember.id).where(
            MatterMember.matter_id == matter.id,
            MatterMember.principal_kind == "contact",
            MatterMember.principal_id == contact_id,
        )
    )
    return member is not None


async def _held_scopes(session: AsyncSession, firm_id: int, user: str, kid: bytes) -> set[str]:
    """The matters ``user``'s key ``kid`` is certified for now (unrevoked certificates)."""
    rows = await session.execute(
        select(KeyCert.scopes).where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.kid == kid,
            KeyCert.revoked_at.is_(None),
        )
    )
    return {ref for scopes in rows.scalars() for ref in scopes.split()}


async def check_client_cert(
    session: AsyncSession,
    principal: Principal,
    cert: Certificate,
    field: str,
    *,
    invited: Collection[tuple[int, int]] = (),
) -> list[Matter]:
    """A client certificate the caller may store; the matters of its scope.

    ``invited``: ``(matter id, contact id)`` pairs of the invite round being
    posted (the contact is linked to the matter in the same transaction).
    """
    body = cert.body
    parsed = ids.parse(body.user)
    if parsed is None or parsed[0] != "contact":
        raise BadRequest(f"{field}: a client certificate names a contact (c<id>)", field=field)
    contact = await session.get(Contact, parsed[1])
    if contact is None or contact.firm_id != principal.firm_id:
        raise BadRequest(f"{field}: no such contact", field=field, reason="unknown_user")
    if not body.scopes:
        raise BadRequest(f"{field}: a client certificate is scoped to matters", field=field)
    held = await _held_scopes(session, principal.firm_id, body.user, body.kid)
    # A scope the key already holds grants nothing new: a staff member of the second
    # matter widens a contact's key without managing the first (docs/keys.md "A second
    # matter"), and a contact re-invited there after a removal binds to the same key.
    # Only when the certificate keeps every held scope (verifiers keep only the newest
    # certificate of a key, so a dropped scope would cut the contact out of that matter)
    # and the caller vouches through one of its matters: manages it, the contact its client.
    keeps = held.issubset(body.scopes)
    vouched = False
    matters: list[Matter] = []
    for ref in body.scopes:
        matter = await session.scalar(
            select(Matter).where(Matter.reference == ref, Matter.firm_id == principal.firm_id)
        )
        if matter is None:
            raise BadRequest(f"{field}: no such matter {ref}", field=field, reason="unknown_matter")
        if keeps and ref in held:
            matters.append(matter)
            vouched = vouched or (
                roles.allowed(principal, "portal.manage", matter)
                and (
                    (matter.id, contact.id) in invited or await _linked(session, matter, contact.id)
                )
            )
            continue
        roles.require(principal, "portal.manage", matter)
        if (matter.id, contact.id) not in invited and not await _linked(
            session, matter, contact.id
        ):
            raise BadRequest(
                f"{field}: the contact is not a client of {ref}", field=field, reason="not_a_client"
            )
        vouched = True
        matters.append(matter)
    if not vouched:
        if principal.kind != "staff":
            raise NotFound("no such endpoint or object")  # as roles.require answers clients
        raise Forbidden(
            f"{field}: no matter of its scope is one you manage with the contact its client"
        )
    for ref in sorted(held.difference(body.scopes)):
        # a narrower certificate replaces the wider one in every verifier: it takes the
        # contact's key out of the dropped matter, which only its managers may do
        dropped = await session.scalar(
            select(Matter).where(Matter.reference == ref, Matter.firm_id == principal.firm_id)
        )
        if dropped is not None:
            roles.require(principal, "portal.manage", dropped)
    issuer = await signer_cert(session, principal, body.issuer, body.issuer_kid, field)
    if not issuer.body.flags & Flag.CERTIFY_CLIENTS:
        raise KeyNotCertified(f"{field}: the issuer may not certify clients", field=field)
    records.verify(issuer.body.ed_pk, cert.sig, body.encode(), field)
    return matters


async def check_wraps(
    session: AsyncSession,
    principal: Principal,
    wraps: list[Wrap],
    *,
    matter: str,
    manifests: dict[int, Manifest] | None = None,
) -> None:
    """Wraps of ``matter`` (an MEK of one of ``manifests``' epochs, to a member or
    to the escrow key) or of ``#firm`` (firm keys to a certified staff key),
    each signed by the caller."""
    for i, w in enumerate(wraps):
        field = f"wraps[{i}]"
        info = w.info
        if info.matter != matter:
            raise BadRequest(f"{field}: a wrap of another matter", field=field)
        if matter == FIRM_MATTER:
            recipient = ids.parse(info.recipient)
            if info.kind is not WrapKind.FIRM or recipient is None or recipient[0] == "contact":
                raise BadRequest(f"{field}: firm keys go to staff and bots", field=field)
            row = await store.certified(
                session, principal.firm_id, info.recipient, info.recipient_kid
            )
            if row is None:
                raise KeyNotCertified(f"{field}: the recipient key is not certified", field=field)
            if await store.escrow_kid(session, principal.firm_id, info.epoch) is None:
                raise BadRequest(
                    f"{field}: no escrow record of FEK version {info.epoch}", field=field
                )
        else:
            manifest = (manifests or {}).get(info.epoch)
            if info.kind is not WrapKind.MEK or manifest is None:
                raise BadRequest(f"{field}: no such epoch of this matter", field=field)
            if (
                info.recipient != FEK_RECIPIENT
                and manifest.body.member(info.recipient, info.recipient_kid) is None
                and not history_wrap(
                    manifests or {}, info.epoch, info.recipient, info.recipient_kid
                )
            ):
                raise BadRequest(
                    f"{field}: the recipient is not a member of the epoch", field=field
                )
            if info.recipient == FEK_RECIPIENT:
                fek = await store.escrow_kid(session, principal.firm_id, manifest.body.fek_version)
                if fek is not None and fek != info.recipient_kid:
                    raise BadRequest(
                        f"{field}: not the escrow key of the epoch's FEK version", field=field
                    )
        cert = await signer_cert(session, principal, w.wrapper, w.wrapper_kid, field)
        records.verify(cert.body.ed_pk, w.sig, w.sig_input(), field)


def history_wrap(manifests: dict[int, Manifest], epoch: int, user: str, kid: bytes) -> bool:
    """May ``user``'s key ``kid`` get epoch ``epoch``'s key though it is not in that epoch?

    Yes when ``user`` was a member of ``epoch`` (under any key) and ``(user,
    kid)`` is a member of the newest epoch, whose manifest shares history:
    only what the client could read before, only while it is a member now
    (a removed client gets nothing more), never epochs it was left out of.
    """
    if not manifests or epoch not in manifests:
        return False
    newest = manifests[max(manifests)].body
    if not newest.share_history or newest.member(user, kid) is None:
        return False
    return any(m.user == user for m in manifests[epoch].body.members)


def wrap_rows(firm_id: int, matter_id: int | None, wraps: list[Wrap]) -> list[KeyWrap]:
    return [
        KeyWrap(
            firm_id=firm_id,
            matter_id=matter_id,
            epoch=w.info.epoch,
            recipient=w.info.recipient,
            record=w.encode(),
        )
        for w in wraps
    ]
