"""Queueing what a client sent for review, in the transaction that records it.

Two ways in, one row each (``reviews``, unique per (matter, kind, ref): a
retry never queues a thing twice):

* ``ReviewCompanion``: the group commit's companion (``rtportal.events
  .companion``). A client's ``message`` item gets its row in its batch's
  transaction: its row is written in the batch's one statement
  (PostgreSQL) or write transaction (SQLite), its reviewer chosen by that
  statement; nothing is read before it but the firms' days, which a
  worker keeps. After the commit the reviewers' live counts are pushed.
* ``enqueue``: any other writer, in its own transaction (an item naming
  files, written alone by ``rtportal.files.attach``; a document uploaded
  against a request). The caller pushes the count after its commit
  (``ReviewCounts.touch``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter, Review, utcnow
from rtportal.events.companion import Row
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.reviews.choose import REVIEWER, FirmDays, targets
from rtportal.reviews.live import ReviewCounts
from rtportal.reviews.rows import Queued

__all__ = ["ReviewCompanion", "enqueue", "wants"]

Kind = Literal["message", "document"]

# A row: (firm_id, matter_id, kind, ref, thread, sender_id, review_on, client_id), then
# the batch's time; the reviewer is chosen in the statement (``choose.REVIEWER`` over
# the matter's row), so nothing is read before it. No row where the sender's
# ``message`` event of that ``client_id`` is not in the matter once the batch's events
# are written: a send refused at the write (its ``client_id`` taken by another kind of
# the sender's: ``conflict``) queues nothing; nor for a matter gone, or a firm with
# nobody to review.
_COLUMNS = "firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id, review_on, created_at"
# PostgreSQL: the function of migration 0019 (the same INSERT, ``REVIEWER`` as of 0018,
# planned once per connection), in the append function's statement, run after it
# (``:at`` its time, ``:c1``... the columns: numbered by the log's store).
_PG = "SELECT rtp_queue_reviews(:c1, :c2, :c3, :c4, :c5, :c6, :c7, :c8, :at)"
# SQLite: one row per execution of an ``executemany`` in the batch's write transaction,
# after the events' INSERT.
_SQLITE = (
    f"INSERT INTO reviews ({_COLUMNS})"  # noqa: S608 - this module's constants
    f" SELECT {_COLUMNS} FROM (SELECT ?1 AS firm_id, ?2 AS matter_id, ?3 AS kind, ?4 AS ref,"
    f" ?5 AS thread, ?6 AS sender_id, {REVIEWER} AS reviewer_id, ?7 AS review_on,"
    " ?9 AS created_at FROM matters AS m WHERE m.id = ?2 AND EXISTS (SELECT 1 FROM events"
    " AS e WHERE e.matter_id = ?2 AND e.actor_kind = 'contact' AND e.actor_id = ?6"
    " AND e.client_id = ?8 AND e.kind = 'message')) AS x WHERE x.reviewer_id IS NOT NULL"
    " ON CONFLICT (matter_id, kind, ref) DO NOTHING"
)


def wants(principal: Principal, send: Send) -> bool:
    """A client's ``message`` item is queued for review (staff and bots write to clients)."""
    return principal.kind == "contact" and send.kind == "message"


class ReviewCompanion:
    """The group commit's ``Companion``: a client's message items into the inbox."""

    __slots__ = ("counts", "days")

    pg = _PG
    sqlite = _SQLITE

    def __init__(self, counts: ReviewCounts | None, days: FirmDays | None = None) -> None:
        self.counts = counts
        self.days = days if days is not None else FirmDays()

    def wants(self, principal: Principal, send: Send) -> bool:
        return wants(principal, send)

    async def rows(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]]
    ) -> list[Row | None]:
        """Each item's row: the reviewer is left to the statement; the firm's day from
        the worker's cache (a read only for firms it does not know)."""
        today = await self.days.today(session, (matter.firm_id for _, matter, _ in items))
        sqlite = session.get_bind().dialect.name == "sqlite"
        out: list[Row | None] = []
        for principal, matter, send in items:
            payload = send.payload if isinstance(send.payload, dict) else {}
            item, thread = payload.get("item"), payload.get("thread")
            day = today.get(matter.firm_id)
            if day is None or not isinstance(item, str):
                out.append(None)  # the firm is gone (the send fails too)
                continue
            out.append(
                (
                    matter.firm_id,
                    matter.id,
                    "message",
                    item,
                    thread if isinstance(thread, str) else None,
                    principal.id,
                    day.isoformat() if sqlite else day,
                    send.client_id,  # set by the thread rules (``prepare``) for every item
                )
            )
        return out

    def committed(self, rows: Sequence[Row]) -> None:
        """Push the reviewers' counts (who they are is read off the work: ``touch_items``)."""
        if self.counts is not None:
            self.counts.touch_items([(int(row[1]), str(row[3])) for row in rows])


async def enqueue(
    session: AsyncSession,
    matter: Matter,
    kind: Kind,
    ref: str,
    sender_id: int | None,
    *,
    thread: str | None = None,
    request: str | None = None,
    files: Sequence[str] = (),
) -> Queued | None:
    """Queue ``ref`` of ``matter`` for review in the caller's transaction.

    ``kind``: ``message`` (``ref`` an item id) or ``document`` (``ref`` the
    upload's reference, ``request`` its request's id, ``files`` its file
    ids; labelled "Portal Doc"). Idempotent: a thing queued before is left
    as it is (``None``). Returns whose count to push after the commit
    (``ReviewCounts.touch``); ``None`` too when the firm has nobody to review.
    """
    target = (await targets(session, [matter.id])).get(matter.id)
    if target is None or target.reviewer_id is None:
        return None
    # ``ON CONFLICT DO NOTHING``: a concurrent transaction queueing the same thing
    # (a writer that does not hold the matter's lock) is waited for, not an error.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new = (
        insert(Review)
        .values(
            firm_id=target.firm_id,
            matter_id=matter.id,
            kind=kind,
            ref=ref,
            thread=thread,
            request=request,
            files=json.dumps(list(files)) if files else None,
            sender_id=sender_id,
            reviewer_id=target.reviewer_id,
            review_on=target.today(),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["matter_id", "kind", "ref"])
        .returning(Review.id)
    )
    if (await session.execute(new)).first() is None:
        return None  # queued before
    return Queued(target.reviewer_id, matter.id)
