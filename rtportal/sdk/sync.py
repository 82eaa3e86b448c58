"""Directory sync: the server's key records -> a freshly verified ``Directory``.

Sans-I/O: each function takes the JSON the server answered and the trust
state, checks everything with ``rtportal.crypto`` and the pins, and raises
on the first failure. A sync never trusts the server's word: the firm root
key must be the pinned one, versions and chains never go back, every
certificate, manifest, head and wrap is verified before any key is used.
Records that are merely not usable any more (a certificate whose key was
revoked, a wrap made by a since-revoked wrapper) are left out, so using
them later fails with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rtportal import base64url
from rtportal.crypto import encoding as enc
from rtportal.crypto.certs import Revocation
from rtportal.crypto.directory import Directory
from rtportal.crypto.errors import ChainBroken, Revoked, Rollback, Uncertified, WrongContext
from rtportal.crypto.keys import FirmEscrowKey, FirmRootPublic
from rtportal.crypto.wrap import FEK_RECIPIENT, FIRM_MATTER, Wrap, WrapInfo, WrapKind
from rtportal.sdk import records
from rtportal.sdk.actor import Actor
from rtportal.sdk.errors import PinMismatch
from rtportal.sdk.state import TrustState

__all__ = ["RECORD_MAX", "decode", "frk_from_record", "verify_firm", "verify_matter"]

RECORD_MAX = 256 * 1024  # the largest record the directory stores (a revocation list)


def decode(value: Any) -> bytes:
    data = base64url.decode(value, RECORD_MAX, "record")
    if data is None:
        raise WrongContext("a record is missing")
    return data


def frk_from_record(data: bytes) -> FirmRootPublic:
    r = enc.Reader(data, b"RTKR")
    frk = FirmRootPublic(r.fixed(32))
    r.done()
    return frk


def _pin_frk(state: TrustState, frk: FirmRootPublic, pin: bytes | None) -> None:
    if state.frk_fingerprint is None:
        if pin is None:
            raise PinMismatch("no firm root key pinned: give the fingerprint from the link")
        state.frk_fingerprint = pin
    if frk.fingerprint != state.frk_fingerprint:
        raise PinMismatch("the server's firm root key is not the pinned one")


def _add_certs(d: Directory, state: TrustState, certs: Iterable[Any], now_ms: int) -> None:
    for raw in certs:
        try:
            body = d.add_certificate(decode(raw), now_ms)
        except Revoked:
            continue  # no longer usable; anything that needs it fails with the reason
        seen = state.cert_serials.get((body.user, body.kid), 0)
        if body.serial < seen:
            raise PinMismatch(f"an older certificate of {body.user} than one seen before")
        state.cert_serials[(body.user, body.kid)] = body.serial


def verify_firm(
    data: dict[str, Any],
    state: TrustState,
    actor: Actor,
    now_ms: int,
    *,
    pin_frk: bytes | None = None,
) -> Directory:
    """``GET /keys/firm`` -> a Directory with the FRK, revocation list, escrow records, staff
    and bot certificates; the firm keys wrapped to ``actor`` land in ``actor.firm_keys``."""
    if data.get("frk") is None:
        raise PinMismatch("the firm has no root key yet")
    frk = frk_from_record(decode(data["frk"]))
    _pin_frk(state, frk, pin_frk)
    d = Directory(actor.firm, frk)
    rl = records.decode_revocation_list(decode(data["revocations"]["list"]))
    if records.revocation_version(rl) < state.revocation_version:
        raise Rollback("revocation list older than one seen before")
    records.set_revocation_list(d, rl, now_ms)
    state.revocation_version = records.revocation_version(rl)
    escrow: dict[int, bytes] = {}
    for raw in data["escrow"]:
        record = records.decode_escrow_record(decode(raw))
        records.add_escrow_record(d, record)
        escrow[records.escrow_version(record)] = records.escrow_x_pk(record)
    newest = max(escrow, default=0)
    if newest < state.escrow_version:
        raise Rollback("escrow version older than one seen before")
    state.escrow_version = newest
    _add_certs(d, state, data["certs"], now_ms)
    for raw in data["wraps"]:
        wrap = Wrap.decode(decode(raw))
        if (wrap.info.recipient, wrap.info.recipient_kid) != (actor.uid, actor.kid):
            continue  # another staff member's (or my previous key's) wrap
        expected = WrapInfo(
            actor.firm, FIRM_MATTER, wrap.info.epoch, WrapKind.FIRM, actor.uid, actor.kid
        )
        try:
            key = d.unwrap(wrap, expected, actor.identity.x_sk, now_ms)
        except Revoked:
            continue
        fek = FirmEscrowKey(actor.firm, expected.epoch, key[:32], key[32:])
        if escrow.get(fek.version) != fek.public.x_pk:
            raise WrongContext(f"firm key version {fek.version} is not the FRK-signed escrow key")
        actor.firm_keys[fek.version] = fek
    return d


def verify_matter(
    d: Directory,
    data: dict[str, Any],
    state: TrustState,
    actor: Actor,
    matter: str,
    now_ms: int,
    *,
    client_revocations: Iterable[Any] = (),
) -> None:
    """``GET /keys/matters/{ref}`` into ``d``: client certificates, the chain from epoch 1
    (checked against the pinned ``(epoch, hash)``), client revocations, the head, then the
    wraps addressed to ``actor`` (staff: also every ``#fek`` wrap their firm keys open)."""
    _add_certs(d, state, data["certs"], now_ms)
    for raw in data["manifests"]:
        d.accept_manifest(decode(raw), matter, now_ms)
    pin = state.matter(matter)
    last = d.current_epoch(matter)
    if pin.epoch:
        if last < pin.epoch:
            raise Rollback(f"{matter}: epoch {last} is older than {pin.epoch} seen before")
        if d.manifest(matter, pin.epoch).hash != pin.hash:
            raise ChainBroken(f"{matter}: epoch {pin.epoch} is not the one seen before")
    # staff get every client revocation with the firm; clients their matter's, with it
    for raw in [*client_revocations, *data.get("revocations", [])]:
        try:
            d.add_revocation(Revocation.decode(decode(raw)), now_ms)
        except Uncertified:
            continue  # a client of another matter: its certificate is not loaded here
    if data.get("head") is not None:
        records.accept_head(d, records.decode_head(decode(data["head"])), matter, now_ms)
    _open_wraps(d, data["wraps"], actor, matter, now_ms)
    if last:
        pin.epoch, pin.hash = last, d.manifest(matter, last).hash


def _open_wraps(d: Directory, wraps: Iterable[Any], actor: Actor, matter: str, now_ms: int) -> None:
    by_kid = {fek.kid: fek for fek in actor.firm_keys.values()}
    for raw in wraps:
        wrap = Wrap.decode(decode(raw))
        info = wrap.info
        if info.kind is not WrapKind.MEK or info.epoch > d.current_epoch(matter):
            raise WrongContext("a wrap for an epoch that is not in the verified chain")
        if info.recipient == FEK_RECIPIENT:
            fek = by_kid.get(info.recipient_kid)
            if fek is None or d.manifest(matter, info.epoch).fek_version != fek.version:
                continue  # a firm key this reader does not hold (a client, or a newer staff key)
            expected = WrapInfo(
                actor.firm, matter, info.epoch, WrapKind.MEK, FEK_RECIPIENT, fek.kid
            )
            x_sk = fek.x_sk
        else:
            key = actor.key_of(info.recipient_kid) if info.recipient == actor.uid else None
            if key is None:
                continue  # another key of mine (regenerated) or another reader's wrap
            expected = WrapInfo(actor.firm, matter, info.epoch, WrapKind.MEK, actor.uid, key.kid)
            x_sk = key.x_sk
        try:
            d.unwrap(wrap, expected, x_sk, now_ms)
        except Revoked:
            continue
