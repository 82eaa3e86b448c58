"""A client's handover to a fresh identity key (docs/keys.md "Portal on / client invited").

An invite the portal delivered put the invite secret ``R`` through the
server, so the client's browser makes a fresh identity after acceptance
and registers it with an ``RTKX`` handover its invite key signs. The
directory checks what it can (the record names this firm and the caller,
the old key is the caller's certified, unrevoked client key and signed
it, the new key is the one being registered), stores it append-only and
announces it to staff, who compare its 6-digit code with the client by
phone and certify the fresh key.

Whether a handover is **verified** is never a flag anyone sets: it is read
from the directory -- the contact's newest certified, unrevoked key in the
matter is the handover's new key (only a staff browser that checked the
code makes that certificate).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.base64url import encode
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.keys import IdentityPublic
from rtportal.crypto.recovery import Handover, verify_handover
from rtportal.db.models import Firm, KeyCert, KeyHandover, Matter
from rtportal.errors import BadRequest, KeyNotCertified
from rtportal.events.unit import Unit
from rtportal.keys import ids, records, store
from rtportal.keys.announce import announce
from rtportal.principal import Principal

__all__ = ["HandoverState", "accept", "state_of"]


async def accept(
    unit: Unit, principal: Principal, public: IdentityPublic, public_keys: bytes, data: bytes
) -> None:
    """Check and store the caller's handover to ``public``; announce it to staff."""
    if principal.kind != "contact":
        raise BadRequest("handover: only clients hand over an invite key", field="handover")
    firm = await unit.session.get(Firm, principal.firm_id)
    assert firm is not None
    user = ids.of(principal)
    with records.decoding("handover"):
        handover = Handover.decode(data)
    body = handover.body
    if body.firm != firm.slug or body.user != user:
        raise BadRequest(
            "handover: names another firm or user", field="handover", reason="crypto_recovery"
        )
    row = await store.certified(unit.session, firm.id, user, body.old_kid)
    if row is None or row.role != int(Role.CLIENT):
        raise KeyNotCertified("handover: the old key is not a certified key of yours")
    old = Certificate.decode(row.record).body
    with records.decoding("handover"):
        verify_handover(handover, old.public, firm=firm.slug, user=user)
    if body.new != public:
        raise BadRequest(
            "handover: names another key than public_keys",
            field="handover",
            reason="crypto_recovery",
        )
    unit.session.add(
        KeyHandover(
            firm_id=firm.id,
            principal=user,
            old_kid=body.old_kid,
            new_kid=public.kid,
            public_keys=public_keys,
            record=data,
        )
    )
    await unit.session.flush()
    matters = []
    for ref in old.scopes:
        matter = await unit.session.scalar(
            select(Matter).where(Matter.reference == ref, Matter.firm_id == firm.id)
        )
        if matter is not None:
            matters.append(matter)
    await announce(unit, principal, matters, "handover", audience="staff", user=user)


@dataclass(frozen=True, slots=True)
class HandoverState:
    handover: dict[str, object] | None
    verified: bool


async def _newest_cert(
    session: AsyncSession, firm_id: int, user: str, matter: str
) -> KeyCert | None:
    rows = await session.execute(
        select(KeyCert)
        .where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.role == int(Role.CLIENT),
            KeyCert.revoked_at.is_(None),
        )
        .order_by(KeyCert.id.desc())
    )
    for row in rows.scalars():
        if matter in row.scopes.split():
            return row
    return None


async def _newest_handover(
    session: AsyncSession, firm_id: int, user: str, matter: str
) -> KeyHandover | None:
    """The newest handover signed by a key of ``user`` certified (then or now) in ``matter``:
    a contact in several matters hands over (or binds, docs/keys.md "A second matter")
    from each matter's invite key separately."""
    certs = await session.execute(
        select(KeyCert.kid, KeyCert.scopes).where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.role == int(Role.CLIENT),
        )
    )
    kids = {kid for kid, scopes in certs.all() if matter in scopes.split()}
    rows = await session.execute(
        select(KeyHandover)
        .where(KeyHandover.firm_id == firm_id, KeyHandover.principal == user)
        .order_by(KeyHandover.id.desc())
    )
    for row in rows.scalars():
        if row.old_kid in kids:
            return row
    return None


async def _certified_in(session: AsyncSession, firm_id: int, user: str, kid: bytes) -> list[str]:
    rows = await session.execute(
        select(KeyCert.scopes).where(
            KeyCert.firm_id == firm_id,
            KeyCert.principal == user,
            KeyCert.kid == kid,
            KeyCert.revoked_at.is_(None),
        )
    )
    return sorted({ref for scopes in rows.scalars() for ref in scopes.split()})


async def state_of(
    session: AsyncSession, firm_id: int, matter: Matter, contact_id: int
) -> HandoverState | None:
    """The contact's newest handover and whether staff certified its key in ``matter``;
    ``None`` when the contact has no certified key in the matter (not end-to-end)."""
    user = ids.of_kind("contact", contact_id)
    newest = await _newest_cert(session, firm_id, user, matter.reference)
    latest = await _newest_handover(session, firm_id, user, matter.reference)
    if newest is None and latest is None:
        return None
    if latest is None:
        return HandoverState(None, False)
    shown: dict[str, object] = {
        "public_keys": encode(latest.public_keys),
        "kid": encode(latest.new_kid),
        "record": encode(latest.record),
        "created_at": latest.created_at.isoformat().replace("+00:00", "Z"),
        # where the named key is certified already: a binding (docs/keys.md "A second
        # matter"); a staff browser verifies those matters' records before it trusts this
        "certified_in": await _certified_in(session, firm_id, user, latest.new_kid),
    }
    verified = newest is not None and newest.kid == latest.new_kid
    return HandoverState(shown, verified)


async def annotate(session: AsyncSession, matter: Matter, rows: list[dict[str, object]]) -> None:
    """Add ``handover`` and ``verified`` to the invite list's rows (GET invites of a matter).

    ``verified``: ``null`` when the contact has no key in the matter (a firm
    without end-to-end encryption), ``true`` for an own-mail invite (the
    server never saw ``R``), else whether staff certified the handover's key.
    """
    states: dict[int, HandoverState | None] = {}
    for row in rows:
        contact = row["contact"]
        assert isinstance(contact, dict)
        cid = int(contact["id"])
        if cid not in states:
            states[cid] = await state_of(session, matter.firm_id, matter, cid)
        state = states[cid]
        if state is None:
            row["handover"], row["verified"] = None, None
        elif row.get("sent_by") == "own_mail":
            # nothing to compare; a binding to the contact's identity (a second matter)
            # is shown so that a staff browser certifies that identity here too
            row["handover"], row["verified"] = state.handover, True
        else:
            row["handover"], row["verified"] = state.handover, state.verified
