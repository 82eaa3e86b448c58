"""The thread of an event as SQL: the expression migration 0010 indexes.

``ix_events_thread`` is ``(matter_id, <thread expr>, seq)`` over the item
kinds, ``ix_events_welcome`` ``(matter_id, <thread expr>, seq)`` over welcomes
(migration 0013); a query uses an index only when it spells the expression
and the predicate exactly as the migration did, so every query of the
package takes them from here.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, TextClause, literal_column, text

__all__ = [
    "ITEM_KINDS",
    "PORTAL_ITEM_KINDS",
    "held_by_clients",
    "in_thread_index",
    "in_welcome_index",
    "thread_expr",
]

# The kinds the partial index covers: items and what acts on one.
ITEM_KINDS = ("message", "note", "edit", "delete", "tag")
# Of those, what a client thread shows its clients: its messages and what acts on
# them (``rtportal.events.kinds``' threaded kinds), when of audience ``portal``.
PORTAL_ITEM_KINDS = ("message", "edit", "delete")

_EXPR = {
    "postgresql": "((events.payload::jsonb) ->> 'thread')",
    "sqlite": "json_extract(events.payload, '$.thread')",
}


def thread_expr(dialect: str) -> ColumnElement[str]:
    """``payload.thread`` of the ``events`` row, as the index spells it."""
    return literal_column(_EXPR[dialect])


_PREDICATE = "events.kind IN (" + ", ".join(f"'{k}'" for k in ITEM_KINDS) + ")"


def in_thread_index() -> TextClause:
    """The index's predicate (``kind IN (...)`` over ``ITEM_KINDS``) as literal SQL.

    Spelled with bound parameters, neither planner can prove a query implies the
    partial index's predicate (SQLite never; PostgreSQL not in a reused generic
    plan): a thread lookup then walked the matter's whole log in seq order
    (0.3-0.6 s per typing frame or read mark at 200,000 events on SQLite)."""
    return text(_PREDICATE)


def in_welcome_index() -> TextClause:
    """``ix_events_welcome``'s predicate (``kind = 'welcome'``, migration 0013), as
    literal SQL for the same reason as ``in_thread_index``."""
    return text("events.kind = 'welcome'")


def held_by_clients() -> TextClause:
    """``kind IN PORTAL_ITEM_KINDS AND audience = 'portal'``, as literal SQL: the events
    of a client thread that every client who sees the thread holds (they carry the
    opener's ``to``). Literal for the same reason as ``in_thread_index``."""
    kinds = ", ".join(f"'{k}'" for k in PORTAL_ITEM_KINDS)
    return text(f"events.kind IN ({kinds}) AND events.audience = 'portal'")
