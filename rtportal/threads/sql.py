"""The thread of an event as SQL: the expression migration 0010 indexes.

``ix_events_thread`` is ``(matter_id, <thread expr>, seq)`` over the item
kinds; a query uses the index only when it spells the expression exactly as
the migration did, so every query of the package takes it from here.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, literal_column

__all__ = ["ITEM_KINDS", "thread_expr"]

# The kinds the partial index covers: items and what acts on one.
ITEM_KINDS = ("message", "note", "edit", "delete", "tag")

_EXPR = {
    "postgresql": "((events.payload::jsonb) ->> 'thread')",
    "sqlite": "json_extract(events.payload, '$.thread')",
}


def thread_expr(dialect: str) -> ColumnElement[str]:
    """``payload.thread`` of the ``events`` row, as the index spells it."""
    return literal_column(_EXPR[dialect])
