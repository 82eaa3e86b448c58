"""A matter's epochs: the next manifest (compare-and-set), its head, more wraps.

Manifest ``e`` is stored only if ``e = 1`` with a zero ``prev_hash`` and no
manifest yet, or the stored newest is ``e - 1`` and hashes to
``prev_hash``. The matter's row is locked first (PostgreSQL), so two
writers of the same epoch queue; the primary key (matter, epoch) is the
belt on every backend. The loser gets ``epoch_conflict`` with the stored
newest epoch and head, and re-bases.
"""

from __future__ import annotations

from sqlalchemy import select

from rtportal import base64url
from rtportal.access import roles
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.manifest import GENESIS_HASH, Manifest
from rtportal.db.models import Firm, KeyHead, KeyManifest, Matter, utcnow
from rtportal.errors import BadRequest, EpochConflict, NotFound
from rtportal.events.unit import Unit
from rtportal.keys import liveness, records, store
from rtportal.keys.announce import announce
from rtportal.keys.checks import check_wraps, signer_cert, wrap_rows
from rtportal.keys.firmkeys import add_certs
from rtportal.principal import Principal

__all__ = ["add_wraps", "post_epoch", "put_head"]


async def _locked(unit: Unit, principal: Principal, matter: Matter, *, manage: bool = True) -> Firm:
    if principal.kind != "staff":
        raise NotFound("no such endpoint")
    if manage:
        roles.require(principal, "portal.manage", matter)
    # One epoch writer at a time per matter (PostgreSQL; SQLite has one writer).
    await unit.session.execute(select(Matter.id).where(Matter.id == matter.id).with_for_update())
    firm = await unit.session.get(Firm, matter.firm_id)
    assert firm is not None
    return firm


async def _conflict(unit: Unit, matter: Matter, message: str) -> EpochConflict:
    newest = await store.newest_manifest(unit.session, matter.id)
    head = await store.head_of(unit.session, matter.id)
    return EpochConflict(
        message,
        epoch=0 if newest is None else newest.epoch,
        head=None if head is None else base64url.encode(head.record),
    )


async def _check_head(
    unit: Unit, principal: Principal, firm: Firm, matter: Matter, data: bytes, manifest: KeyManifest
) -> int:
    """A head of ``manifest``'s epoch signed by the caller; its ``ts_ms``."""
    head = records.head(data, firm.slug, matter.reference)
    body = head.body
    if body.epoch != manifest.epoch or body.hash != manifest.hash:
        raise BadRequest(
            "head: not the head of the newest epoch", field="head", reason="stale_head"
        )
    cert = await signer_cert(unit.session, principal, body.signer, body.signer_kid, "head")
    records.verify(cert.body.ed_pk, head.sig, body.encode(), "head")
    return int(body.ts_ms)


async def _manifests(unit: Unit, matter: Matter) -> dict[int, Manifest]:
    rows = await store.manifests_since(unit.session, matter.id, 1)
    return {row.epoch: Manifest.decode(row.record) for row in rows}


async def _check_members(
    unit: Unit,
    firm_id: int,
    matter: Matter,
    manifest: Manifest,
    invited: frozenset[tuple[int, int]],
) -> None:
    """Who a manifest may name: under the newest escrow version, each member with a key
    certified for this matter in its role, each client a live member or invitee."""
    body = manifest.body
    escrow = await store.newest_escrow_version(unit.session, firm_id)
    if body.fek_version < escrow:
        raise BadRequest(
            f"manifest: fek_version is older than the newest escrow version {escrow}",
            field="manifest",
            reason="crypto_stale_epoch",
        )
    for i, member in enumerate(body.members):
        row = await store.certified(
            unit.session, firm_id, member.user, member.kid, matter.reference
        )
        if row is None or row.role != int(member.role):
            raise BadRequest(
                f"manifest: member {i} ({member.user}) has no certified key for this matter",
                field="manifest",
                reason="crypto_uncertified",
            )
        if member.role is Role.CLIENT and not Certificate.decode(row.record).body.scopes:
            raise BadRequest("manifest: a client key without scope", field="manifest")
    stale = await liveness.not_live(
        unit.session,
        matter.id,
        liveness.clients_of(manifest),
        invited={cid for mid, cid in invited if mid == matter.id},
    )
    if stale:
        raise BadRequest(
            "manifest: names clients who are not members of the matter (removed, expired "
            "or never invited)",
            field="manifest",
            reason="not_a_member",
            users=stale,
        )


