"""The directory's check on every ``message``, ``note`` and ``edit`` write (websocket and HTTP).

Once a matter has a manifest its messages are end-to-end encrypted: the
event's ``blob`` must be an rtp1 envelope whose firm, matter, thread
(``payload.thread``) and sender (the writer's rtp1 id) match the write,
whose visibility matches the audience (``portal`` 0, ``staff`` 1), whose
``sender_kid`` is a certified, unrevoked key of the writer for this matter
(``key_not_certified``) and whose epoch is the matter's newest
(``stale_epoch``). A write without a blob, or a note with plaintext, is
``e2ee_required``. Matters without a manifest are not checked (a firm
that has not set up keys writes plain payloads). While the newest manifest still
names a client who is no longer a live member of the matter (removed or
expired, and the next epoch not posted yet) every write is ``stale_epoch``
with ``reason: rekey_required`` and ``users``: the staff browser posts the
next epoch without them, then writes again. An ``edit`` is checked after
the thread rules set its ``thread`` (the item's): its envelope's ``parent``
must be the edited item's ``msg_id`` (the client id its item id ends with).

The group commit runs this for a batch before its write
(``rtportal.events.groupcommit.WriteCheck``, as ``KeyChecks``): what it reads
(the matter's newest epoch, its stale clients, the firm's name, a sender
key's certificate) it remembers in the worker's ``Guards`` at the matter's
``access_version``, and the write refuses the batch if that version moved
(a new epoch, a membership or invite change, a revocation move it:
``rtportal.events.guards``). So a busy matter's writes read nothing here,
and the check holds at the write, not only at the read before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import base64url
from rtportal.crypto.envelope import Visibility
from rtportal.db.models import Firm, Matter
from rtportal.errors import (
    BadRequest,
    E2eeRequired,
    KeyNotCertified,
    RtPortalError,
    StaleEpoch,
)
from rtportal.events.guards import MISSING, Guards
from rtportal.events.send import Send
from rtportal.keys import ids, liveness, records, store
from rtportal.principal import Principal

__all__ = ["CHECKED_KINDS", "KeyChecks", "check_send", "check_sends"]

CHECKED_KINDS = frozenset({"message", "note", "edit"})
_VIS = {"portal": Visibility.PORTAL, "staff": Visibility.STAFF}


def _item_msg_id(item: object) -> bytes | None:
    """The ``msg_id`` an encrypted item's id ends with (``<sender>.<msg_id base64url>``)."""
    if not isinstance(item, str):
        return None
    try:
        return base64url.decode(item.partition(".")[2], 16)
    except RtPortalError:
        return None


_EPOCH = "newest_epoch"  # facts kept in Guards: (epoch, manifest hash) or None
_STALE = "stale_clients"  # the newest epoch's clients who are no longer live
_SLUG = "firm_slug"


async def check_send(
    session: AsyncSession,
    principal: Principal,
    matter: Matter,
    send: Send,
    epoch: int,
    guards: Guards | None = None,
) -> None:
    """One write to a matter whose newest epoch is ``epoch`` (``guards``: what the
    worker remembers, at a version ``Guards.ensure`` read first)."""
    if send.blob is None:
        raise E2eeRequired("this matter is end-to-end encrypted: messages carry an rtp1 envelope")
    if send.kind == "note" and send.payload.get("text"):
        raise E2eeRequired("this matter is end-to-end encrypted: a note's text goes in its blob")
    header = records.envelope(bytes(send.blob)).header
    slug = await _firm_slug(session, matter, guards)
    thread = send.payload.get("thread")
    if (
        header.firm != slug
        or header.matter != matter.reference
        or header.thread != thread
        or header.vis is not _VIS.get(send.audience)
    ):
        raise BadRequest(
            "blob: the envelope names another firm, matter, thread or visibility",
            field="blob",
            reason="crypto_wrong_context",
        )
    if send.kind == "edit" and header.parent != _item_msg_id(send.payload.get("item")):
        raise BadRequest(
            "blob: an edit's envelope names the edited item's msg_id as its parent",
            field="blob",
            reason="crypto_wrong_context",
        )
    if header.sender != ids.of(principal):
        raise KeyNotCertified("blob: the envelope's sender is not the writer", field="blob")
    if header.epoch != epoch:
        raise StaleEpoch(f"the matter's newest epoch is {epoch}", epoch=epoch)
    cert = ("certified", header.sender, header.sender_kid)
    if guards is not None and guards.fact(matter.id, cert) is True:
        return  # a revocation moves every matter of the firm: never past one
    row = await store.certified(
        session, principal.firm_id, header.sender, header.sender_kid, matter.reference
    )
    if row is None:
        raise KeyNotCertified("blob: the sender key is not certified or is revoked", field="blob")
    if guards is not None:
        guards.remember(matter.id, cert, True)  # only a yes: a key certified later is read


