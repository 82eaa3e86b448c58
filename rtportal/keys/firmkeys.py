"""Changes to the firm's part of the directory, each in the caller's ``Unit``.

The root key (once), staff / bot / client certificates, the revocation list
and client revocations, escrow records, and a person's own registration
(public keys and key backup). Each writes its rows and its ``keys`` event
in one transaction (``rtportal.keys.announce``); the ``Unit`` publishes
after the commit.
"""

from __future__ import annotations

from sqlalchemy import select

from rtportal.access import roles
from rtportal.access.credentials import Kdf, credential_of
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.keys import FirmRootPublic
from rtportal.crypto.wrap import FIRM_MATTER
from rtportal.db.models import (
    Firm,
    KeyClientRevocation,
    KeyEscrow,
    KeyRevocationList,
    KeyRoot,
    Matter,
    StaffUser,
)
from rtportal.errors import (
    BadRequest,
    FrkExists,
    FrkMissing,
    NotFound,
    PreconditionFailed,
    VersionConflict,
)
from rtportal.events.unit import Unit
from rtportal.keys import handovers, ids, records, store
from rtportal.keys.announce import announce, announce_firm
from rtportal.keys.checks import check_client_cert, check_wraps, signer_cert, wrap_rows
from rtportal.principal import Principal

__all__ = [
    "add_certs",
    "add_client_revocations",
    "add_escrow",
    "firm_of",
    "put_revocation_list",
    "register",
    "require_frk",
    "set_root",
]


async def firm_of(unit: Unit, principal: Principal) -> Firm:
    firm = await unit.session.get(Firm, principal.firm_id)
    assert firm is not None
    return firm


async def require_frk(unit: Unit, principal: Principal) -> FirmRootPublic:
    frk = await store.frk(unit.session, principal.firm_id)
    if frk is None:
        raise FrkMissing("the firm has no root key yet (PUT /api/v1/keys/root)")
    return frk


async def set_root(unit: Unit, principal: Principal, data: bytes) -> FirmRootPublic:
    """The firm root public key, once (``frk_exists`` after)."""
    roles.require(principal, "keys.manage")
    public = records.root(data)
    row = KeyRoot(
        firm_id=principal.firm_id,
        record=public.record(),
        fingerprint=public.fingerprint,
        created_by=principal.id,
    )
    if not await store.insert_once(unit.session, row):
        raise FrkExists("the firm's root key is set (it is set once)")
    await announce_firm(unit, principal, "root")
    return public


async def _staff_or_bot_cert(
    unit: Unit, principal: Principal, cert: Certificate, field: str
) -> None:
    """An FRK-signed staff or bot certificate of a principal of this firm; a staff
    certificate certifies the keys the staff member registered."""
    roles.require(principal, "keys.manage")
    records.verify_frk_cert(cert, await require_frk(unit, principal), field)
    parsed = ids.parse(cert.body.user)
    expected = "bot" if cert.body.role is Role.BOT else "staff"
    row = None if parsed is None else await unit.session.get(StaffUser, parsed[1])
    if (
        parsed is None
        or parsed[0] != expected
        or row is None
        or row.firm_id != principal.firm_id
        or (row.role == "bot") != (expected == "bot")
    ):
        raise BadRequest(
            f"{field}: no such {expected} of this firm", field=field, reason="unknown_user"
        )
    if expected == "staff":
        credential = await credential_of(unit.session, "staff", row.id)
        if credential is None or credential.public_keys != cert.body.public.record():
            raise BadRequest(
                f"{field}: not the keys {cert.body.user} registered",
                field=field,
                reason="keys_not_registered",
            )


async def add_certs(
    unit: Unit,
    principal: Principal,
    certs: list[bytes],
    wraps: list[bytes],
    *,
    invited: frozenset[tuple[int, int]] = frozenset(),
) -> None:
    """Store certificates (and, with staff approvals, firm-key wraps to them)."""
    if principal.kind != "staff":
        raise NotFound("no such endpoint")
    firm = await firm_of(unit, principal)
    decoded = [records.certificate(c, firm.slug, f"certs[{i}]") for i, c in enumerate(certs)]
    for i, cert in enumerate(decoded):
        if cert.body.serial > store.BIGINT_MAX:
            raise BadRequest(f"certs[{i}]: serial out of range", field=f"certs[{i}]")
    scopes: list[list[Matter]] = []
    for i, cert in enumerate(decoded):
        field = f"certs[{i}]"
        if cert.body.role is Role.CLIENT:
            scopes.append(
                await check_client_cert(unit.session, principal, cert, field, invited=invited)
            )
        else:
            await _staff_or_bot_cert(unit, principal, cert, field)
            scopes.append([])
    firm_wraps = [records.wrap(w, firm.slug, f"wraps[{i}]") for i, w in enumerate(wraps)]
    if firm_wraps:
        roles.require(principal, "keys.manage")
    for cert, matters in zip(decoded, scopes, strict=True):
        if not await store.save_cert(unit.session, firm.id, cert):
            continue  # the same certificate again: stored once, announced once
        if cert.body.role is Role.CLIENT:
            await announce(unit, principal, matters, "cert", user=cert.body.user)
        else:
            await announce_firm(unit, principal, "cert", user=cert.body.user)
    # After the certificates: a wrap may go to a key certified in this request.
    await check_wraps(unit.session, principal, firm_wraps, matter=FIRM_MATTER)
    unit.session.add_all(wrap_rows(firm.id, None, firm_wraps))
    await unit.session.flush()


