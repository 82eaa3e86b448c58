"""The access questions the realtime hub's re-check asks, answered from this package.

``rtportal.realtime.recheck.AccessQueries`` is the contract; the hub is given
``ACCESS_QUERIES`` when it is built (``rtportal.app``), so the realtime layer
never imports the access rules it enforces.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership, sessions

__all__ = ["ACCESS_QUERIES", "DatabaseAccessQueries"]


class DatabaseAccessQueries:
    """``AccessQueries`` over the database: live sessions, active memberships."""

    async def live_sessions(self, session: AsyncSession, session_ids: Collection[str]) -> set[str]:
        return await sessions.live_sessions(session, session_ids)

    async def active_memberships(
        self, session: AsyncSession, matter_ids: Sequence[int], principal_ids: Sequence[int]
    ) -> set[tuple[int, str, int]]:
        return await membership.active_memberships(session, matter_ids, principal_ids)


ACCESS_QUERIES = DatabaseAccessQueries()
