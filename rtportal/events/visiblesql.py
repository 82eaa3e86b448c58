"""Which events a client sees, as SQL: the rule of ``audience.view_for``.

A client's history page (``rtportal.events.log``) filters in the database,
so that its size, ``more`` and cursors step over visible events only: a
filter after the read would hand a client paging one event at a time one
page per staff-only event, counting them (docs/protocol.md, cursor
tokens). ``view_for`` still builds every view; this predicate is never
looser than it for a page's count, and never stricter (a test compares the
two over every kind, tests/test_history_visible.py):

* ``audience = 'portal'`` (the partial index ``ix_events_portal``);
* an addressed kind (``welcome``) only when its ``payload.to`` names the
  client;
* a threaded kind (``message``, ``edit``, ``delete``) when the client sees
  the other applicants, sent it, or its ``to`` names them.

The client's id is the bound parameter ``CONTACT``, so a query built with
the predicate is built once per dialect and ``see_applicants``.
"""

from __future__ import annotations

import functools

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)

from rtportal.db.models import Event
from rtportal.events.kinds import KINDS

__all__ = ["ADDRESSED", "CONTACT", "THREADED", "client_rule", "client_sees", "names"]

CONTACT = "visible_contact"
ADDRESSED = tuple(sorted(name for name, kind in KINDS.items() if kind.addressed))
THREADED = tuple(sorted(name for name, kind in KINDS.items() if kind.threaded))


def names(dialect: str, contact: object) -> ColumnElement[bool]:
    """``payload.to`` holds ``contact`` (an id, or a bound parameter)."""
    if dialect == "postgresql":
        return literal_column("(events.payload::jsonb -> 'to')").op("@>")(
            func.to_jsonb(cast(contact, Integer))
        )
    each = func.json_each(Event.payload, "$.to").table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == contact))


@functools.cache
def client_sees(dialect: str, see_applicants: bool) -> ColumnElement[bool]:
    """The events the client ``CONTACT`` sees (``see_applicants``: their membership's)."""
    return client_rule(dialect, see_applicants, bindparam(CONTACT, type_=Integer))


def client_rule(dialect: str, see_applicants: bool, contact: object) -> ColumnElement[bool]:
    """The events the client ``contact`` (an id, or a bound parameter) sees: the one
    spelling of the rule in SQL, for history pages (``client_sees``) and for the
    thread reads (``rtportal.threads.reading``, ``rtportal.threads.unread``)."""
    named = names(dialect, contact)
    own = and_(Event.actor_kind == "contact", Event.actor_id == contact)
    return and_(
        # literal, so that both planners may use the partial ix_events_portal
        # (migration 0014); bound, SQLite never would
        text("events.audience = 'portal'"),
        or_(
            Event.kind.not_in(ADDRESSED + THREADED),
            and_(Event.kind.in_(THREADED), or_(true() if see_applicants else false(), own, named)),
            and_(Event.kind.in_(ADDRESSED), named),
        ),
    )
