"""What staff and clients see of a matter's timeline (``GET /matters/{ref}/timeline``).

A client gets ``{"shown", "steps": [{"name", "description"}], "current"}``
and nothing else: never a phase's name or id, nor the number of phases
(``current`` is a step index, ``null`` before the first step). When the
firm hides the timeline a client gets ``shown: false`` and no steps. Staff
also get the type, its phases (each with its step index) and the phase.

The client's step of a phase is its own step or, for a phase mapped to
none (internal work between two steps), the step of the nearest earlier
phase that has one: the client stays where they were.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Firm, Matter
from rtportal.db.models_threads import MatterType, Phase, TimelineStep
from rtportal.principal import Principal
from rtportal.timeline.types import Loaded, load, type_body

__all__ = ["client_step", "loaded_of", "timeline_body"]


def client_step(loaded: Loaded, phase_id: int | None) -> TimelineStep | None:
    """The step a client sees for ``phase_id`` (None: no step yet, or no such phase)."""
    step_of: int | None = None
    for phase in loaded.phases:
        if phase.step_id is not None:
            step_of = phase.step_id
        if phase.id == phase_id:
            return next((s for s in loaded.steps if s.id == step_of), None)
    return None


async def loaded_of(session: AsyncSession, matter: Matter) -> Loaded | None:
    """The matter's type with its steps and phases (None: the matter has no type)."""
    if matter.matter_type_id is None:
        return None
    matter_type = await session.get(MatterType, matter.matter_type_id)
    return None if matter_type is None else await load(session, matter_type)


async def timeline_body(
    session: AsyncSession, principal: Principal, matter: Matter
) -> dict[str, Any]:
    firm = await session.get(Firm, matter.firm_id)
    shown = bool(firm is not None and firm.show_timeline)
    loaded = await loaded_of(session, matter)
    step = client_step(loaded, matter.phase_id) if loaded is not None else None
    current = loaded.steps.index(step) if loaded is not None and step is not None else None
    steps = loaded.steps if loaded is not None else []
    body: dict[str, Any] = {
        "shown": shown,
        "steps": [{"name": s.name, "description": s.description} for s in steps],
        "current": current,
    }
    if not principal.is_staff:
        if not shown:
            body["steps"], body["current"] = [], None
        return body
    phase = await session.get(Phase, matter.phase_id) if matter.phase_id is not None else None
    body["matter_type"] = type_body(loaded) if loaded is not None else None
    body["phase"] = phase.id if phase is not None else None
    return body
