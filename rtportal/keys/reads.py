"""What a caller may read of the directory (the GET answers of docs/keys.md).

Records go out as unpadded base64url. Clients get only the wraps addressed
to them and only the matters they are members of (``can_access``: 404
otherwise); staff also get every ``#fek`` wrap of a matter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.base64url import encode
from rtportal.crypto.certs import Role
from rtportal.crypto.keys import IdentityPublic
from rtportal.crypto.wrap import FEK_RECIPIENT
from rtportal.db.models import Credential, KeyRoot, Matter, StaffUser
from rtportal.errors import BadRequest
from rtportal.keys import ids, records, store
from rtportal.principal import Principal

__all__ = ["firm_body", "matter_body", "me_body", "pending_body"]


def _b64(value: bytes | None) -> str | None:
    return None if value is None else encode(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


async def firm_body(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    firm_id = principal.firm_id
    root = await session.get(KeyRoot, firm_id)
    newest = await store.newest_revocation_list(session, firm_id)
    me = ids.of(principal)
    client = (
        [encode(r.record) for r in await store.client_revocations(session, firm_id)]
        if principal.kind == "staff"
        else []  # clients and bots read their matters' client revocations there
    )
    certs = await store.firm_certs(session, firm_id, [int(Role.STAFF), int(Role.BOT)])
    wraps = await store.wraps_for(session, firm_id, None, [me])
    return {
        "frk": None if root is None else encode(root.record),
        "revocations": {
            "list": None if newest is None else encode(newest.record),
            "client": client,
        },
        "escrow": [encode(r.record) for r in await store.escrow_records(session, firm_id)],
        "certs": [encode(c.record) for c in certs],
        "wraps": [encode(w.record) for w in wraps],
    }


async def matter_body(
    session: AsyncSession, principal: Principal, matter: Matter, since: int
) -> dict[str, Any]:
    manifests = await store.manifests_since(session, matter.id, since)
    head = await store.head_of(session, matter.id)
    certs = await store.client_certs_of_matter(
        session, principal.firm_id, matter.reference, int(Role.CLIENT)
    )
    clients = {(c.principal, c.kid) for c in certs}
    revocations = [
        encode(r.record)
        for r in await store.client_revocations(session, principal.firm_id)
        if (r.principal, r.kid) in clients
    ]
    recipients = [ids.of(principal)]
    if principal.kind == "staff":
        recipients.append(FEK_RECIPIENT)
    wraps = await store.wraps_for(session, principal.firm_id, matter.id, recipients, since)
    return {
        "matter": matter.reference,
        "manifests": [encode(m.record) for m in manifests],
        "head": None if head is None else encode(head.record),
        "certs": [encode(c.record) for c in certs],
        "revocations": revocations,
        "wraps": [encode(w.record) for w in wraps],
    }


async def me_body(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    credential = None
    if principal.kind != "bot":
        credential = await session.scalar(
            select(Credential).where(
                Credential.principal_kind == principal.kind,
                Credential.principal_id == principal.id,
            )
        )
    certs = await store.certs_of(session, principal.firm_id, ids.of(principal))
    return {
        "user": ids.of(principal),
        "public_keys": _b64(None if credential is None else credential.public_keys),
        "backup": _b64(None if credential is None else credential.key_backup),
        "certs": [encode(c.record) for c in certs],
    }


async def pending_body(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Staff whose registered keys have no certificate yet (the approval queue)."""
    rows = await session.execute(
        select(StaffUser, Credential)
        .join(
            Credential,
            (Credential.principal_kind == "staff") & (Credential.principal_id == StaffUser.id),
        )
        .where(
            StaffUser.firm_id == principal.firm_id,
            StaffUser.status == "active",
            Credential.public_keys.is_not(None),
        )
        .order_by(StaffUser.id)
    )
    out: list[dict[str, Any]] = []
    for staff, credential in rows.all():
        assert credential.public_keys is not None
        try:
            public: IdentityPublic = records.identity(credential.public_keys)
        except BadRequest:  # stored before the directory checked it: not approvable
            continue
        user = ids.of_kind("staff", staff.id)
        if await store.certified(session, principal.firm_id, user, public.kid) is not None:
            continue
        out.append(
            {
                "staff_id": staff.id,
                "user": user,
                "name": staff.display_name,
                "email": staff.email,
                "role": staff.role,
                "public_keys": encode(credential.public_keys),
                "kid": encode(public.kid),
                "registered_at": _iso(credential.password_set_at),
            }
        )
    return out
