"""Moving a matter to a phase: the matter's row, a ``phase`` event, maybe a ``step`` event.

In one unit of work (``rtportal.events.unit``): the matter's type and phase
change, a staff-audience ``phase`` event records the move (id, internal
name, the phase it came from), and a portal ``step`` event is written only
when the step the client sees changes and the firm shows the timeline. A
move between two phases of one step writes no ``step`` event: a client's
stream, counts and timeline do not move. Events are published after the
commit, so nobody sees a move that was rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rtportal.db.models import Firm, Matter
from rtportal.db.models_threads import MatterType, Phase, TimelineStep
from rtportal.errors import BadRequest, NotFound
from rtportal.events.event import StoredEvent
from rtportal.events.unit import Unit
from rtportal.principal import Principal
from rtportal.timeline.types import MAX_ID, Loaded, load
from rtportal.timeline.views import client_step, loaded_of

__all__ = ["move", "phase_id_of", "step_payload"]


def phase_id_of(body: dict[str, Any]) -> int:
    """``{"phase": id}``, checked (``bad_request`` reason ``invalid_phase``)."""
    unknown = set(body) - {"phase"}
    if unknown:
        raise BadRequest(f"unknown fields: {sorted(unknown)}", reason="unknown_field")
    value = body.get("phase")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise BadRequest("phase: the id of a phase", reason="invalid_phase", field="phase")
    return value


def step_payload(loaded: Loaded, step: TimelineStep | None) -> dict[str, Any]:
    """A ``step`` event's payload: index (0-based), total, name, description."""
    payload: dict[str, Any] = {"total": len(loaded.steps)}
    if step is not None:
        payload["index"] = loaded.steps.index(step)
        payload["name"] = step.name
        payload["description"] = step.description
    return payload


async def _locked(unit: Unit, matter: Matter) -> Matter:
    """The matter's row, re-read under a row lock (PostgreSQL; SQLite's write
    transaction holds the database), so concurrent moves see each other's
    ``from``."""
    query = select(Matter).where(Matter.id == matter.id).with_for_update()
    found = (await unit.session.scalars(query.execution_options(populate_existing=True))).one()
    return found


async def move(unit: Unit, actor: Principal, matter: Matter, phase_id: int) -> list[StoredEvent]:
    """Move ``matter`` (of ``actor``'s firm, from ``can_access``) to ``phase_id``
    of one of the firm's types; the events written (none when already there).

    ``not_found`` for a phase of another firm or none at all.
    """
    session = unit.session
    phase = await session.get(Phase, phase_id)
    matter_type = await session.get(MatterType, phase.matter_type_id) if phase else None
    if phase is None or matter_type is None or matter_type.firm_id != matter.firm_id:
        raise NotFound("no such phase")
    matter = await _locked(unit, matter)
    before = matter.phase_id
    if before == phase.id:
        return []
    old = await loaded_of(session, matter)
    old_step = client_step(old, before) if old is not None else None
    new = await load(session, matter_type)
    new_step = client_step(new, phase.id)
    matter.matter_type_id, matter.phase_id = matter_type.id, phase.id
    await session.flush()
    payload: dict[str, Any] = {"phase": phase.id, "name": phase.name}
    if before is not None:
        payload["from"] = before
    written = [
        await unit.append(
            matter=matter, actor=actor, kind="phase", audience="staff", payload=payload, system=True
        )
    ]
    firm = await session.get(Firm, matter.firm_id)
    old_id = old_step.id if old_step is not None else None
    new_id = new_step.id if new_step is not None else None
    if firm is not None and firm.show_timeline and old_id != new_id:
        written.append(
            await unit.append(
                matter=matter,
                actor=actor,
                kind="step",
                audience="portal",
                payload=step_payload(new, new_step),
                system=True,
            )
        )
    return [event for event, _ in written]
