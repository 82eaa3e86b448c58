"""The read side's cursors, in one place over ``rtportal.events.cursor``'s codec.

Threads, read marks, receipts and unread counts never spell a cursor
themselves: they parse what a caller sent (``parse_upto``, ``parse_query``)
and write a position for one viewer (``cursor_out``, ``position_out``,
``event_out``). Protocol v2's rule holds here too: a contact never sees a
seq. Staff and bots get integers; a contact gets the worker's tokens
(``CursorCodec``):

* ``cursor_out``: an **event cursor** (deterministic): a read mark, a
  receipt's ``upto``, the first unread item. A client matches it with the
  ``cursor`` of an event it holds (its "Seen by", its own mark).
* ``position_out``: a **position** (fresh salt): a page's ``prev``/``next``,
  the thread list's ``last`` keyset cursor; nothing to compare.
* ``event_out``: a ``view_for`` result with ``seq`` replaced by ``cursor``.
"""

from __future__ import annotations

from typing import Any, Literal

from rtportal.events.cursor import Cursor, CursorCodec, Viewer
from rtportal.principal import Principal

__all__ = ["ViewerClass", "cursor_out", "event_out", "parse_query", "parse_upto", "position_out"]

ViewerClass = Literal["staff", "portal"]


def parse_upto(cursors: CursorCodec, value: object, principal: Principal, matter_id: int) -> Cursor:
    """A read mark's ``upto`` (a JSON value) as ``principal`` sent it for the matter."""
    if value is None:
        return Cursor.from_json(value, "upto")  # required: refused, never "the start"
    return cursors.parse(value, principal, matter_id, "upto")


def parse_query(
    cursors: CursorCodec, text: str | None, principal: Principal, matter_id: int, where: str
) -> Cursor | None:
    """A cursor of a URL query as ``principal`` sent it; ``None`` when absent or empty."""
    if text is None or text == "":
        return None
    return cursors.parse_query(text, principal, matter_id, where)


def cursor_out(cursors: CursorCodec, viewer: Viewer, matter_id: int, seq: int) -> int | str:
    """The event ``seq`` of the matter (a mark, a receipt, an item) as ``viewer`` reads it;
    0 (no mark) is 0 for everyone: it names no position."""
    return 0 if seq == 0 else cursors.cursor_for(viewer, matter_id, seq)


def position_out(cursors: CursorCodec, viewer: Viewer, matter_id: int, seq: int) -> int | str:
    """A position (a page edge, a keyset cursor) as ``viewer`` reads it."""
    return cursors.position_for(viewer, matter_id, seq)


def event_out(
    cursors: CursorCodec, view: dict[str, Any], viewer: Viewer, matter_id: int
) -> dict[str, Any]:
    """A ``view_for`` result as ``viewer`` gets it (a contact's: ``cursor``, no ``seq``)."""
    return cursors.event_view(view, viewer, matter_id)
