"""Queueing what a client sent for review, in the transaction that records it.

Two ways in, one row each (``reviews``, unique per (matter, kind, ref): a
retry never queues a thing twice):

* ``ReviewCompanion``: the group commit's companion (``rtportal.events
  .companion``). A client's ``message`` item gets its row in its batch's
  transaction: reviewers and dates for the whole batch in one read, the
  rows in the batch's one statement (PostgreSQL) or write transaction
  (SQLite). After the commit the reviewers' live counts are pushed.
* ``enqueue``: any other writer, in its own transaction (an item naming
  files, written alone by ``rtportal.files.attach``; a document uploaded
  against a request). The caller pushes the count after its commit
  (``ReviewCounts.touch``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter, Review, utcnow
from rtportal.events.companion import Row
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.reviews.choose import targets
from rtportal.reviews.live import ReviewCounts
from rtportal.reviews.rows import Queued

__all__ = ["ReviewCompanion", "enqueue", "wants"]

Kind = Literal["message", "document"]

# A row: (firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id, review_on), then
# the batch's time. PostgreSQL: the append function's statement's CTE ($11 its time).
_PG = (
    "INSERT INTO reviews (firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id,"
    " review_on, created_at)"
    " SELECT v.firm_id, v.matter_id, v.kind, v.ref, v.thread, v.sender_id, v.reviewer_id,"
    " v.review_on, $11::TIMESTAMPTZ"
    " FROM unnest($12::INTEGER[], $13::INTEGER[], $14::TEXT[], $15::TEXT[], $16::TEXT[],"
    " $17::INTEGER[], $18::INTEGER[], $19::DATE[])"
    " AS v(firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id, review_on)"
    " WHERE EXISTS (SELECT 1 FROM matters AS m WHERE m.id = v.matter_id)"
    " ON CONFLICT (matter_id, kind, ref) DO NOTHING"
)
_SQLITE = (
    "INSERT INTO reviews (firm_id, matter_id, kind, ref, thread, sender_id, reviewer_id,"
    " review_on, created_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM matters WHERE id = ?2)"
    " ON CONFLICT (matter_id, kind, ref) DO NOTHING"
)


def wants(principal: Principal, send: Send) -> bool:
    """A client's ``message`` item is queued for review (staff and bots write to clients)."""
    return principal.kind == "contact" and send.kind == "message"


class ReviewCompanion:
    """The group commit's ``Companion``: a client's message items into the inbox."""

    __slots__ = ("counts",)

    pg = _PG
    sqlite = _SQLITE

    def __init__(self, counts: ReviewCounts | None) -> None:
        self.counts = counts

    def wants(self, principal: Principal, send: Send) -> bool:
        return wants(principal, send)

    async def rows(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]]
    ) -> list[Row | None]:
        found = await targets(session, (matter.id for _, matter, _ in items))
        sqlite = session.get_bind().dialect.name == "sqlite"
        out: list[Row | None] = []
        for principal, matter, send in items:
            target = found.get(matter.id)
            payload = send.payload if isinstance(send.payload, dict) else {}
            item, thread = payload.get("item"), payload.get("thread")
            if target is None or target.reviewer_id is None or not isinstance(item, str):
                out.append(None)  # a matter gone (its send fails too); no reviewer at all
                continue
            day = target.today()
            out.append(
                (
                    target.firm_id,
                    matter.id,
                    "message",
                    item,
                    thread if isinstance(thread, str) else None,
                    principal.id,
                    target.reviewer_id,
                    day.isoformat() if sqlite else day,
                )
            )
        return out

    def committed(self, rows: Sequence[Row]) -> None:
        if self.counts is not None:
            for row in rows:
                self.counts.touch(Queued(int(row[6]), int(row[1])))


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
    there = await session.execute(
        select(Review.id).where(
            Review.matter_id == matter.id, Review.kind == kind, Review.ref == ref
        )
    )
    if there.first() is not None:
        return None
    await session.execute(
        insert(Review).values(
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
    )
    return Queued(target.reviewer_id, matter.id)
