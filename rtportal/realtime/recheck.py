"""The re-check policy: do this worker's connections still have their session and access?

Revocations and removals reach every worker as control messages on the
broker (``Hub.close_principal``, ``Hub.close_access``), and the broker is
at-most-once. So each worker also re-reads the database for what its live
connections rely on:

* the **login session** of every registered connection (revoked, past its
  absolute end, or idle for longer than its timeout: ``live_sessions``);
* the **membership** behind every (matter, contact or bot) pair a
  connection holds: joined to the matter's live stream, or remembering
  access to it for sends (``Rechecks.hold``). Staff see every matter of
  their firm and are not re-checked.

A connection that fails either is closed: 4010 for its session, 4011 for a
matter it holds.
After a broker reset everything is re-checked; the periodic safety poll
re-checks one slice: sessions and pairs are kept in ``RECHECK_SLICES`` (5)
hash slices, updated on register/hold/release rather than rebuilt, and poll
``n`` re-checks slice ``n % 5``; so each is re-checked once every 5 polls (a
lost message is acted on within 5 poll intervals, 10 s by default) at a
fifth of the cost. Every pass runs as small queries (250 ids) with a loop
turn between them, so the deliveries in flight never wait behind a pass for
more than a few ms (bench/hub_poll_cost.py measures it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.realtime.listener import Listener

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from rtportal.db import Database

__all__ = ["RECHECK_SLICES", "AccessQueries", "Pair", "Rechecks"]

log = logging.getLogger("rtportal.realtime.recheck")

_K = TypeVar("_K")
Pair = tuple[int, str, int]  # (matter id, principal kind, principal id)

# Each id in an IN list costs the event loop ~5-10 us to render and read
# back (SQLAlchemy expands IN lists per execution): these chunk sizes bound
# the longest synchronous stretch of a pass to a few ms.
_SESSIONS_CHUNK = 250  # session ids per revocation re-check query
_MEMBERS_CHUNK = 250  # (matter, principal) pairs per membership re-check query
RECHECK_SLICES = 5  # a periodic poll re-checks 1/RECHECK_SLICES of sessions and memberships


class AccessQueries(Protocol):
    """The two database questions the re-check asks, answered by ``rtportal.access``
    (``access.queries.ACCESS_QUERIES``): passed in, because the access rules
    live above the realtime layer."""

    async def live_sessions(
        self, session: AsyncSession, session_ids: Collection[str]
    ) -> set[str]: ...

    async def active_memberships(
        self, session: AsyncSession, matter_ids: Sequence[int], principal_ids: Sequence[int]
    ) -> set[Pair]: ...


def _discard(index: dict[_K, dict[int, Listener]], key: _K, listener_key: int) -> None:
    """Remove one listener from ``index[key]``, and the key when it was the last."""
    group = index.get(key)
    if group is not None:
        group.pop(listener_key, None)
        if not group:
            del index[key]


class Rechecks:
    """What one worker re-checks, indexed by session and by (matter, principal)."""

    def __init__(
        self,
        db: Database,
        access: AccessQueries,
        close: Callable[[Listener, int], None],
        slices: int = RECHECK_SLICES,
    ) -> None:
        if slices < 1:
            raise ValueError("recheck_slices must be >= 1")
        self._db = db
        self._access = access
        self._close = close
        self.slices = slices
        # slice -> session id -> listeners of that login session
        self._sessions: list[dict[str, dict[int, Listener]]] = [{} for _ in range(slices)]
        # slice -> (matter, kind, principal id) -> contacts/bots holding it
        self._pairs: list[dict[Pair, dict[int, Listener]]] = [{} for _ in range(slices)]
        # (matter id, id(listener)) -> holds (a join and a remembered access each
        # count one); a listener has one principal, so this names its pair
        # without keeping a pair tuple per connection.
        self._holds: dict[tuple[int, int], int] = {}

    # -- the indexes -------------------------------------------------------

    def add_session(self, listener: Listener) -> None:
        sid = listener.principal.session_id
        if sid is not None:
            self._sessions[hash(sid) % self.slices].setdefault(sid, {})[id(listener)] = listener

    def remove_session(self, listener: Listener) -> None:
        sid = listener.principal.session_id
        if sid is not None:
            _discard(self._sessions[hash(sid) % self.slices], sid, id(listener))

    def hold(self, matter_id: int, listener: Listener) -> None:
        """``listener`` relies on its principal's access to ``matter_id`` (counted)."""
        p = listener.principal
        if p.kind == "staff":
            return  # staff see every matter of their firm: nothing to re-check
        key = (matter_id, id(listener))
        self._holds[key] = self._holds.get(key, 0) + 1
        pair = (matter_id, p.kind, p.id)  # a key already in the index keeps its own tuple
        self._pairs[hash(pair) % self.slices].setdefault(pair, {})[id(listener)] = listener

    def release(self, matter_id: int, listener: Listener) -> None:
        """Undo one ``hold``; the pair is forgotten with the last one."""
        key = (matter_id, id(listener))
        count = self._holds.get(key, 0) - 1
        if count > 0:
            self._holds[key] = count
            return
        if self._holds.pop(key, None) is not None:
            p = listener.principal
            pair = (matter_id, p.kind, p.id)
            _discard(self._pairs[hash(pair) % self.slices], pair, id(listener))

    def holders(self, matter_id: int, kind: str, principal_id: int) -> list[Listener]:
        """The listeners relying on (kind, principal_id)'s access to ``matter_id``."""
        pair = (matter_id, kind, principal_id)
        return list(self._pairs[hash(pair) % self.slices].get(pair, {}).values())

    def clear(self) -> None:
        for sessions in self._sessions:
            sessions.clear()
        for pairs in self._pairs:
            pairs.clear()
        self._holds.clear()

    # -- the passes --------------------------------------------------------

    async def memberships(self, part: int | None = None) -> int:
        """Close contacts and bots holding a matter they are no longer members of.

        One query per 250 (matter, principal) pairs. ``part=None`` (after a
        broker reset) checks every pair, ``part=n`` only slice ``n``.
        Returns how many listeners were closed; a database error ends the
        pass (logged), the next poll of the slice retries.
        """
        parts = self._pairs if part is None else [self._pairs[part % self.slices]]
        # Sorted: a chunk then covers few matters (compact IN lists).
        keys = sorted(key for pairs in parts for key in pairs)

        async def active(session: AsyncSession, chunk: list[Pair]) -> set[Pair]:
            matter_ids = list({k[0] for k in chunk})
            return await self._access.active_memberships(
                session, matter_ids, list({k[2] for k in chunk})
            )

        closed = await self._recheck(
            keys, _MEMBERS_CHUNK, active, self._pairs, "membership", CLOSE_ACCESS_REMOVED
        )
        if closed:
            log.info("closed %d connection(s) of removed matter members", closed)
        return closed

    async def sessions(self, part: int | None = None) -> int:
        """Close listeners whose login session is revoked, expired or idle; returns how many.

        One indexed query per 250 distinct sessions, never one per
        connection: all of them (``part=None``) after a broker reset, slice
        ``part`` with a periodic poll. Listeners without a session id
        (tests, internal listeners) are not checked.
        """
        parts = self._sessions if part is None else [self._sessions[part % self.slices]]
        sids = [sid for sessions in parts for sid in sessions]
        closed = await self._recheck(
            sids,
            _SESSIONS_CHUNK,
            self._access.live_sessions,
            self._sessions,
            "session",
            CLOSE_REVOKED,
        )
        if closed:
            log.info("closed %d connection(s) of revoked or expired sessions", closed)
        return closed

    async def _recheck(
        self,
        keys: list[_K],
        chunk_size: int,
        valid: Callable[[AsyncSession, list[_K]], Awaitable[set[_K]]],
        index: list[dict[_K, dict[int, Listener]]],
        what: str,
        code: int,
    ) -> int:
        """Ask the database which ``keys`` are still valid, in chunks; close the rest.

        One read session for the pass (a session per chunk costs more CPU
        than the chunk's query) and a loop turn between chunks. The
        listeners closed (with ``code``) are those under the key in ``index`` *now*: who
        left during the query is gone, who arrived with a dead key goes too.
        """
        if not keys:
            return 0
        closed = 0
        try:
            async with self._db.read() as session:
                for start in range(0, len(keys), chunk_size):
                    if start:
                        await asyncio.sleep(0)  # reason: let deliveries run between chunks
                    chunk = keys[start : start + chunk_size]
                    ok = await valid(session, chunk)
                    for key in chunk:
                        if key not in ok:
                            group = index[hash(key) % self.slices].get(key)
                            closed += self._close_all(group, code)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s re-check failed; retrying at the next poll", what)
        return closed

    def _close_all(self, group: dict[int, Listener] | None, code: int) -> int:
        if not group:
            return 0
        listeners = list(group.values())  # close() may call back into the hub
        for listener in listeners:
            self._close(listener, code)
        return len(listeners)
