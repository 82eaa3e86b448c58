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

The group commit runs this for a batch before its write, in one read
(``rtportal.events.groupcommit.WriteCheck``): one query finds which of the
batch's matters have epochs, so a firm without keys pays one indexed read.
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
from rtportal.events.send import Send
from rtportal.keys import ids, liveness, records, store
from rtportal.principal import Principal

__all__ = ["CHECKED_KINDS", "check_send", "check_sends"]

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


async def check_send(
    session: AsyncSession, principal: Principal, matter: Matter, send: Send, epoch: int
) -> None:
    """One write to a matter whose newest epoch is ``epoch``."""
    if send.blob is None:
        raise E2eeRequired("this matter is end-to-end encrypted: messages carry an rtp1 envelope")
    if send.kind == "note" and send.payload.get("text"):
        raise E2eeRequired("this matter is end-to-end encrypted: a note's text goes in its blob")
    header = records.envelope(bytes(send.blob)).header
    firm = await session.get(Firm, matter.firm_id)
    assert firm is not None
    thread = send.payload.get("thread")
    if (
        header.firm != firm.slug
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
    row = await store.certified(
        session, principal.firm_id, header.sender, header.sender_kid, matter.reference
    )
    if row is None:
        raise KeyNotCertified("blob: the sender key is not certified or is revoked", field="blob")


async def check_sends(
    session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]]
) -> list[RtPortalError | None]:
    """Each item's refusal (or ``None``), in order; ``WriteCheck`` of the group commit."""
    out: list[RtPortalError | None] = [None] * len(items)
    checked = [i for i, (_, _, send) in enumerate(items) if send.kind in CHECKED_KINDS]
    if not checked:
        return out
    epochs = await store.newest_epoch(session, sorted({items[i][1].id for i in checked}))
    stale: dict[int, list[str]] = {}
    for i in checked:
        principal, matter, send = items[i]
        newest = epochs.get(matter.id)
        if newest is None:
            continue
        epoch, hash_ = newest
        try:
            await check_send(session, principal, matter, send, epoch)
            if matter.id not in stale:
                stale[matter.id] = await liveness.stale_clients(session, matter.id, epoch, hash_)
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
