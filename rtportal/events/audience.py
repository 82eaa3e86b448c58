"""``view_for``: the only function that builds what a viewer may see of an event.

Two viewer classes exist: ``staff`` (staff and bots of the firm: the full
event) and ``portal`` (contacts). A contact's view is built from the event
kind's schema (``rtportal.events.kinds``): only portal-audience events of a
registered kind, and of their payload only the fields the schema declares
visible to clients, copied recursively; nothing else of the stored payload
is read. The view is built once per (event, class) and the same dict
object is returned to every viewer of that class, because this runs per
delivered message per connection. Treat returned dicts as read-only.

Of the portal events, two kinds of kind are seen by some clients only
(docs/threads.md "Who sees what"): an ``addressed`` kind (``welcome``) by
the contacts its ``to`` names; a ``threaded`` kind (thread items, their
edits and deletes) by the contacts its ``to`` names, by its sender, and by
every client member whose membership sees the other applicants
(``see_applicants``: the caller passes it, from the membership it checked).
"""

from __future__ import annotations

from typing import Any, Literal

from rtportal.events.event import StoredEvent
from rtportal.events.kinds import KINDS
from rtportal.jsonlimits import unreadable_payload
from rtportal.principal import Principal

__all__ = [
    "ViewerClass",
    "addressed",
    "personal",
    "portal_view",
    "view_for",
    "viewer_class",
]

ViewerClass = Literal["staff", "portal"]
_UNREADABLE = unreadable_payload()


def viewer_class(principal: Principal) -> ViewerClass:
    """``"staff"`` for staff and bots, ``"portal"`` for contacts."""
    return "staff" if principal.is_staff else "portal"


def portal_view(event: StoredEvent) -> dict[str, Any] | None:
    """What a client may see of ``event`` (cached on the event)."""
    views = event.views
    if "portal" in views:
        return views["portal"]
    view: dict[str, Any] | None = None
    kind = KINDS.get(event.kind)
    if event.audience == "portal" and kind is not None and "portal" in kind.audiences:
        if event.payload == _UNREADABLE:
            # A stored payload that broke the JSON rule (jsonlimits.stored_payload):
            # the client is told so instead of being shown an empty payload.
            payload: Any = dict(_UNREADABLE)
        else:
            payload = kind.payload.client_copy(event.payload)
        view = event.to_wire()
        view["payload"] = payload if isinstance(payload, dict) else {}
        if not kind.blob:
            view["blob"] = None
    views["portal"] = view
    return view


def _staff_view(event: StoredEvent) -> dict[str, Any]:
    view = event.views.get("staff")
    if view is None:
        view = event.to_wire()
        event.views["staff"] = view
    return view


def addressed(event: StoredEvent) -> bool:
    """Is ``event`` of a kind clients see only when it names them (``payload.to``)?"""
    kind = KINDS.get(event.kind)
    return kind is not None and kind.addressed


def personal(event: StoredEvent, see_applicants: bool) -> bool:
    """Does whether a client sees ``event`` depend on who the client is?

    Addressed kinds always; thread items unless the viewer sees every
    applicant's threads. Callers that cache per viewer class key these per
    contact (``realtime.framecache``).
    """
    kind = KINDS.get(event.kind)
    if kind is None or event.audience != "portal":
        return False
    return kind.addressed or (kind.threaded and not see_applicants)


def _named(view: dict[str, Any], contact_id: int) -> bool:
    to = view["payload"].get("to")
    return isinstance(to, list) and contact_id in to


def view_for(
    event: StoredEvent, principal: Principal, see_applicants: bool = False
) -> dict[str, Any] | None:
    """The event as ``principal`` may see it, or ``None`` if they may not see it.

    ``see_applicants``: the client's membership of this matter sees the
    other applicants' threads (``matter_members.see_applicants``); the
    default is the narrower view. Ignored for staff and bots.

    A client's view of an addressed kind (``welcome``) exists only for the
    contacts its ``to`` names; of a thread item (``threaded``) for those, its
    sender, and members who see applicants. The same view object either way,
    so callers that cache per viewer class key these per contact when
    ``personal`` says so (``realtime.framecache``).
    """
    if principal.is_staff:
        return _staff_view(event)
    view = portal_view(event)
    if view is None:
        return None
    kind = KINDS[event.kind]  # portal_view found it registered
    if kind.addressed:
        return view if _named(view, principal.id) else None
    if kind.threaded and not see_applicants:
        actor = event.actor
        own = actor.get("kind") == "contact" and actor.get("id") == principal.id
        if not own and not _named(view, principal.id):
            return None
    return view
