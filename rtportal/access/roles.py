"""What each staff role may do (docs/access.md "Roles"): the one permission table.

Only for callers who may already see the object: a caller of another firm,
or a client who is not a member, gets ``not_found`` from the lookup before
a role is ever checked. ``require`` raises ``Forbidden`` (403) for staff,
``NotFound`` for clients and bots. Not here: what every staff role may do
alike (read and write every matter of the firm; the review inbox and its acts,
``rtportal.reviews.inbox.require_reviewer``).
"""

from __future__ import annotations

from typing import Literal

from rtportal.db.models import Matter
from rtportal.errors import Forbidden, NotFound
from rtportal.principal import Principal

__all__ = ["Action", "allowed", "require"]

Action = Literal[
    "firm.manage",  # firm settings, welcome templates
    "staff.manage",  # invite staff, change roles, disable
    "outbox.read",
    "audit.read",
    "matter.create",
    "matter.edit",
    "contact.edit",  # create and edit contacts, link applicants
    "portal.manage",  # invite, resend, remove, regenerate (on one matter)
    "keys.manage",  # the firm's key directory: root key, staff/bot certificates, escrow
]

_ORG_ADMIN_ONLY = frozenset(
    {"firm.manage", "staff.manage", "outbox.read", "audit.read", "keys.manage"}
)
_MATTER_ADMIN = frozenset({"matter.create", "matter.edit", "contact.edit", "portal.manage"})


def allowed(principal: Principal, action: Action, matter: Matter | None = None) -> bool:
    """May ``principal`` (of the object's firm) do ``action`` (on ``matter``)?"""
    if principal.kind != "staff":
        return False
    role = principal.role
    if role == "org_admin":
        return True
    if action in _ORG_ADMIN_ONLY:
        return False
    if role == "matter_admin":
        return action in _MATTER_ADMIN
    if role == "staff":
        if action == "contact.edit":
            return True
        if action == "portal.manage":
            return matter is not None and matter.responsible_staff_id == principal.id
    return False


def require(principal: Principal, action: Action, matter: Matter | None = None) -> None:
    """``Forbidden`` for a staff member whose role does not allow ``action``;
    ``NotFound`` for clients and bots, for whom staff actions do not exist (a
    client learns nothing about what the firm's staff can do or see)."""
    if allowed(principal, action, matter):
        return
    if principal.kind != "staff":
        raise NotFound("no such endpoint or object")
    raise Forbidden(f"your role may not do this ({action})")
