"""The reviewer's live count: a staff-only ``reviews`` frame when their counts change.

Follows the read side's live frames (``rtportal.threads.liveframes``): an
ephemeral message on the topic of the matter the change happened in,
addressed to the reviewer alone (``Ephemeral.user``: never a contact, a
bot or another staff member), relayed to their connections subscribed to
that matter on every worker (the staff app subscribes to every matter for
its feed). Never stored: lost, the next change or ``GET
/api/v1/reviews/count`` brings the counts back.

Changes are coalesced per worker: ``touch`` marks a reviewer, and one task
waits a window (0.2 s, longer after a slow push, at most 5 s:
``next_window``), then
reads the counts of every marked reviewer together (``counts.counts_of``,
in one read session with the reviewers of the messages queued) and
publishes one frame each, so a stream
of client messages costs one count per reviewer per window, off the write
path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import wirejson
from rtportal.db import Database
from rtportal.db.models import Matter, Review
from rtportal.realtime.message import Ephemeral
from rtportal.reviews.counts import counts_of, frame_body
from rtportal.reviews.rows import Queued

__all__ = ["PublishEphemeral", "ReviewCounts", "next_window"]

log = logging.getLogger("rtportal.reviews")

PublishEphemeral = Callable[[Ephemeral], Awaitable[None]]
"""``Hub.publish_ephemeral``."""

_MAX_DIRTY = 10_000  # reviewers marked between two flushes (beyond: the oldest marks dropped)
# How long changes gather before one push: a header count needs no per-message
# immediacy, and each push is two reads; at a steady 160 client messages a
# second, pushing after each batch cost more CPU than writing the messages.
_WINDOW_S = 0.2
# A push's reads grow with the reviewer's open reviews (``counts_of`` counts them:
# 45 ms on PostgreSQL at 340,000). The next window is at least this many times
# the last push's duration, so pushes take at most 1/20 of the worker's time
# (and of the database's) however large an inbox grows; the header's count
# then moves less often, never wrongly.
_COST_FACTOR = 20.0
# ... but never longer than this: a push's duration also counts what is not
# counting (a wait for a pooled connection, a stalled broker, a push that failed
# after a timeout), and one such push must not hold every later count back for
# 20 times as long (a 30 s pool timeout: ten minutes without a count).
_MAX_WINDOW_S = 5.0


def next_window(last_push_s: float) -> float:
    """How long the next window gathers changes, after a push that took ``last_push_s``."""
    return min(_MAX_WINDOW_S, max(_WINDOW_S, _COST_FACTOR * last_push_s))


class ReviewCounts:
    """Per worker: pushes reviewers' counts after changes (``touch``), coalesced."""

    __slots__ = ("_dirty", "_hurry", "_items", "_task", "db", "publish")

    def __init__(self, db: Database, publish: PublishEphemeral | None) -> None:
        self.db = db
        self.publish = publish
        self._dirty: dict[int, int] = {}  # reviewer -> the matter of their latest change
        # Messages just queued whose reviewer the statement chose: (matter_id, item).
        self._items: list[tuple[int, str]] = []
        self._task: asyncio.Task[None] | None = None
        # Set by ``idle``: the window ends now (shutdown does not wait it out).
        self._hurry = asyncio.Event()

    def touch(self, queued: Queued) -> None:
        """After a commit: ``queued.reviewer_id``'s counts changed on ``queued.matter_id``."""
        if self.publish is None:
            return
        self._mark(queued.reviewer_id, queued.matter_id)
        self._start()

    def touch_items(self, items: list[tuple[int, str]]) -> None:
        """After a commit: these ``(matter_id, item)`` messages were queued; their
        reviewers (chosen by the statement that queued them) are read when pushing."""
        if self.publish is None or not items:
            return
        self._items.extend(items)
        del self._items[:-_MAX_DIRTY]
        self._start()

    def _mark(self, reviewer_id: int, matter_id: int) -> None:
        self._dirty.pop(reviewer_id, None)
        self._dirty[reviewer_id] = matter_id
        while len(self._dirty) > _MAX_DIRTY:
            del self._dirty[next(iter(self._dirty))]

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="review-counts")

    async def idle(self) -> None:
        """Push every marked change now, and wait until it is pushed (tests; shutdown)."""
        while self._task is not None:
            self._hurry.set()
            await asyncio.shield(self._task)
        self._hurry.clear()

    async def _flush(self) -> None:
        try:
            window = _WINDOW_S
            while self._dirty or self._items:
                # reason: gather a window's changes (``idle`` ends it early)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), window)
                started = time.perf_counter()
                try:
                    await self._push()
                except Exception:
                    # The counts are in the database: the header's next read has them.
                    log.exception("pushing review counts failed")
                window = next_window(time.perf_counter() - started)
        finally:
            self._task = None

    async def _push(self) -> None:
        """One read session: the reviewers of the messages queued, then every marked
        reviewer's counts; one frame each."""
        items, self._items = self._items, []
        async with self.db.read() as session:
            if items:
                await self._reviewers_of(session, items)
            dirty, self._dirty = self._dirty, {}
            if not dirty:
                return
            counts = await counts_of(session, dirty)
            refs = dict(
                (
                    await session.execute(
                        select(Matter.id, Matter.reference).where(
                            Matter.id.in_(set(dirty.values()))
                        )
                    )
                ).all()
            )
        assert self.publish is not None
        for reviewer, matter_id in dirty.items():
            ref = refs.get(matter_id)
            if ref is None:
                continue  # the matter is gone: nobody is subscribed to it
            frame = wirejson.dumps(frame_body(counts[reviewer]))
            msg = Ephemeral(
                id=_new_id(),
                matter_id=matter_id,
                matter=str(ref),
                frame=frame,
                staff=True,
                user=("staff", reviewer),
            )
            await self.publish(msg)

    async def _reviewers_of(self, session: AsyncSession, items: list[tuple[int, str]]) -> None:
        """Mark the reviewers of just-queued messages (one query)."""
        matters = sorted({m for m, _ in items})
        refs = sorted({r for _, r in items})
        rows = await session.execute(
            select(Review.reviewer_id, Review.matter_id).where(
                Review.matter_id.in_(matters), Review.kind == "message", Review.ref.in_(refs)
            )
        )
        for reviewer, matter_id in rows.all():
            self._mark(int(reviewer), int(matter_id))


def _new_id() -> str:
    """An ephemeral message's id (a worker skips the echo of its own)."""
    return uuid.uuid4().hex