async def put_revocation_list(unit: Unit, principal: Principal, data: bytes) -> int:
    """The next revocation list (``version`` = newest + 1, else ``version_conflict``)."""
    roles.require(principal, "keys.manage")
    firm = await firm_of(unit, principal)
    rl = records.revocation_list(data, firm.slug, await require_frk(unit, principal))
    version = int(rl.body.version)
    newest = await store.newest_revocation_list(unit.session, firm.id)
    current = 0 if newest is None else newest.version
    row = KeyRevocationList(firm_id=firm.id, version=version, record=data)
    if version != current + 1 or not await store.insert_once(unit.session, row):
        raise VersionConflict(f"the next revocation list is version {current + 1}", version=current)
    for entry in rl.body.entries:
        await store.mark_revoked(unit.session, firm.id, entry.user, entry.kid)
    await announce_firm(unit, principal, "revocations", version=version)
    return version


async def add_client_revocations(
    unit: Unit, principal: Principal, revocations: list[bytes]
) -> None:
    """Client keys revoked by the caller (who may manage the portal of their matters)."""
    if principal.kind != "staff":
        raise NotFound("no such endpoint")
    firm = await firm_of(unit, principal)
    for i, data in enumerate(revocations):
        field = f"revocations[{i}]"
        revocation = records.client_revocation(data, firm.slug, field)
        body = revocation.body
        certs = [
            c
            for c in await store.certs_of(unit.session, firm.id, body.user)
            if c.kid == body.kid and c.role == int(Role.CLIENT)
        ]
        if not certs:
            raise BadRequest(f"{field}: no such client key", field=field, reason="unknown_key")
        matters: list[Matter] = []
        for ref in sorted({ref for c in certs for ref in c.scopes.split()}):
            matter = await unit.session.scalar(
                select(Matter).where(Matter.reference == ref, Matter.firm_id == firm.id)
            )
            if matter is not None:
                roles.require(principal, "portal.manage", matter)
                matters.append(matter)
        issuer = await signer_cert(unit.session, principal, body.issuer, body.issuer_kid, field)
        records.verify(issuer.body.ed_pk, revocation.sig, body.encode(), field)
        row = KeyClientRevocation(firm_id=firm.id, principal=body.user, kid=body.kid, record=data)
        if await store.insert_once(unit.session, row):
            await store.mark_revoked(unit.session, firm.id, body.user, body.kid)
            await announce(unit, principal, matters, "revocations", user=body.user)


async def add_escrow(unit: Unit, principal: Principal, data: bytes, wraps: list[bytes]) -> int:
    """A new escrow record (``version`` = newest + 1) and its firm-key wraps to staff."""
    roles.require(principal, "keys.manage")
    firm = await firm_of(unit, principal)
    record = records.escrow_record(data, firm.slug, await require_frk(unit, principal))
    version = int(record.body.version)
    current = await store.newest_escrow_version(unit.session, firm.id)
    row = KeyEscrow(firm_id=firm.id, version=version, record=data)
    if version != current + 1 or not await store.insert_once(unit.session, row):
        raise VersionConflict(f"the next escrow record is version {current + 1}", version=current)
    decoded = [records.wrap(w, firm.slug, f"wraps[{i}]") for i, w in enumerate(wraps)]
    for i, w in enumerate(decoded):
        if w.info.epoch != version:
            raise BadRequest(
                f"wraps[{i}]: wraps the keys of another FEK version", field=f"wraps[{i}]"
            )
    await check_wraps(unit.session, principal, decoded, matter=FIRM_MATTER)
    unit.session.add_all(wrap_rows(firm.id, None, decoded))
    await unit.session.flush()
    await announce_firm(unit, principal, "escrow", audience="staff", version=version)
    return version


async def register(
    unit: Unit,
    principal: Principal,
    public_keys: bytes,
    backup: bytes | None,
    handover: bytes | None = None,
) -> None:
    """The caller's identity public keys and key backup (staff: the approval queue);
    a client's fresh key comes with the handover its invite key signed."""
    if principal.kind == "bot":
        raise NotFound("bots are certified from their key file (POST /api/v1/keys/certs)")
    public = records.identity(public_keys)
    credential = await credential_of(unit.session, principal.kind, principal.id)
    if credential is None:
        raise PreconditionFailed("no_login", "set a password first: the backup is kept with it")
    if backup is not None:
        firm = await firm_of(unit, principal)
        blob = records.backup(backup, firm.slug, ids.of(principal))
        # Made in the same Argon2id run as the login secret (sign-in opens it with
        # that run's KEK): the credential's own salt and parameters.
        kdf = Kdf.of(credential)
        params = blob.params
        if (blob.salt, params.m_kib, params.t, params.p) != (kdf.salt, kdf.m_kib, kdf.t, kdf.p):
            raise BadRequest(
                "backup: not made with this login's salt and parameters",
                field="backup",
                reason="crypto_wrong_context",
            )
    if handover is not None:
        await handovers.accept(unit, principal, public, public_keys, handover)
    changed = credential.public_keys != public_keys
    credential.public_keys = public_keys
    if backup is not None:
        credential.key_backup = backup
    await unit.session.flush()
    if changed and principal.kind == "staff":
        await announce_firm(unit, principal, "pending", audience="staff", user=ids.of(principal))
