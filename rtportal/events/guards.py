"""What one worker remembers of its matters' access state, for one version at a time.

A send's checks read the same things batch after batch: the matter's client
members, its newest key epoch and who of that epoch is stale, whether a
sender's key is certified. Read each time, they made every batch a read
transaction before its write transaction, and that read cost more than the
write. ``Guards`` keeps them per matter, each *fact* under the matter's
``access_version`` (migration 0015: triggers move it whenever any of those
rows move), and every send checked with them carries that version into the
write (``AppendItem.guard``). The write compares it with the matter's
current version in its own transaction, under the matter's row lock, and
refuses the whole batch with ``GuardMoved`` if any differs; the group commit
then forgets those matters and checks the batch again from the database
(once). A send written alone (an item naming files, an edit, a delete:
its own transaction after the batch's) carries the version too and its
writer holds it after the matter's lock (``hold``). So a remembered fact is
never trusted past a change, whichever process made the change, and the
check and the write are one step.

Time moves facts too: a membership past its ``expires_at`` is no longer
live, with no row changing. A matter's entry therefore holds until the
earliest future expiry among its memberships (``until``) and is read again
after it.

Bounded: at most ``max_matters`` entries (least recently used go first).
Facts are small (a few ids per matter).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter, MatterMember, utcnow
from rtportal.errors import Unavailable

__all__ = ["MISSING", "GuardMoved", "Guards", "hold"]

MISSING: Any = object()
"""``Guards.fact``'s answer when nothing current is remembered."""

_M = Matter.__table__.c
_MM = MatterMember.__table__.c
_NEXT_EXPIRY = (
    select(func.min(_MM.expires_at))
    .where(
        _MM.matter_id == _M.id,
        _MM.removed_at.is_(None),
        _MM.expires_at > bindparam("now", type_=_MM.expires_at.type),
    )
    .scalar_subquery()
)
# Built once: one statement for the batch's unknown matters.
_VERSIONS = select(_M.id, _M.access_version, _NEXT_EXPIRY).where(
    _M.id.in_(bindparam("ids", expanding=True))
)


class GuardMoved(Unavailable):
    """A batch's write found a matter's ``access_version`` moved since its checks:
    nothing was written. The group commit retries it once with fresh reads, so a
    caller sees this only when the matter changed again meanwhile (``unavailable``:
    try again)."""

    def __init__(self, matter_ids: Iterable[int]) -> None:
        self.matter_ids = frozenset(matter_ids)
        super().__init__("the matter's members or keys changed while writing: try again")


@dataclass(slots=True)
class _Entry:
    version: int
    until: datetime | None  # the facts hold until then (the next membership expiry)
    facts: dict[Any, Any] = field(default_factory=dict)


async def hold(session: AsyncSession, matter_id: int, guard: int | None) -> None:
    """A send written alone (its own transaction, after its batch's): refuse it with
    ``GuardMoved`` if the matter's version is no longer ``guard``, the version its
    checks read remembered facts at. Call it after the matter's row lock, in the
    write's transaction: then no change can come between it and the commit."""
    if guard is None:
        return
    version = await session.scalar(select(_M.access_version).where(_M.id == matter_id))
    if version is None or int(version) != guard:
        raise GuardMoved([matter_id])


class Guards:
    """One worker's facts about its matters, each valid for one ``access_version``."""

    def __init__(self, max_matters: int = 10_000) -> None:
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._max = max_matters
        self.reads = 0  # version reads done (for tests and diagnostics)
        # Per matter, the version of the first fact the batch being checked used.
        # Not ``version()`` at write time: an entry may end (its expiry, the LRU
        # bound) and be read again at a newer version within one batch's checks,
        # after an earlier check used a fact of the old one. One map per batch,
        # in its task's context: the group commit checks one batch while another
        # is being written (``begin`` in the write's task; no map outside one).
        self._used: ContextVar[dict[int, int] | None] = ContextVar(
            f"rtportal_guards_used_{id(self)}", default=None
        )

    def begin(self) -> None:
        """A new batch's checks start, in the calling task: nothing used yet."""
        self._used.set({})

    def checked_at(self, matter_id: int) -> int | None:
        """The version the batch's checks used the matter's facts at (``None``: none
        used): what the write must find unchanged."""
        used = self._used.get()
        return None if used is None else used.get(matter_id)

    def _use(self, matter_id: int, version: int) -> None:
        used = self._used.get()
        if used is not None:
            used.setdefault(matter_id, version)

    def version(self, matter_id: int) -> int | None:
        """The version the matter's facts were read at (``None``: nothing read)."""
        entry = self._entries.get(matter_id)
        return None if entry is None else entry.version

    def fact(self, matter_id: int, key: Any, now: datetime | None = None) -> Any:
        """The fact remembered under ``key`` for the matter, or ``MISSING``."""
        entry = self._current(matter_id, now)
        if entry is None:
            return MISSING
        self._use(matter_id, entry.version)
        return entry.facts.get(key, MISSING)

    def remember(self, matter_id: int, key: Any, value: Any) -> None:
        """Keep ``value`` under ``key``: call only after ``ensure`` for the matter, with
        what was read after it (the version is read first: a change after it
        moves the version, so the write refuses what was checked with it)."""
        entry = self._entries.get(matter_id)
        if entry is not None:
            entry.facts[key] = value
            self._use(matter_id, entry.version)

    def forget(self, matter_ids: Iterable[int]) -> None:
        used = self._used.get()
        for matter_id in matter_ids:
            self._entries.pop(matter_id, None)
            if used is not None:
                used.pop(matter_id, None)

    async def ensure(
        self, session: AsyncSession, matter_ids: Iterable[int], now: datetime | None = None
    ) -> None:
        """Read the versions of the matters with no current entry (one statement)."""
        now = now or utcnow()
        wanted = sorted({m for m in matter_ids if self._current(m, now) is None})
        if not wanted:
            return
        self.reads += 1
        rows = await session.execute(_VERSIONS, {"ids": wanted, "now": now})
        for matter_id, version, until in rows.all():
            self._entries[int(matter_id)] = _Entry(int(version), until)
            self._entries.move_to_end(int(matter_id))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def _current(self, matter_id: int, now: datetime | None) -> _Entry | None:
        entry = self._entries.get(matter_id)
        if entry is None:
            return None
        if entry.until is not None and (now or utcnow()) >= entry.until:
            del self._entries[matter_id]
            return None
        return entry
