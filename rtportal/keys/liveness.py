"""Which client members of a manifest are still live members of its matter.

The server cannot sign or re-key, but it decides who may be named: a
client of a matter's manifest must be a live member of the matter (an
active membership, not removed nor expired) or hold a pending invite to it
(invited, not yet accepted). ``POST /keys/matters/{ref}/epochs`` refuses a
manifest naming anyone else (so a removed client is never put back by an
epoch alone), and message writes are refused with ``stale_epoch``
(``reason: rekey_required``) while the newest manifest still names a client
who is no longer live (removed or expired without the next epoch yet).

Manifests never change once stored, so the client members of one are
cached by its hash (which names firm and matter): a matter's writes decode
its newest manifest once per process, not once per write.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access.membership import live
from rtportal.crypto.certs import Role
from rtportal.crypto.manifest import Manifest
from rtportal.db.models import Invite, KeyManifest, MatterMember
from rtportal.keys import ids

__all__ = ["clients_of", "not_live", "stale_clients"]

_CACHE_MAX = 4096
_clients: OrderedDict[bytes, frozenset[tuple[str, int]]] = OrderedDict()


def clients_of(manifest: Manifest) -> frozenset[tuple[str, int]]:
    """The client members of ``manifest``: ``(rtp1 id, contact id)``."""
    out: set[tuple[str, int]] = set()
    for member in manifest.body.members:
        parsed = ids.parse(member.user)
        if member.role is Role.CLIENT and parsed is not None and parsed[0] == "contact":
            out.add((member.user, parsed[1]))
    return frozenset(out)


async def not_live(
    session: AsyncSession,
    matter_id: int,
    clients: Collection[tuple[str, int]],
    *,
    invited: Collection[int] = (),
) -> list[str]:
    """The rtp1 ids among ``clients`` that are not live members of the matter (nor
    pending invitees, nor in ``invited``: the contacts of the round being posted)."""
    wanted = {cid for _, cid in clients if cid not in invited}
    if not wanted:
        return []
    members = select(MatterMember.principal_id.label("cid")).where(
        MatterMember.matter_id == matter_id,
        MatterMember.principal_kind == "contact",
        MatterMember.principal_id.in_(sorted(wanted)),
        live(),
    )
    pending = select(Invite.contact_id.label("cid")).where(
        Invite.matter_id == matter_id,
        Invite.contact_id.in_(sorted(wanted)),
        Invite.status == "pending",
    )
    found = {int(cid) for (cid,) in (await session.execute(union(members, pending))).all()}
    return sorted(user for user, cid in clients if cid in wanted and cid not in found)


async def stale_clients(
    session: AsyncSession, matter_id: int, epoch: int, hash_: bytes
) -> list[str]:
    """The clients the matter's newest manifest (``epoch``, ``hash_``) names who are
    no longer live members: non-empty means the next epoch must come first."""
    clients = _clients.get(hash_)
    if clients is None:
        record = await session.scalar(
            select(KeyManifest.record).where(
                KeyManifest.matter_id == matter_id, KeyManifest.epoch == epoch
            )
        )
        if record is None:
            return []
        clients = clients_of(Manifest.decode(record))
        _clients[hash_] = clients
        if len(_clients) > _CACHE_MAX:
            _clients.popitem(last=False)
    else:
        _clients.move_to_end(hash_)
    return await not_live(session, matter_id, clients)
