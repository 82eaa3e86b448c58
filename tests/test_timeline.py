"""The phase timeline through the real app (docs/threads.md "Phase timeline"):
matter types and their validation, moving a matter, the ``phase`` and ``step``
events, what a client sees (never a phase), and other firms' objects."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from typing import Any

import httpx
import pytest

from rtportal.app import create_app
from rtportal.events.unit import Unit
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm

TYPES = "/api/v1/firm/matter-types"


def _error(response: httpx.Response, status: int, code: str, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    if reason is not None:
        assert error["details"]["reason"] == reason, error


def _visa(tag: str) -> dict[str, Any]:
    """Five internal phases over three client steps; "Waiting" maps to none."""
    return {
        "name": f"Visa {tag}",
        "steps": [
            {"name": "Preparing", "description": "We gather your documents"},
            {"name": "Lodged", "description": "Your application is with the department"},
            {"name": "Decided", "description": "The decision has arrived"},
        ],
        "phases": [
            {"name": f"SECRET-intake-{tag}", "step": 0},
            {"name": f"SECRET-chase-docs-{tag}", "step": 0},
            {"name": f"SECRET-waiting-{tag}", "step": None},
            {"name": f"SECRET-lodge-{tag}", "step": 1},
            {"name": f"SECRET-grant-{tag}", "step": 2},
        ],
    }


async def _type(http: httpx.AsyncClient, kit: FirmKit) -> dict[str, Any]:
    response = await http.post(TYPES, json=_visa(secrets.token_hex(3)), headers=kit.auth("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["matter_type"]
    return created


async def _move(http: httpx.AsyncClient, kit: FirmKit, phase: int) -> dict[str, Any]:
    response = await http.post(
        f"/api/v1/matters/{kit.ref}/phase", json={"phase": phase}, headers=kit.auth("staff")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _events(http: httpx.AsyncClient, kit: FirmKit, who: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth(who))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": ""}, "invalid_name"),
        ({"name": "   "}, "invalid_name"),
        ({"name": "x" * 201}, "invalid_name"),
        ({"name": "line\nbreak"}, "invalid_name"),
        ({"name": 7}, "invalid_name"),
        ({"name": "T", "colour": "red"}, "unknown_field"),
        ({"name": "T", "steps": []}, "steps_and_phases"),
        ({"name": "T", "steps": {}, "phases": []}, "invalid_list"),
        ({"name": "T", "steps": [], "phases": [{"name": "p", "step": 0}]}, "unknown_step"),
        (
            {"name": "T", "steps": [{"name": "s"}], "phases": [{"name": "p", "step": 1}]},
            "unknown_step",
        ),
        (
            {"name": "T", "steps": [{"name": "s"}], "phases": [{"name": "p", "step": True}]},
            "unknown_step",
        ),
        ({"name": "T", "steps": [], "phases": [{"name": "p"}] * 2}, "duplicate_name"),
        ({"name": "T", "steps": [{"name": "s"}, {"name": "S"}], "phases": []}, "duplicate_name"),
        (
            {"name": "T", "steps": [], "phases": [{"name": f"p{i}"} for i in range(51)]},
            "too_many_phases",
        ),
        (
            {"name": "T", "steps": [{"name": f"s{i}"} for i in range(51)], "phases": []},
            "too_many_steps",
        ),
        (
            {"name": "T", "steps": [{"name": "s", "description": "d" * 2001}], "phases": []},
            "invalid_description",
        ),
        ({"name": "T", "steps": [], "phases": [{"name": "p", "id": 5}]}, "unknown_phase"),
        ({"name": "T", "steps": [], "phases": ["p"]}, "invalid_list"),
    ],
)
async def test_a_bad_matter_type_is_refused_with_its_reason(
    http: httpx.AsyncClient, make_firm: MakeFirm, body: dict[str, Any], reason: str
) -> None:
    kit = await make_firm()
    _error(await http.post(TYPES, json=body, headers=kit.auth("admin")), 400, "bad_request", reason)
    listed = await http.get(TYPES, headers=kit.auth("admin"))
    assert listed.json() == {"matter_types": []}  # nothing half-written


async def test_fifty_phases_and_steps_fit_and_names_are_unique_per_firm(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    body = {
        "name": "Big",
        "steps": [{"name": f"s{i}"} for i in range(50)],
        "phases": [{"name": f"p{i}", "step": i} for i in range(50)],
    }
    created = await http.post(TYPES, json=body, headers=kit.auth("admin"))
    assert created.status_code == 201, created.text
    assert [p["step"] for p in created.json()["matter_type"]["phases"]] == list(range(50))
    again = await http.post(TYPES, json={"name": "BIG"}, headers=kit.auth("admin"))
    _error(again, 400, "bad_request", "duplicate_name")


async def test_who_may_read_and_edit_matter_types(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    created = await _type(http, kit)
    path = f"{TYPES}/{created['id']}"
    assert (await http.get(TYPES, headers=kit.auth("staff"))).json()["matter_types"] == [created]
    _error(await http.post(TYPES, json=_visa("x"), headers=kit.auth("staff")), 403, "forbidden")
    _error(await http.patch(path, json={"name": "N"}, headers=kit.auth("staff")), 403, "forbidden")
    for who in ("contact", "bot"):
        _error(await http.get(TYPES, headers=kit.auth(who)), 404, "not_found")
        _error(await http.patch(path, json={"name": "N"}, headers=kit.auth(who)), 404, "not_found")
    # Another firm's admin: the type does not exist for them, nor in their list.
    _error(
        await http.patch(path, json={"name": "N"}, headers=other.auth("admin")), 404, "not_found"
    )
    assert (await http.get(TYPES, headers=other.auth("admin"))).json() == {"matter_types": []}
    _error(
        await http.patch(f"{TYPES}/999999999", json={}, headers=kit.auth("admin")), 404, "not_found"
    )


async def test_patch_reorders_keeps_ids_and_a_deleted_phase_leaves_the_matter_without_one(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    created = await _type(http, kit)
    steps, phases = created["steps"], created["phases"]
    await _move(http, kit, phases[4]["id"])
    # Reverse the steps (ids kept), keep phases 0, 1 and 3 (remapped), drop 2 and 4, add one.
    body = {
        "name": "Visa renamed",
        "steps": [
            {"id": s["id"], "name": s["name"], "description": s["description"]}
            for s in reversed(steps)
        ],
        "phases": [
            {"id": phases[3]["id"], "name": "lodge", "step": 0},
            {"id": phases[0]["id"], "name": "intake", "step": 2},
            {"name": "new", "step": None},
            {"id": phases[1]["id"], "name": "chase", "step": 1},
        ],
    }
    path = f"{TYPES}/{created['id']}"
    response = await http.patch(path, json=body, headers=kit.auth("admin"))
    assert response.status_code == 200, response.text
    updated = response.json()["matter_type"]
    assert [s["id"] for s in updated["steps"]] == [s["id"] for s in reversed(steps)]
    assert [p["id"] for p in updated["phases"]][:2] == [phases[3]["id"], phases[0]["id"]]
    assert [p["step"] for p in updated["phases"]] == [0, 2, None, 1]
    timeline = await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("staff"))
    assert timeline.json()["timeline"]["phase"] is None  # its phase was deleted
    # An id of another type's row is refused, and nothing changes.
    other_type = await _type(http, kit)
    stolen = {"steps": [], "phases": [{"id": other_type["phases"][0]["id"], "name": "x"}]}
    _error(
        await http.patch(path, json=stolen, headers=kit.auth("admin")),
        400,
        "bad_request",
        "unknown_phase",
    )
    twice = {
        "steps": [],
        "phases": [{"id": phases[0]["id"], "name": "a"}, {"id": phases[0]["id"], "name": "b"}],
    }
    _error(
        await http.patch(path, json=twice, headers=kit.auth("admin")),
        400,
        "bad_request",
        "duplicate_id",
    )
    listed = (await http.get(TYPES, headers=kit.auth("admin"))).json()["matter_types"]
    assert updated in listed


async def test_moving_writes_phase_always_and_step_only_when_the_clients_step_changes(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    created = await _type(http, kit)
    phases = [p["id"] for p in created["phases"]]
    names = [p["name"] for p in created["phases"]]
    before = len(await _events(http, kit, "contact"))
    first = await _move(http, kit, phases[0])
    assert len(first["events"]) == 2  # phase + step (none -> Preparing)
    seen = await _events(http, kit, "contact")
    assert [e["kind"] for e in seen[before:]] == ["step"]
    assert seen[-1]["payload"] == {
        "index": 0,
        "total": 3,
        "name": "Preparing",
        "description": "We gather your documents",
    }
    # Within one step, and into a phase of no step: the client's stream does not move.
    for phase in (phases[1], phases[2]):
        moved = await _move(http, kit, phase)
        assert len(moved["events"]) == 1
        assert moved["timeline"]["current"] == 0
    assert await _events(http, kit, "contact") == seen
    client_timeline = await http.get(
        f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact")
    )
    assert client_timeline.json()["timeline"] == {
        "shown": True,
        "steps": [
            {"name": "Preparing", "description": "We gather your documents"},
            {"name": "Lodged", "description": "Your application is with the department"},
            {"name": "Decided", "description": "The decision has arrived"},
        ],
        "current": 0,
        "blocking": [],
    }
    await _move(http, kit, phases[3])
    assert [
        e["payload"].get("index") for e in (await _events(http, kit, "contact"))[len(seen) :]
    ] == [1]
    # The same phase again: nothing at all.
    assert (await _move(http, kit, phases[3]))["events"] == []
    # Staff see every move with its internal name and where it came from.
    staff = [e for e in await _events(http, kit, "staff") if e["kind"] == "phase"]
    assert [e["audience"] for e in staff] == ["staff"] * 4
    assert [e["payload"] for e in staff] == [
        {"phase": phases[0], "name": names[0]},
        {"phase": phases[1], "name": names[1], "from": phases[0]},
        {"phase": phases[2], "name": names[2], "from": phases[1]},
        {"phase": phases[3], "name": names[3], "from": phases[2]},
    ]
    # Nothing a client is given names a phase: scan every client payload.
    client_text = json.dumps(await _events(http, kit, "contact"))
    client_text += (
        await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    ).text
    client_text += (await http.get(f"/api/v1/matters/{kit.ref}", headers=kit.auth("contact"))).text
    for name in names:
        assert name not in client_text
    assert "SECRET" not in client_text
    for phase_id in phases:
        assert f'"phase": {phase_id}' not in client_text and '"phases"' not in client_text


async def test_a_firm_that_hides_the_timeline_gives_clients_no_steps_and_no_events(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    created = await _type(http, kit)
    hidden = await http.patch(
        "/api/v1/firm", json={"show_timeline": False}, headers=kit.auth("admin")
    )
    assert hidden.status_code == 200 and hidden.json()["firm"]["show_timeline"] is False
    _error(
        await http.patch("/api/v1/firm", json={"show_timeline": "no"}, headers=kit.auth("admin")),
        400,
        "bad_request",
    )
    before = await _events(http, kit, "contact")
    moved = await _move(http, kit, created["phases"][3]["id"])
    assert len(moved["events"]) == 1 and moved["timeline"]["current"] == 1
    assert await _events(http, kit, "contact") == before
    timeline = await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    assert timeline.json()["timeline"] == {
        "shown": False,
        "steps": [],
        "current": None,
        "blocking": [],
    }
    shown = await http.patch(
        "/api/v1/firm", json={"show_timeline": True}, headers=kit.auth("admin")
    )
    assert shown.json()["firm"]["show_timeline"] is True
    timeline = await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    assert timeline.json()["timeline"]["current"] == 1


async def test_moves_are_for_staff_of_the_firm_with_phases_of_the_firm(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    created = await _type(http, kit)
    theirs = await _type(http, other)
    path = f"/api/v1/matters/{kit.ref}/phase"
    phase = created["phases"][0]["id"]
    for who in ("contact", "bot"):
        _error(
            await http.post(path, json={"phase": phase}, headers=kit.auth(who)), 404, "not_found"
        )
    # Another firm's matter, and another firm's phase on our matter: not found.
    _error(
        await http.post(path, json={"phase": phase}, headers=other.auth("staff")), 404, "not_found"
    )
    foreign = {"phase": theirs["phases"][0]["id"]}
    _error(await http.post(path, json=foreign, headers=kit.auth("staff")), 404, "not_found")
    _error(
        await http.post(path, json={"phase": 999_999_999}, headers=kit.auth("staff")),
        404,
        "not_found",
    )
    for bad in ({}, {"phase": "1"}, {"phase": 0}, {"phase": True}, {"phase": 1, "x": 1}):
        _error(await http.post(path, json=bad, headers=kit.auth("staff")), 400, "bad_request")
    timeline = f"/api/v1/matters/{kit.ref}/timeline"
    _error(await http.get(timeline, headers=other.auth("contact")), 404, "not_found")
    _error(await http.get(timeline, headers=other.auth("admin")), 404, "not_found")
    # A client of another matter of the same firm.
    _, token = await kit.add_contact("Stranger", matter=await kit.add_matter())
    _error(await http.get(timeline, headers={"Authorization": f"Bearer {token}"}), 404, "not_found")
    assert [e for e in await _events(http, kit, "staff") if e["kind"] == "phase"] == []


async def test_phase_and_step_are_system_kinds(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    for kind, payload in (("phase", {"phase": 1}), ("step", {"total": 1})):
        for audience in ("staff", "portal"):
            response = await http.post(
                f"/api/v1/matters/{kit.ref}/events",
                json={"kind": kind, "audience": audience, "payload": payload},
                headers=kit.auth("staff"),
            )
            _error(response, 400, "bad_request")
            assert "written only by the server" in response.json()["error"]["message"]


async def test_stored_phase_events_of_the_earlier_kind_still_read(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    legacy = {
        "phase": "Lodged",
        "step": {"index": 1, "total": 3, "staff_reason": "LEAK-reason"},
        "checklist": [{"label": "Passport", "done": True, "staff_comment": "LEAK-comment"}],
        "staff_detail": "LEAK-detail",
    }
    async with Unit(kit.db, None) as unit:
        await unit.append(
            matter=kit.matter,
            actor=kit.staff,
            kind="phase",
            audience="portal",
            payload=legacy,
            system=True,
        )
    (client,) = [e for e in await _events(http, kit, "contact") if e["kind"] == "phase"]
    assert client["payload"] == {
        "phase": "Lodged",
        "step": {"index": 1, "total": 3},
        "checklist": [{"label": "Passport", "done": True}],
    }
    (staff,) = [e for e in await _events(http, kit, "staff") if e["kind"] == "phase"]
    assert staff["payload"] == legacy


async def test_concurrent_moves_chain_their_from_and_steps_follow_the_order(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Moves racing on one matter are serialised by the matter's row: each
    ``phase`` event's ``from`` is the phase before it in the log, and a
    ``step`` event follows exactly the moves that changed the client's step."""
    kit = await make_firm()
    created = await _type(http, kit)
    phases = [p["id"] for p in created["phases"]]
    step_of = {p["id"]: p["step"] for p in created["phases"]}
    targets = [phases[i % len(phases)] for i in (0, 3, 1, 4, 2, 0, 3, 4, 1, 2) * 2]
    responses = await asyncio.gather(
        *(
            http.post(
                f"/api/v1/matters/{kit.ref}/phase", json={"phase": p}, headers=kit.auth("staff")
            )
            for p in targets
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    log = await _events(http, kit, "staff")
    moves = [e["payload"] for e in log if e["kind"] == "phase"]
    previous = None
    client_step: int | None = None
    expected_steps = []
    for move in moves:
        assert move.get("from") == previous
        previous = move["phase"]
        # A phase of no step keeps the client on the step before (views.client_step).
        mapped = step_of[move["phase"]]
        order = phases.index(move["phase"])
        if mapped is None:
            earlier = [step_of[p] for p in phases[:order] if step_of[p] is not None]
            mapped = earlier[-1] if earlier else None
        if mapped != client_step:
            expected_steps.append(mapped)
            client_step = mapped
    assert [e["payload"].get("index") for e in log if e["kind"] == "step"] == expected_steps
    timeline = await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("staff"))
    assert timeline.json()["timeline"]["phase"] == previous


async def test_moves_spend_the_users_write_rate(settings: Settings, make_firm: MakeFirm) -> None:
    app = create_app(dataclasses.replace(settings, write_rate=0.001, write_burst=2))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            kit = await make_firm()
            phases = [p["id"] for p in (await _type(http, kit))["phases"]]
            path = f"/api/v1/matters/{kit.ref}/phase"
            for phase in phases[:2]:
                moved = await http.post(path, json={"phase": phase}, headers=kit.auth("staff"))
                assert moved.status_code == 200, moved.text
            refused = await http.post(path, json={"phase": phases[2]}, headers=kit.auth("staff"))
            _error(refused, 429, "rate_limited")
            timeline = await http.get(
                f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("staff")
            )
            assert (
                timeline.json()["timeline"]["phase"] == phases[1]
            )  # the refused move wrote nothing