async def post_epoch(
    unit: Unit,
    principal: Principal,
    matter: Matter,
    manifest_data: bytes,
    head_data: bytes,
    wraps: list[bytes],
    certs: list[bytes],
    *,
    invited: frozenset[tuple[int, int]] = frozenset(),
) -> int:
    """The matter's next epoch: client certificates first, then the manifest
    (compare-and-set), its head and its wraps; the epoch number."""
    firm = await _locked(unit, principal, matter)
    if certs:
        await add_certs(unit, principal, certs, [], invited=invited)
    manifest = records.manifest(manifest_data, firm.slug, matter.reference)
    body = manifest.body
    cert = await signer_cert(unit.session, principal, body.creator, body.creator_kid, "manifest")
    records.verify(cert.body.ed_pk, manifest.sig, body.encode(), "manifest")
    newest = await store.newest_manifest(unit.session, matter.id)
    if newest is None:
        fits = body.epoch == 1 and body.prev_hash == GENESIS_HASH
    else:
        fits = body.epoch == newest.epoch + 1 and body.prev_hash == newest.hash
    if not fits:
        raise await _conflict(unit, matter, "the matter's chain moved on: re-base on its head")
    await _check_members(unit, firm.id, matter, manifest, invited)
    stored = KeyManifest(
        matter_id=matter.id, epoch=body.epoch, hash=body.hash, record=manifest.encode()
    )
    if not await store.insert_once(unit.session, stored):
        raise await _conflict(unit, matter, "another epoch was stored first: re-base on its head")
    await _check_head(unit, principal, firm, matter, head_data, stored)
    head = await store.head_of(unit.session, matter.id)
    if head is None:
        unit.session.add(KeyHead(matter_id=matter.id, epoch=body.epoch, record=head_data))
    else:
        head.epoch, head.record, head.updated_at = body.epoch, head_data, utcnow()
    manifests = await _manifests(unit, matter)
    decoded = [records.wrap(w, firm.slug, f"wraps[{i}]") for i, w in enumerate(wraps)]
    await check_wraps(
        unit.session, principal, decoded, matter=matter.reference, manifests=manifests
    )
    unit.session.add_all(wrap_rows(firm.id, matter.id, decoded))
    await unit.session.flush()
    await announce(unit, principal, [matter], "epoch", epoch=body.epoch)
    return body.epoch


async def put_head(unit: Unit, principal: Principal, matter: Matter, head_data: bytes) -> int:
    """A refreshed head of the newest epoch (no older than the stored one)."""
    firm = await _locked(unit, principal, matter, manage=False)
    newest = await store.newest_manifest(unit.session, matter.id)
    if newest is None:
        raise await _conflict(unit, matter, "the matter has no epoch yet")
    ts = await _check_head(unit, principal, firm, matter, head_data, newest)
    head = await store.head_of(unit.session, matter.id)
    if head is None:
        unit.session.add(KeyHead(matter_id=matter.id, epoch=newest.epoch, record=head_data))
    else:
        stored = records.head(head.record, firm.slug, matter.reference)
        if head.epoch == newest.epoch and ts < stored.body.ts_ms:
            raise BadRequest("head: older than the stored head", field="head", reason="stale_head")
        head.epoch, head.record, head.updated_at = newest.epoch, head_data, utcnow()
    await unit.session.flush()
    await announce(unit, principal, [matter], "head", epoch=newest.epoch)
    return newest.epoch


async def add_wraps(unit: Unit, principal: Principal, matter: Matter, wraps: list[bytes]) -> int:
    """More wraps of the matter's epochs (history for a recovered client); how many."""
    firm = await _locked(unit, principal, matter)
    decoded = [records.wrap(w, firm.slug, f"wraps[{i}]") for i, w in enumerate(wraps)]
    manifests = await _manifests(unit, matter)
    await check_wraps(
        unit.session, principal, decoded, matter=matter.reference, manifests=manifests
    )
    unit.session.add_all(wrap_rows(firm.id, matter.id, decoded))
    await unit.session.flush()
    if decoded:
        await announce(unit, principal, [matter], "wraps")
    return len(decoded)
