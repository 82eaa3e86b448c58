"""A thread's opener or an item (``Found``), and the reads that find them in the log.

A thread's opener is its first ``message`` or ``note`` by seq, found
through migration 0010's index (``sql.thread_expr``), or the ``welcome``
event of a ``welcome-<n>`` thread; an item is found by the idempotency
key its id spells. The thread rules (``rtportal.threads.items``), the
acts on items and the read side all use these, so they cannot disagree on
what a thread is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal import wirejson
from rtportal.db.models import Event
from rtportal.jsonlimits import stored_payload
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.threads.sql import in_thread_index, in_welcome_index, thread_expr

__all__ = [
    "ITEM_SEND_KINDS",
    "WELCOME_PREFIX",
    "Found",
    "find_item",
    "find_opener",
    "find_openers",
    "to_ids",
]

ITEM_SEND_KINDS = frozenset({"message", "note"})
WELCOME_PREFIX = "welcome-"  # the threads the server names: an invitee's first


@dataclass(frozen=True, slots=True)
class Found:
    """A thread's opener, or an item: what a send into it or an act on it needs."""

    kind: str  # message, note (or welcome: a welcome thread's opener)
    item: str
    thread: str
    audience: str
    to: tuple[int, ...] | None  # None: a note, or a message stored before threads
    actor: tuple[str, int]
    redacted: bool = False
    # A welcome opener only: someone has replied (a portal ``message`` is in the
    # thread). Before that the thread is its invitees' alone.
    replied: bool = False

    def seen_by(self, principal: Principal, see_applicants: bool) -> bool:
        """Does ``principal`` see it (the rule of ``audience.view_for``)?"""
        if principal.is_staff:
            return True
        if self.audience != "portal":
            return False
        if self.kind == "welcome":
            # The welcome event is seen by those it names; its replies (which carry
            # its ``to``) also by whoever sees the applicants, as every client thread.
            named = self.to is not None and principal.id in self.to
            return named or (self.replied and see_applicants)
        if see_applicants or self.actor == (principal.kind, principal.id):
            return True
        return self.to is not None and principal.id in self.to


def to_ids(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, list) and all(type(v) is int for v in value):
        return tuple(value)
    return None


def _found(row: Any, thread: str) -> Found:
    payload = stored_payload(row.payload)
    item = payload.get("item")
    if not isinstance(item, str):  # stored before threads: its key spells the id
        who = ids.of_kind(row.actor_kind, row.actor_id)
        item = f"{who}.{row.client_id}" if row.client_id else f"{who}.seq{row.seq}"
    to = to_ids(payload.get("to"))
    if to is None and row.kind == "message" and row.actor_kind == "contact":
        to = (int(row.actor_id),)  # a client's own thread, stored before threads
    # An internal message stored before notes (audience staff) is a note: its thread
    # is internal (rtportal.threads.readers says so too), never a client thread
    # whose replies would reach clients.
    kind = "note" if row.kind == "message" and row.audience != "portal" else row.kind
    return Found(
        kind,
        item,
        thread,
        row.audience,
        to,
        (str(row.actor_kind), int(row.actor_id)),
        bool(row.redacted),
    )


_COLUMNS: tuple[Any, ...] = (
    Event.seq,
    Event.kind,
    Event.audience,
    Event.actor_kind,
    Event.actor_id,
    Event.client_id,
    Event.payload,
    Event.redacted,
)


def _first_item(expr: Any, matter_id: int, thread: str) -> Select[Any]:
    """The thread's first item by seq (through the thread index): its opener, but
    for a welcome thread (``find_opener``)."""
    return (
        select(*_COLUMNS)
        .where(
            Event.matter_id == matter_id,
            expr == thread,
            in_thread_index(),  # the index's predicate
            Event.kind.in_(tuple(ITEM_SEND_KINDS)),
        )
        .order_by(Event.seq)
        .limit(1)
    )


_OPENERS_PER_READ = 256  # threads per statement of ``find_openers``

# ``find_openers``' one statement per dialect: the wanted threads arrive as one
# parameter (SQLite: a JSON list of [matter, thread]; PostgreSQL: two arrays),
# so its text is the same for any number of them: compiled once, with a small
# cache key (a statement that grows with the batch is compiled per size and
# keyed per call, milliseconds the group commit's batch would wait on before
# its write). Each key's opener is its thread's first item by seq
# through ``ix_events_thread``: the subquery spells the index's expression and
# predicate on the unaliased ``events`` (``threads.sql``).
_OPENERS_SQL = {
    "sqlite": (
        "json_each(:keys) AS k",
        "k.key",
        "json_extract(k.value, '$[0]')",
        "json_extract(k.value, '$[1]')",
    ),
    "postgresql": (
        "unnest(CAST(:matters AS bigint[]), CAST(:threads AS text[])) WITH ORDINALITY"
        " AS k(matter_id, thread, ord)",
        "k.ord - 1",
        "k.matter_id",
        "k.thread",
    ),
}


