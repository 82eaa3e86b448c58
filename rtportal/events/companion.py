"""Rows another capability writes in the transaction of a batch's events.

The group commit writes a batch in one transaction of its own (PostgreSQL:
one autocommitted statement). A capability that must record something
with certain events, atomically with them (the review inbox: a row for
each item a client sends), cannot open its own transaction there; it is a
``Companion`` instead, injected into ``GroupCommit`` (``events/`` imports
no capability). Per batch it picks the sends it wants and makes their rows
in the batch's read (``rows``: one read per batch, not per send); the log
then writes them with the events, in the same statement on PostgreSQL (a
CTE run after the append function, which locks the matters first: no extra
round trip) and
in the same write transaction on SQLite (one ``executemany``). After the
commit, ``committed`` gets the rows of the events that were created.

The SQL is the companion's: ``pg`` a query that writes the rows and
returns one row (a function's call: a function is planned once per
connection, where a bare statement taking arrays is planned at every
execution), whose parameters are ``:at`` (the batch's time,
``TIMESTAMPTZ``) and ``:c1``, ``:c2``... one array per column of a row
(the store numbers them after its statement's own parameters);
``sqlite`` an INSERT with ``?1``... for a row's columns and the time
after them. Both run after the batch's events are written, in the same
transaction, and are given every valid item's row: they must be
idempotent (``ON CONFLICT DO NOTHING``: a retried send's row is there
already) and must skip a row whose event is not in the log then (its
matter gone, or its ``client_id`` taken by another kind of its sender's:
the send is refused at the write, ``conflict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.events.send import Send
from rtportal.principal import Principal

__all__ = ["Also", "Companion", "Row"]

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Also:
    """A batch's companion rows, by the index of their item in the batch."""

    pg: str
    sqlite: str
    rows: dict[int, Row]

    def kept(self, indexes: Sequence[int]) -> list[Row]:
        """The rows of the items that go to the database (valid, first of their key)."""
        return [self.rows[i] for i in indexes if i in self.rows]


class Companion(Protocol):
    """A capability's rows written with certain events (see the module docstring)."""

    pg: str
    sqlite: str

    def wants(self, principal: Principal, send: Send) -> bool:
        """Does this send (as prepared) get a row? Cheap: called per send."""
        ...

    async def rows(
        self, session: AsyncSession, items: Sequence[tuple[Principal, Matter, Send]]
    ) -> list[Row | None]:
        """One row per item (all wanted), in order, in the batch's read session;
        ``None``: no row for that one after all."""
        ...

    def committed(self, rows: Sequence[Row]) -> None:
        """After the commit: the rows of the events created (never blocks)."""
        ...