async def _firm_slug(session: AsyncSession, matter: Matter, guards: Guards | None) -> str:
    if guards is not None:
        known = guards.fact(matter.id, _SLUG)
        if known is not MISSING:
            return str(known)
    firm = await session.get(Firm, matter.firm_id)
    assert firm is not None
    if guards is not None:
        guards.remember(matter.id, _SLUG, firm.slug)
    return firm.slug


async def check_sends(
    session: AsyncSession,
    items: Sequence[tuple[Principal, Matter, Send]],
    guards: Guards | None = None,
) -> list[RtPortalError | None]:
    """Each item's refusal (or ``None``), in order; ``WriteCheck`` of the group commit
    (``KeyChecks``: with the worker's ``guards``)."""
    out: list[RtPortalError | None] = [None] * len(items)
    checked = [i for i, (_, _, send) in enumerate(items) if send.kind in CHECKED_KINDS]
    if not checked:
        return out
    epochs = await _newest_epochs(session, sorted({items[i][1].id for i in checked}), guards)
    stale: dict[int, list[str]] = {}
    for i in checked:
        principal, matter, send = items[i]
        newest = epochs.get(matter.id)
        if newest is None:
            continue
        epoch = newest[0]
        try:
            await check_send(session, principal, matter, send, epoch, guards)
            if matter.id not in stale:
                stale[matter.id] = await _stale(session, matter.id, newest, guards)
            if stale[matter.id]:
                raise StaleEpoch(
                    "a client named by the matter's newest epoch is no longer a member: "
                    "post the next epoch without them first",
                    epoch=epoch,
                    reason="rekey_required",
                    users=stale[matter.id],
                )
        except RtPortalError as err:
            out[i] = err
    return out


async def _newest_epochs(
    session: AsyncSession, matter_ids: list[int], guards: Guards | None
) -> dict[int, tuple[int, bytes] | None]:
    """Each matter's newest (epoch, manifest hash), ``None`` without keys: remembered,
    or read in one query for the matters the worker does not know."""
    if guards is None:
        return dict(await store.newest_epoch(session, matter_ids))
    await guards.ensure(session, matter_ids)  # the versions before the facts
    out: dict[int, tuple[int, bytes] | None] = {}
    unknown: list[int] = []
    for matter_id in matter_ids:
        known = guards.fact(matter_id, _EPOCH)
        if known is MISSING:
            unknown.append(matter_id)
        else:
            out[matter_id] = known
    if unknown:
        read = await store.newest_epoch(session, unknown)
        for matter_id in unknown:
            out[matter_id] = read.get(matter_id)
            guards.remember(matter_id, _EPOCH, out[matter_id])
    return out


async def _stale(
    session: AsyncSession, matter_id: int, newest: tuple[int, bytes], guards: Guards | None
) -> list[str]:
    if guards is not None:
        known = guards.fact(matter_id, (_STALE, newest))
        if known is not MISSING:
            return list(known)
    stale = await liveness.stale_clients(session, matter_id, *newest)
    if guards is not None:
        guards.remember(matter_id, (_STALE, newest), tuple(stale))
    return stale


class KeyChecks:
    """``check_sends`` with one worker's ``Guards`` (the group commit's ``WriteCheck``)."""

    def __init__(self, guards: Guards | None = None) -> None:
        self.guards = guards

    async def __call__(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]], /
    ) -> list[RtPortalError | None]:
        return await check_sends(session, items, self.guards)
