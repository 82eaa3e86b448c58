"""The read side's two uses of cursors, each in one function over ``rtportal.events.cursor``.

A read mark's ``upto`` is parsed once the matter is known (``parse_upto``)
and a position is written for one viewer (``cursor_out``): the frames and
bodies of marks, receipts and the first unread item never spell a cursor
themselves. Why both take the viewer and the matter: a cursor's spelling
may depend on who reads it and of which matter (protocol v2 gives clients
opaque cursors); ``rtportal.events.cursor`` stays the one parser.
"""

from __future__ import annotations

from typing import Literal

from rtportal.events.cursor import Cursor
from rtportal.principal import Principal

__all__ = ["ViewerClass", "cursor_out", "parse_upto"]

ViewerClass = Literal["staff", "portal"]


def parse_upto(value: object, principal: Principal, matter_id: int) -> Cursor:
    """A read mark's ``upto`` (a JSON value) as ``principal`` sent it for the matter."""
    return Cursor.from_json(value, "upto")


def cursor_out(viewer: Principal | ViewerClass, matter_id: int, seq: int) -> object:
    """The position ``seq`` of the matter as ``viewer`` (a principal or a class) reads it."""
    return Cursor(seq).to_json()
