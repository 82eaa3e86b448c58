"""A firm's matter types: ordered internal phases, ordered client steps, the mapping.

The wire shape (``type_body``, and what ``POST``/``PATCH
/api/v1/firm/matter-types`` take) lists ``steps`` and ``phases`` in order;
a phase names its step by the step's 0-based index in the same list (or
``null``: no step of its own), so a type and its mapping are written in one
request and a phase can only ever map to a step of its own type. On
``PATCH`` a phase or step carrying the ``id`` of one of the type's rows keeps
that row (matters on a kept phase stay on it); the type's rows left out are
deleted, and a matter on a deleted phase is left with no phase.

Every refusal is ``bad_request`` with a stable ``details.reason``
(``REASONS``); another firm's type is ``not_found``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db.models import Matter
from rtportal.db.models_threads import MatterType, Phase, TimelineStep
from rtportal.errors import BadRequest, NotFound

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_ITEMS",
    "MAX_NAME",
    "MAX_TYPES",
    "REASONS",
    "Loaded",
    "TypeInput",
    "checked_description",
    "checked_name",
    "create_type",
    "get_type",
    "list_types",
    "load",
    "parse_type",
    "type_body",
    "update_type",
]

MAX_NAME = 200  # characters, after trimming
MAX_DESCRIPTION = 2000
MAX_ITEMS = 50  # phases, and steps, per type
MAX_TYPES = 100  # per firm
MAX_ID = 2**31 - 1

REASONS = (
    "unknown_field",
    "invalid_name",
    "invalid_description",
    "invalid_list",
    "too_many_phases",
    "too_many_steps",
    "unknown_step",
    "unknown_phase",
    "duplicate_id",
    "duplicate_name",
    "too_many_types",
    "steps_and_phases",
)

_TYPE_FIELDS = frozenset({"name", "steps", "phases"})
_STEP_FIELDS = frozenset({"id", "name", "description"})
_PHASE_FIELDS = frozenset({"id", "name", "step"})


@dataclass(frozen=True, slots=True)
class StepInput:
    id: int | None
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class PhaseInput:
    id: int | None
    name: str
    step: int | None  # index into the request's steps


@dataclass(frozen=True, slots=True)
class TypeInput:
    name: str | None  # None: unchanged (PATCH)
    steps: list[StepInput] | None  # None: unchanged (PATCH); given with phases
    phases: list[PhaseInput] | None


@dataclass(frozen=True, slots=True)
class Loaded:
    """A type with its steps and phases, each in order."""

    type: MatterType
    steps: list[TimelineStep]
    phases: list[Phase]


def _refuse(reason: str, message: str, field: str) -> BadRequest:
    return BadRequest(message, reason=reason, field=field)


def _fields(value: Any, allowed: frozenset[str], field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse("invalid_list", f"{field} must be a JSON object", field)
    unknown = set(value) - allowed
    if unknown:
        raise _refuse("unknown_field", f"{field}: unknown fields {sorted(unknown)}", field)
    return value


def checked_name(value: Any, field: str) -> str:
    """1-200 characters after trimming, no control characters (a name is one line)."""
    if not isinstance(value, str):
        raise _refuse("invalid_name", f"{field} must be a string", field)
    name = value.strip()
    if not 1 <= len(name) <= MAX_NAME or any(unicodedata.category(c).startswith("C") for c in name):
        raise _refuse(
            "invalid_name", f"{field}: 1-{MAX_NAME} characters, no control characters", field
        )
    return name


def checked_description(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise _refuse(
            "invalid_description", f"{field}: a string of at most {MAX_DESCRIPTION}", field
        )
    # Line breaks are allowed in a description; other control characters are not.
    if any(unicodedata.category(c) == "Cc" and c != "\n" for c in value):
        raise _refuse("invalid_description", f"{field}: no control characters", field)
    return value.strip()


def _row_id(value: Any, field: str, reason: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise _refuse(reason, f"{field}: not an id of this type", field)
    return value


def _list(value: Any, field: str, reason: str) -> list[Any]:
    if not isinstance(value, list):
        raise _refuse("invalid_list", f"{field} must be a list", field)
    if len(value) > MAX_ITEMS:
        raise _refuse(reason, f"{field}: at most {MAX_ITEMS}", field)
    return value


def _unique(names: list[str], field: str) -> None:
    if len({n.casefold() for n in names}) != len(names):
        raise _refuse("duplicate_name", f"{field}: names must differ", field)


def _steps(value: Any) -> list[StepInput]:
    steps = []
    for i, raw in enumerate(_list(value, "steps", "too_many_steps")):
        item = _fields(raw, _STEP_FIELDS, f"steps[{i}]")
        steps.append(
            StepInput(
                _row_id(item.get("id"), f"steps[{i}].id", "unknown_step"),
                checked_name(item.get("name"), f"steps[{i}].name"),
                checked_description(item.get("description"), f"steps[{i}].description"),
            )
        )
    _unique([s.name for s in steps], "steps")
    return steps


def _phases(value: Any, step_count: int) -> list[PhaseInput]:
    phases = []
    for i, raw in enumerate(_list(value, "phases", "too_many_phases")):
        item = _fields(raw, _PHASE_FIELDS, f"phases[{i}]")
        step = item.get("step")
        if step is not None and (
            not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < step_count
        ):
            raise _refuse(
                "unknown_step",
                "a phase's step is the index of one of steps, or null",
                f"phases[{i}].step",
            )
        phases.append(
            PhaseInput(
                _row_id(item.get("id"), f"phases[{i}].id", "unknown_phase"),
                checked_name(item.get("name"), f"phases[{i}].name"),
                step,
            )
        )
    _unique([p.name for p in phases], "phases")
    return phases


def parse_type(body: dict[str, Any], *, partial: bool) -> TypeInput:
    """The checked request; ``partial`` (PATCH): each part optional, but steps and
    phases together (a phase names its step by index in the same request)."""
    _fields(body, _TYPE_FIELDS, "body")
    name = checked_name(body.get("name"), "name") if "name" in body or not partial else None
    if ("steps" in body) != ("phases" in body):
        raise _refuse("steps_and_phases", "steps and phases are given together", "phases")
    if "steps" not in body:
        if partial:
            return TypeInput(name, None, None)
        return TypeInput(name, [], [])
    steps = _steps(body["steps"])
    return TypeInput(name, steps, _phases(body["phases"], len(steps)))


async def load(session: AsyncSession, matter_type: MatterType) -> Loaded:
    steps = await session.scalars(
        select(TimelineStep)
        .where(TimelineStep.matter_type_id == matter_type.id)
        .order_by(TimelineStep.position)
    )
    phases = await session.scalars(
        select(Phase).where(Phase.matter_type_id == matter_type.id).order_by(Phase.position)
    )
    return Loaded(matter_type, list(steps), list(phases))


async def get_type(session: AsyncSession, firm_id: int, type_id: object) -> MatterType:
    """The firm's type ``type_id``; another firm's, a missing one and a bad id alike
    are ``not_found``."""
    if not isinstance(type_id, int) or isinstance(type_id, bool) or not 1 <= type_id <= MAX_ID:
        raise NotFound("no such matter type")
    found = await session.get(MatterType, type_id)
    if found is None or found.firm_id != firm_id:
        raise NotFound("no such matter type")
    return found


async def list_types(session: AsyncSession, firm_id: int) -> list[Loaded]:
    found = await session.scalars(
        select(MatterType).where(MatterType.firm_id == firm_id).order_by(MatterType.name)
    )
    return [await load(session, t) for t in found]


def type_body(loaded: Loaded) -> dict[str, Any]:
    """The staff shape: ids, names, descriptions, each phase's step index."""
    index = {s.id: i for i, s in enumerate(loaded.steps)}
    return {
        "id": loaded.type.id,
        "name": loaded.type.name,
        "steps": [{"id": s.id, "name": s.name, "description": s.description} for s in loaded.steps],
        "phases": [
            {"id": p.id, "name": p.name, "step": index.get(p.step_id) if p.step_id else None}
            for p in loaded.phases
        ],
    }


