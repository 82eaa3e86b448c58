"""``view_for``'s rule for a client as SQL: which of a matter's events a contact sees.

For reads that page the log for a client (HTTP history): filtering in the
statement means a page, its byte bound and its ``more`` count only events
the client sees, so an empty page or a ``more`` never tells a client that
events it may not see exist (a client paging with ``limit=1`` used to get
one empty page per hidden event). ``view_for`` still has the last word on
every row read. Derived from the kind registry, as ``view_for`` is:
portal audience and a kind with a portal view; an addressed kind only when
``payload.to`` names the contact; a threaded kind also when the contact
sent it or sees the matter's applicants.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, exists, func, literal_column, or_, select

from rtportal.db.models import Event
from rtportal.events.kinds import KINDS

__all__ = ["names_contact", "seen_by_contact"]


def names_contact(dialect: str, contact_id: int) -> ColumnElement[bool]:
    """``payload.to`` (a JSON list of contact ids) holds ``contact_id``."""
    if dialect == "postgresql":
        return literal_column("(events.payload::jsonb -> 'to')").op("@>")(
            func.to_jsonb(cast(contact_id, Integer))
        )
    each = func.json_each(Event.payload, "$.to").table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == contact_id))


def seen_by_contact(dialect: str, contact_id: int, see_applicants: bool) -> ColumnElement[bool]:
    """The events ``view_for`` gives the contact a view of, as one condition."""
    portal = sorted(n for n, k in KINDS.items() if "portal" in k.audiences)
    addressed = sorted(n for n, k in KINDS.items() if k.addressed)
    threaded = sorted(n for n, k in KINDS.items() if k.threaded and not k.addressed)
    named = names_contact(dialect, contact_id)
    rules: list[ColumnElement[bool]] = [Event.kind.not_in(addressed + threaded)]
    if addressed:
        rules.append(and_(Event.kind.in_(addressed), named))
    if threaded:
        own = and_(Event.actor_kind == "contact", Event.actor_id == contact_id)
        if see_applicants:
            rules.append(Event.kind.in_(threaded))
        else:
            rules.append(and_(Event.kind.in_(threaded), or_(own, named)))
    # The audience as a literal: a partial index (ix_events_portal) is usable
    # only when the statement's own text implies its predicate.
    audience: ColumnElement[Any] = literal_column("events.audience = 'portal'")
    return and_(audience, Event.kind.in_(portal), or_(*rules))