def _openers_statement(dialect: str) -> TextClause:
    source, position, matter, thread = _OPENERS_SQL[dialect]
    kinds = ", ".join(f"'{k}'" for k in sorted(ITEM_SEND_KINDS))
    columns = ", ".join(f"e.{c.key}" for c in _COLUMNS)
    return text(
        f"SELECT {position} AS key, {columns} FROM {source} "  # noqa: S608 - constants
        f"JOIN events AS e ON e.matter_id = {matter} AND e.seq = ("
        f"SELECT events.seq FROM events WHERE events.matter_id = {matter} "
        f"AND {thread_expr(dialect)} = {thread} AND {in_thread_index().text} "
        f"AND events.kind IN ({kinds}) ORDER BY events.seq LIMIT 1)"
    )


_OPENERS = {dialect: _openers_statement(dialect) for dialect in _OPENERS_SQL}


async def find_openers(
    session: AsyncSession, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], Found]:
    """``find_opener`` of several ``(matter id, thread)``, none a welcome thread, in
    one statement per ``_OPENERS_PER_READ`` (a burst of new threads, each a miss,
    read at once). Threads with no opener are absent."""
    dialect = session.get_bind().dialect.name
    out: dict[tuple[int, str], Found] = {}
    # A name holding U+0000 has no opener: no send stores one (client JSON refuses
    # it, the thread rules too), and through SQLite's JSON functions ``T1\x00x``
    # would read as ``T1``, another thread (PostgreSQL refuses it as a parameter).
    keys = [k for k in keys if "\x00" not in k[1]]
    for start in range(0, len(keys), _OPENERS_PER_READ):
        chunk = keys[start : start + _OPENERS_PER_READ]
        if dialect == "postgresql":
            params: dict[str, Any] = {
                "matters": [m for m, _ in chunk],
                "threads": [t for _, t in chunk],
            }
        else:
            params = {"keys": wirejson.dumps([[m, t] for m, t in chunk])}
        rows = await session.execute(_OPENERS[dialect], params)
        for row in rows.all():
            key = chunk[int(row.key)]
            out[key] = _found(row, key[1])
    return out


async def find_opener(session: AsyncSession, matter_id: int, thread: str) -> Found | None:
    """The thread's opener (through the thread index), or ``None``: no such thread.

    A ``welcome-<n>`` thread's opener is its ``welcome`` event (outside the item
    index: ``ix_events_welcome``) for good, before and after the first reply, so a
    reply's ``parent`` and ``to`` never depend on what was sent before it (a retried
    first reply is prepared as it was stored)."""
    expr = thread_expr(session.get_bind().dialect.name)
    row = (await session.execute(_first_item(expr, matter_id, thread))).first()
    first = None if row is None else _found(row, thread)
    if not thread.startswith(WELCOME_PREFIX):
        return first
    welcome = (
        await session.execute(
            select(*_COLUMNS)
            .where(Event.matter_id == matter_id, in_welcome_index(), expr == thread)
            .order_by(Event.seq)
            .limit(1)
        )
    ).first()
    if welcome is None:
        return first  # an internal thread that happens to be named welcome-<n>
    if row is not None and row.kind != "note" and row.seq < welcome.seq:
        return first  # a thread staff opened under that name before the invite
    replied = row is not None and row.kind == "message"
    if row is not None and not replied:  # staff notes came first: any reply since?
        replied = await _has_message(session, matter_id, thread)
    payload = stored_payload(welcome.payload)
    return Found(
        "welcome",
        thread,
        thread,
        "portal",
        to_ids(payload.get("to")) or (),
        (str(welcome.actor_kind), int(welcome.actor_id)),
        replied=replied,
    )


async def _has_message(session: AsyncSession, matter_id: int, thread: str) -> bool:
    """Does the thread hold a ``message`` (through the thread index)?"""
    expr = thread_expr(session.get_bind().dialect.name)
    query = select(Event.seq).where(
        Event.matter_id == matter_id,
        expr == thread,
        in_thread_index(),
        Event.kind == "message",
    )
    return (await session.execute(query.limit(1))).first() is not None


async def find_item(session: AsyncSession, matter_id: int, item: str) -> Found | None:
    """The item ``item`` of the matter (its event found by the idempotency key its id spells)."""
    who, dot, client_id = item.partition(".")
    actor = ids.parse(who)
    if not dot or actor is None or not client_id:
        return None
    row = (
        await session.execute(
            select(*_COLUMNS).where(
                Event.matter_id == matter_id,
                Event.actor_kind == actor[0],
                Event.actor_id == actor[1],
                Event.client_id == client_id,
                Event.kind.in_(tuple(ITEM_SEND_KINDS)),
            )
        )
    ).first()
    if row is None:
        return None
    thread = stored_payload(row.payload).get("thread")
    return _found(row, thread if isinstance(thread, str) else "")