async def _check_name(session: AsyncSession, firm_id: int, name: str, own: int | None) -> None:
    query = select(MatterType.id).where(
        MatterType.firm_id == firm_id, func.lower(MatterType.name) == name.lower()
    )
    if own is not None:
        query = query.where(MatterType.id != own)
    if (await session.scalars(query)).first() is not None:
        raise _refuse("duplicate_name", "the firm has a matter type of that name", "name")


def _kept(rows: dict[int, Any], wanted: list[int | None], reason: str, field: str) -> None:
    ids = [i for i in wanted if i is not None]
    if len(set(ids)) != len(ids):
        raise _refuse("duplicate_id", f"{field}: an id appears twice", field)
    if not set(ids) <= set(rows):
        raise _refuse(reason, f"{field}: an id that is not of this type", field)


async def _replace(
    session: AsyncSession, old: Loaded, steps: list[StepInput], phases: list[PhaseInput]
) -> None:
    """Write the new lists over the type's rows, in an order the unique positions allow."""
    old_steps = {s.id: s for s in old.steps}
    old_phases = {p.id: p for p in old.phases}
    _kept(old_steps, [s.id for s in steps], "unknown_step", "steps")
    _kept(old_phases, [p.id for p in phases], "unknown_phase", "phases")
    # Park every position first: a reorder would otherwise collide on the
    # (type, position) unique constraint mid-flush.
    for i, parked in enumerate(old.steps):
        parked.position = -1 - i
    for i, parked_phase in enumerate(old.phases):
        parked_phase.position = -1 - i
    await session.flush()
    gone = [pid for pid in old_phases if pid not in {p.id for p in phases}]
    if gone:
        # Explicit, not left to ON DELETE SET NULL: SQLite may run without it.
        await session.execute(update(Matter).where(Matter.phase_id.in_(gone)).values(phase_id=None))
        for pid in gone:
            await session.delete(old_phases[pid])
    step_rows: list[TimelineStep] = []
    for position, step in enumerate(steps):
        row = old_steps.get(step.id) if step.id else None
        if row is None:
            row = TimelineStep(matter_type_id=old.type.id)
            session.add(row)
        row.position, row.name, row.description = position, step.name, step.description
        step_rows.append(row)
    await session.flush()
    for position, phase in enumerate(phases):
        prow = old_phases.get(phase.id) if phase.id else None
        if prow is None:
            prow = Phase(matter_type_id=old.type.id)
            session.add(prow)
        prow.position, prow.name = position, phase.name
        prow.step_id = step_rows[phase.step].id if phase.step is not None else None
    await session.flush()
    for sid in set(old_steps) - {s.id for s in steps}:
        await session.delete(old_steps[sid])
    await session.flush()


async def create_type(session: AsyncSession, firm_id: int, data: TypeInput) -> Loaded:
    assert data.name is not None and data.steps is not None and data.phases is not None
    count = await session.scalar(
        select(func.count()).select_from(MatterType).where(MatterType.firm_id == firm_id)
    )
    if (count or 0) >= MAX_TYPES:
        raise _refuse("too_many_types", f"a firm has at most {MAX_TYPES} matter types", "name")
    await _check_name(session, firm_id, data.name, None)
    matter_type = MatterType(firm_id=firm_id, name=data.name)
    session.add(matter_type)
    await session.flush()
    await _replace(session, Loaded(matter_type, [], []), data.steps, data.phases)
    return await load(session, matter_type)


async def update_type(
    session: AsyncSession, firm_id: int, type_id: object, data: TypeInput
) -> Loaded:
    matter_type = await get_type(session, firm_id, type_id)
    if data.name is not None:
        await _check_name(session, firm_id, data.name, matter_type.id)
        matter_type.name = data.name
    if data.steps is not None and data.phases is not None:
        await _replace(session, await load(session, matter_type), data.steps, data.phases)
    return await load(session, matter_type)
