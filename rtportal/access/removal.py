"""Removing a contact or bot from a matter, effective on every worker at once.

``end_membership`` ends the membership in the caller's transaction (and
nothing else: the principal's sessions and other matters are untouched).
``remove_member`` commits that, then closes the principal's live
websockets that hold the matter (subscribed to it, or having sent to it)
on every worker with 4011 (``Hub.close_access``). Should the control
message be lost, the hubs' membership re-check closes them within a few
safety polls.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.closecodes import CLOSE_ACCESS_REMOVED
from rtportal.db import Database
from rtportal.db.models import MatterMember, utcnow
from rtportal.realtime.hub import Hub

__all__ = ["end_membership", "remove_member"]


async def end_membership(
    session: AsyncSession, matter_id: int, principal_kind: str, principal_id: int
) -> bool:
    """End an active membership (in the caller's transaction); ``False`` if there was none."""
    result = await session.execute(
        update(MatterMember)
        .where(
            MatterMember.matter_id == matter_id,
            MatterMember.principal_kind == principal_kind,
            MatterMember.principal_id == principal_id,
            MatterMember.removed_at.is_(None),
        )
        .values(removed_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def remove_member(
    db: Database, hub: Hub, matter_id: int, principal_kind: str, principal_id: int
) -> bool:
    """End the membership, commit, then close its live websockets on every worker.

    Returns whether an active membership was ended. The close goes out
    either way: a connection may still hold access a concurrent removal
    ended.
    """
    async with db.write() as session:
        ended = await end_membership(session, matter_id, principal_kind, principal_id)
    await hub.close_access(matter_id, principal_kind, principal_id, CLOSE_ACCESS_REMOVED)
    return ended
