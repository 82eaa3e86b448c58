"""The group commit's queue: queued sends, the batches in flight, which sends the
next batch takes, and answering each send once.

``rtportal.events.groupcommit.GroupCommit`` drives it: sends queue first in, first
out; a batch takes up to ``BATCH_MAX`` of them (``take``), and up to ``LANES``
batches are written at once (``Lane``), on matters no other batch in flight holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rtportal.db.models import Matter
from rtportal.events.commitparts import OnDone, Outcome
from rtportal.events.companion import Row
from rtportal.events.event import StoredEvent
from rtportal.events.send import Send
from rtportal.principal import Principal

__all__ = [
    "BATCH_MAX",
    "LANES",
    "Done",
    "Failed",
    "Lane",
    "Outcomes",
    "Request",
    "answer",
    "set_underway",
    "settle",
    "take",
]

log = logging.getLogger("rtportal.commit")

BATCH_MAX = 128  # sends per group-commit transaction
# Batches in flight per worker. Two: while the database writes one, the worker
# checks and builds the next (its reads, the thread rules, the statement's
# parameters), so a send waits for one round trip, not for a round trip and
# the checks of everything queued before it. Not more: the batches of one
# worker may not share a matter (``take``; the row locks would make them
# queue on each other, and they could be written out of order), so a third
# lane would mostly find the busy matters' sends; and they wait for the
# same WAL flush anyway. Batches grow with the load (up to BATCH_MAX): a
# commit costs mostly per batch. Order: a matter's sends are written in the
# order they came; batches are published and answered in the order they were
# taken, so one principal's sends (so one connection's, which does not wait for
# an ack before its next send) are answered in the order they came (``take``
# holds back their later sends behind one held back). One principal's sends to
# two matters may be in the two lanes at once: across matters, the order they
# are written (committed) in is not theirs.
LANES = 2


@dataclass(slots=True)
class Lane:
    """A batch being written: its sends, their matters (references), set once its
    statement is on its way (``underway``), its write."""

    batch: list[Request]
    matters: set[str]
    underway: asyncio.Future[None]
    writing: asyncio.Task[Outcomes]


@dataclass(slots=True)
class Request:
    principal: Principal
    send: Send
    matter: Matter | None  # from the connection's access cache; None: check it here
    result: asyncio.Future[Outcome] | None  # append(): awaited
    on_done: OnDone | None  # submit(): called
    # The send as it came, once ``prepare`` has replaced ``send``: checked again
    # (a matter that moved since), it is prepared afresh from this, not from what
    # the first pass made of it (the recipients it chose then, for one).
    sent: Send | None = None


Done = tuple[Request, StoredEvent, bool, Matter]
Failed = tuple[Request, BaseException]
# A written batch: (committed, refused, the companion's rows of the events created).
Outcomes = tuple[list[Done], list[Failed], list[Row]]


def take(
    queue: deque[Request], busy: set[str], alone_if: Callable[[Send], bool] | None
) -> list[Request]:
    """The next batch, taken off ``queue``: up to ``BATCH_MAX`` sends in queue order,
    ending at the first that ``alone_if`` picks (sends written alone are written
    after their batch's others, so one there must be last: a reply queued after an
    opener that names files must not be written before it). A send to a matter in
    ``busy`` (a batch in flight holds it) stays queued, and so does every later
    send of its principal, and every later send to a matter those are to: a
    matter's sends are written in the order they came, and one principal's are
    answered in it (taken in no earlier batch than an earlier one of theirs).
    At most ``BATCH_MAX`` sends are held back per call, the rest left queued as they
    are: a flood to one busy matter costs each batch a bounded look, not the queue."""
    batch: list[Request] = []
    kept: list[Request] = []
    held: set[tuple[str, int]] = set()
    while queue and len(batch) < BATCH_MAX and len(kept) < BATCH_MAX:
        request = queue.popleft()
        who = (request.principal.kind, request.principal.id)
        if request.send.matter in busy or who in held:
            kept.append(request)
            held.add(who)
            busy.add(request.send.matter)  # its later sends wait too
            continue
        batch.append(request)
        if alone_if is not None and alone_if(request.send):
            break
    queue.extendleft(reversed(kept))  # back at the head, in their order
    return batch


def set_underway(underway: asyncio.Future[None] | None) -> None:
    if underway is not None and not underway.done():
        underway.set_result(None)


def answer(outcomes: Outcomes) -> None:
    done, failed, _ = outcomes
    for request, event, created, matter in done:
        settle(request, value=(event, created, matter))
    for request, exc in failed:
        settle(request, exc=exc)


def settle(
    request: Request,
    *,
    value: Outcome | None = None,
    exc: BaseException | None = None,
) -> None:
    on_done = request.on_done
    if on_done is not None:
        request.on_done = None  # exactly once
        try:
            on_done(value, exc)
        except Exception:
            # A connection's bug must not stop the lane (the others' acks).
            log.exception("a send's completion callback failed")
        return
    result = request.result
    if result is None or result.done():  # the sender was cancelled (connection gone)
        return
    if exc is not None:
        result.set_exception(exc)
    elif value is not None:
        result.set_result(value)
