"""The kind registry: who writes each kind, and that no staff-only data reaches a client.

The scan writes events of every registered kind with a marker string in
every staff-only field (nested ones included), plus rows inserted straight
into the database with undeclared nested fields, then reads every output a
client has (live websocket frames, the backlog on subscribe, HTTP history)
and finds none of the markers; staff read them all.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect

from rtportal.db import Database
from rtportal.db.models import Event, Matter
from rtportal.errors import BadRequest
from rtportal.events.audience import view_for
from rtportal.events.event import StoredEvent
from rtportal.events.kinds import KINDS
from rtportal.events.send import Send
from rtportal.events.unit import Unit
from rtportal.events.validate import validate
from rtportal.principal import Principal
from rtportal.ws.protocol import FrameCache
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer
from tests.support.wsjson import HELLO

TIMEOUT = 20.0
Frame = dict[str, Any]

# kind -> (writer, audience, payload): every staff-only field holds a marker.
WRITES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("message", "contact", "portal", {"thread": "ok", "sent_at": 5}),
    ("note", "staff", "staff", {"text": "LEAK-note", "thread": "LEAK-note-thread"}),
    # "MINE": the contact's message above (client id w0); "NOTE": the note (w1).
    ("edit", "contact", "portal", {"item": "MINE"}),
    ("delete", "staff", "staff", {"item": "NOTE"}),
    ("bot", "bot", "portal", {"status": "checked", "staff_detail": "LEAK-bot-detail"}),
    ("bot", "bot", "staff", {"status": "LEAK-bot-staff"}),
]

# System kinds: written only by the server's services (a Unit with system=True).
SYSTEM: list[tuple[str, str, dict[str, Any]]] = [
    ("invite", "staff", {"contact_id": 7, "email": "LEAK-invite@example.com", "name": "LEAK-i"}),
    (
        "access",
        "staff",
        {"action": "LEAK-access", "contact_id": 7, "invite_id": 1, "method": "LEAK-m"},
    ),
    # "to": ME is the scanning contact; a welcome addressed to another contact
    # is that contact's alone (addressed kind): its text must not reach ME.
    ("welcome", "portal", {"thread": "welcome-1", "to": "ME", "subject": "Hi", "text": "Welcome"}),
    (
        "welcome",
        "portal",
        {"thread": "welcome-2", "to": [2**40], "subject": "LEAK-welcome", "text": "LEAK-other"},
    ),
    ("tag", "staff", {"item": "LEAK-s1.item", "tag": "LEAK-tag", "removed": False}),
    # Staff-audience key events (escrow, pending registrations) stay with staff.
    ("keys", "staff", {"what": "LEAK-keys", "user": "LEAK-s1"}),
    ("keys", "portal", {"what": "epoch", "epoch": 2}),
    ("keys", "portal", {"what": "cert", "user": "LEAK-c9"}),
    # A phase move (rtportal.timeline): staff only; the client's step is its own kind.
    ("phase", "staff", {"phase": 3, "name": "LEAK-phase-name", "from": 2}),
    ("step", "portal", {"index": 1, "total": 3, "name": "Lodged", "description": "With them"}),
    # The document checklist (rtportal.documents): a request reaches the clients it
    # names and, as a thread item, those who see the applicants (ME does); a shared
    # document every client. ``types`` is staff-only (tests/test_documents.py).
    ("document", "portal", {"action": "requested", "items": ["A" * 22], "to": "ME", "types": [1]}),
    ("document", "portal", {"action": "uploaded", "items": ["B" * 22], "to": [2**40]}),
    ("document_shared", "portal", {"items": ["C" * 22], "files": ["D" * 22], "types": [3]}),
    # A stored event of the earlier client-visible phase kind still reads: its
    # client fields only.
    (
        "phase",
        "portal",
        {
            "phase": "Lodged",
            "step": {"index": 1, "total": 3, "staff_reason": "LEAK-phase-step"},
            "checklist": [{"label": "Passport", "done": True, "staff_comment": "LEAK-phase-check"}],
            "staff_detail": "LEAK-phase-detail",
        },
    ),
]

# Rows written around the registry (an older version, a manual fix, a bug):
# undeclared fields at every depth, values of the wrong type, a staff kind
# stored with audience portal, a kind nobody registered.
DIRECT: list[tuple[str, str, dict[str, Any]]] = [
    (
        "message",
        "portal",
        {"thread": "ok", "meta": {"staff_comment": "LEAK-direct-meta"}, "x": "LEAK-direct-x"},
    ),
    (
        "phase",
        "portal",
        {
            "phase": "Review",
            "step": {"index": 2, "staff_reason": "LEAK-direct-step", "deep": {"y": "LEAK-d1"}},
            "checklist": [{"label": "Visa", "extra": "LEAK-direct-item"}, "LEAK-direct-str"],
        },
    ),
    ("phase", "portal", {"phase": {"nested": "LEAK-direct-type"}}),
    ("note", "portal", {"text": "LEAK-direct-note"}),
    ("legacy", "portal", {"text": "LEAK-direct-legacy"}),
]


async def _post(
    http: httpx.AsyncClient, kit: FirmKit, who: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.post(f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who))


# --- who may write what ---------------------------------------------------------------


async def test_a_client_cannot_write_staff_kinds_or_undeclared_fields(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    refused: list[dict[str, Any]] = [
        {"kind": "message", "payload": {"meta": {"staff_comment": "x"}}},
        {"kind": "message", "payload": {"thread": "t", "staff_note": "x"}},
        {"kind": "message", "payload": {"thread": 5}},
        {"kind": "note", "audience": "portal", "payload": {}},
        {"kind": "note", "audience": "staff", "payload": {"text": "x"}},
        {"kind": "tag", "payload": {"tag": "vip"}},
        {"kind": "phase", "payload": {"phase": "Done"}},
        {"kind": "invite", "payload": {"contact_id": 1}},
        {"kind": "bot", "payload": {"status": "x"}},
        {"kind": "access", "audience": "staff", "payload": {}},
        {"kind": "welcome", "payload": {"thread": "t", "to": [1]}},
        {"kind": "whatever", "payload": {}},
    ]
    for body in refused:
        response = await _post(http, kit, "contact", body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "bad_request"
    body = {"kind": "message", "payload": {"thread": "t"}, "client_id": "ok"}
    ok = await _post(http, kit, "contact", body)
    assert ok.status_code == 201
    async with kit.db.read() as session:
        head = (await session.get(Matter, kit.matter.id)).last_seq  # type: ignore[union-attr]
    assert head == 1  # nothing of the refused ones was written


async def test_unknown_fields_and_kinds_are_refused_for_staff_too(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {
                "kind": "message",
                "client_id": "m",
                "payload": {"thread": "t", "to": [kit.contact.id], "meta": {"a": 1}},
            },
            "payload.meta: unknown field",
        ),
        ({"kind": "phase", "payload": {"phase": 1}}, "kind 'phase' is written only by the server"),
        ({"kind": "step", "payload": {"total": 1}}, "kind 'step' is written only by the server"),
        (
            {"kind": "tag", "audience": "staff", "payload": {"tag": "t"}},
            "written only by the server",
        ),
        ({"kind": "bot", "payload": {"status": "x"}}, "cannot be written by staff"),
        (
            {"kind": "welcome", "payload": {"thread": "t", "to": [1]}},
            "kind 'welcome' is written only by the server",
        ),
        (
            {
                "kind": "access",
                "audience": "staff",
                "payload": {"action": "invited", "contact_id": 1, "invite_id": 1},
            },
            "kind 'access' is written only by the server",
        ),
        ({"kind": "nope", "payload": {}}, "kind: unknown"),
        (
            {"kind": "note", "audience": "portal", "client_id": "n", "payload": {"thread": "n"}},
            "audience of kind",
        ),
    ]
    for body, message in cases:
        response = await _post(http, kit, "staff", body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "bad_request" and message in error["message"], error
    # A kind without blobs refuses one (the bot's status card: the one such kind
    # a non-server writer still has).
    body = {"kind": "bot", "payload": {"status": "x"}, "blob": "AQID"}
    response = await _post(http, kit, "bot", body)
    assert response.status_code == 400, response.text
    assert "no blob" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"step": {"index": 1}}, "payload.phase is required"),
        ({"phase": 1, "step": {"secret": "x"}}, "payload.step.secret: unknown field"),
        ({"phase": "p" * 201}, "payload.phase is over 200 bytes"),
        ({"phase": 0}, "payload.phase must be between 1"),
        ({"phase": True}, "payload.phase must be an integer or payload.phase must be a string"),
        ({"phase": 1, "checklist": [{}] * 51}, "payload.checklist has over 50 items"),
        ({"phase": 1, "from": "2"}, "payload.from must be an integer"),
    ],
)
def test_the_server_written_phase_still_fits_its_schema(
    payload: dict[str, Any], message: str
) -> None:
    staff = Principal(kind="staff", id=1, firm_id=1, display_name="S")
    send = Send("AAAA0000", "phase", "staff", payload, None, None)
    with pytest.raises(BadRequest, match=re.escape(message)):
        validate(staff, send, 65536, 65536, system=True)


async def test_a_websocket_send_is_checked_against_the_registry(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with _ws(uvicorn_server, kit, "contact") as ws:
        for fid, kind, payload in (
            ("a", "message", {"meta": {"staff_comment": "x"}}),
            ("b", "note", {"text": "x"}),
            ("c", "phase", {"phase": "x"}),
            ("e", "step", {"total": 1}),
            ("d", "welcome", {"thread": "t", "to": [1]}),
        ):
            frame = {"type": "send", "id": fid, "matter": kit.ref, "kind": kind}
            await ws.send(json.dumps({**frame, "audience": "portal", "payload": payload}))
            answer = await _recv(ws)
            assert (answer["type"], answer["id"], answer["code"]) == ("error", fid, "bad_request")


# --- the 0-leak audience scan -----------------------------------------------------------


async def _insert_directly(db: Database, kit: FirmKit) -> None:
    """``DIRECT`` as rows written straight into the events table (no validation)."""
    async with db.write() as session:
        matter = await session.get(Matter, kit.matter.id)
        assert matter is not None
        seq = matter.last_seq
        for kind, audience, payload in DIRECT:
            seq += 1
            session.add(
                Event(
                    matter_id=kit.matter.id,
                    seq=seq,
                    kind=kind,
                    audience=audience,
                    actor_kind="staff",
                    actor_id=kit.staff.id,
                    actor_name=kit.staff.display_name,
                    payload=json.dumps(payload),
                    blob=None,
                    client_id=None,
                    created_at=datetime.now(UTC),
                )
            )
        await session.execute(update(Matter).where(Matter.id == kit.matter.id).values(last_seq=seq))


async def test_no_staff_only_data_reaches_any_client_output(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    written = {kind for kind, *_ in WRITES} | {kind for kind, *_ in SYSTEM}
    assert written == set(KINDS)  # every registered kind is written
    kit = await make_firm()
    db: Database = uvicorn_server.app.state.db
    async with (
        httpx.AsyncClient(base_url=uvicorn_server.base_url) as http,
        _ws(uvicorn_server, kit, "contact") as live,
        _ws(uvicorn_server, kit, "staff") as staff_live,
    ):
        for ws in (live, staff_live):
            assert (await _subscribe(ws, kit.ref))["type"] == "subscribed"
        items = {"MINE": f"c{kit.contact.id}.w0", "NOTE": f"s{kit.staff.id}.w1"}
        for n, (kind, who, audience, payload) in enumerate(WRITES):
            if payload.get("item") in items:
                payload = {**payload, "item": items[payload["item"]]}
            body = {"kind": kind, "audience": audience, "payload": payload, "client_id": f"w{n}"}
            response = await _post(http, kit, who, body)
            assert response.status_code == 201, (body, response.text)
        async with Unit(db, uvicorn_server.app.state.hub.publish) as unit:
            matter = await unit.session.get(Matter, kit.matter.id)
            assert matter is not None
            for kind, audience, payload in SYSTEM:
                if payload.get("to") == "ME":
                    payload = {**payload, "to": [kit.contact.id]}
                await unit.append(
                    matter=matter,
                    actor=kit.staff,
                    kind=kind,
                    audience=audience,
                    payload=payload,
                    system=True,
                )
        await _insert_directly(db, kit)
        # A last regular event: the hub reads the directly inserted rows to
        # fill the gap before it, so they are delivered live too.
        end = {"thread": "end", "to": [kit.contact.id]}
        last = await _post(
            http, kit, "staff", {"kind": "message", "payload": end, "client_id": "e"}
        )
        head = last.json()["seq"]
        assert head == len(WRITES) + len(SYSTEM) + len(DIRECT) + 1

        last = uvicorn_server.app.state.runtime.frames.cursors.event_token(kit.matter.id, head)
        live_frames = await _recv_until(live, last)
        staff_frames = await _recv_until(staff_live, head)
        async with _ws(uvicorn_server, kit, "contact") as late:
            backlog = [await _subscribe(late, kit.ref)] + await _recv_until(late, last)
        history = await _history(http, kit, "contact")
        staff_history = await _history(http, kit, "staff")

    outputs = {
        "live": json.dumps(live_frames),
        "backlog": json.dumps(backlog),
        "history": json.dumps(history),
    }
    for name, text in outputs.items():
        assert "LEAK" not in text, (name, text)
    # Clients got the portal events, with their declared client fields.
    seen = [f for f in live_frames if f.get("type") == "event"]
    kinds = {"message", "edit", "phase", "step", "bot", "welcome", "keys"}
    assert {f["kind"] for f in seen} == kinds | {"document", "document_shared"}
    for frame in seen:
        if frame["kind"].startswith("document"):
            assert "types" not in frame["payload"]
    phase = next(f for f in seen if f["kind"] == "phase")
    assert phase["payload"] == {
        "phase": "Lodged",
        "step": {"index": 1, "total": 3},
        "checklist": [{"label": "Passport", "done": True}],
    }
    # The same events by their tokens (the same token for the same event); no seq.
    assert [e["cursor"] for e in history] == [e["cursor"] for e in seen]
    for name, text in outputs.items():
        assert '"seq"' not in text and '"head": ' not in text.replace('"head": "', ""), name
    # Staff see everything, markers included, live and in history.
    for text in (json.dumps(staff_frames), json.dumps(staff_history)):
        for kind, _, _, payload in WRITES:
            for marker in _markers(payload):
                assert marker in text, (kind, marker)
        for kind, _, payload in SYSTEM:
            for marker in _markers(payload):
                assert marker in text, (kind, marker)
        for _, _, payload in DIRECT:
            for marker in _markers(payload):
                assert marker in text, marker


async def test_the_unit_of_work_publishes_only_after_commit(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    published: list[list[int]] = []
    committed_heads: list[int] = []

    async def publish(events: list[Any]) -> None:
        # Publication sees the rows committed: a fresh read finds them.
        async with db.read() as session:
            matter = await session.get(Matter, kit.matter.id)
            assert matter is not None
            committed_heads.append(matter.last_seq)
        published.append([e.seq for e in events])

    async with Unit(db, publish) as unit:
        matter = await unit.session.get(Matter, kit.matter.id)
        assert matter is not None
        for n in range(3):
            await unit.append(
                matter=matter,
                actor=kit.staff,
                kind="note",
                audience="staff",
                payload={"thread": f"t{n}"},
            )
        assert published == []  # nothing before the commit
    assert published == [[1, 2, 3]] and committed_heads == [3]

    with pytest.raises(RuntimeError, match="fails"):
        async with Unit(db, publish) as unit:
            matter = await unit.session.get(Matter, kit.matter.id)
            assert matter is not None
            await unit.append(
                matter=matter, actor=kit.staff, kind="note", audience="staff", payload={}
            )
            raise RuntimeError("the service fails after appending")
    assert published == [[1, 2, 3]]  # nothing published for the rolled-back event
    async with db.read() as session:
        matter = await session.get(Matter, kit.matter.id)
        assert matter is not None and matter.last_seq == 3


# --- helpers ----------------------------------------------------------------------------


def _markers(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith("LEAK") else []
    if isinstance(value, dict):
        return [m for v in value.values() for m in _markers(v)]
    if isinstance(value, list):
        return [m for v in value for m in _markers(v)]
    return []


class _WS:
    """``async with _ws(server, kit, who) as ws``: an open websocket past ``hello``."""

    def __init__(self, server: RunningServer, kit: FirmKit, who: str) -> None:
        self.server, self.kit, self.who = server, kit, who
        self.ws: ClientConnection | None = None

    async def __aenter__(self) -> ClientConnection:
        self.ws = await connect(
            self.server.ws_url,
            additional_headers=self.kit.auth(self.who),
            proxy=None,
            open_timeout=TIMEOUT,
        )
        assert (await _recv(self.ws))["type"] == "hello"
        await self.ws.send(HELLO)
        return self.ws

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None
        await self.ws.close()


def _ws(server: RunningServer, kit: FirmKit, who: str) -> _WS:
    return _WS(server, kit, who)


async def _recv(ws: ClientConnection) -> Frame:
    frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def _subscribe(ws: ClientConnection, ref: str) -> Frame:
    await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": ref}]}))
    return await _recv(ws)


async def _recv_until(ws: ClientConnection, head: int | str) -> list[Frame]:
    """Every frame up to the event ``head`` (the last write): its seq, or for a
    contact (who never sees a seq) its cursor token."""
    frames: list[Frame] = []
    while (
        not frames
        or head not in (frames[-1].get("seq"), frames[-1].get("cursor"))
        or (frames[-1].get("type") != "event")
    ):
        frames.append(await _recv(ws))
    return frames


async def _history(http: httpx.AsyncClient, kit: FirmKit, who: str) -> list[Frame]:
    response = await http.get(
        f"/api/v1/matters/{kit.ref}/events", headers=kit.auth(who), params={"limit": 500}
    )
    assert response.status_code == 200, response.text
    events: list[Frame] = response.json()["events"]
    return events


def test_an_addressed_kind_reaches_only_the_contacts_it_names() -> None:
    """``welcome`` names its readers in ``to``: the worker's frame cache, shared by
    every connection, keys it per contact, in whichever order they read it."""
    named = Principal("contact", 7, 1, "Mei")
    other = Principal("contact", 8, 1, "Ola")
    staff = Principal("staff", 1, 1, "Sam", role="staff")
    for first, second in ((other, named), (named, other)):
        event = StoredEvent(
            matter_id=1,
            matter="AAAA0000",
            seq=1,
            kind="welcome",
            audience="portal",
            actor={"kind": "staff", "id": 1, "name": "Sam"},
            payload={"thread": "welcome-1", "to": [7], "subject": "Hi Mei", "text": "Welcome"},
            blob=None,
            client_id=None,
            created_at="2026-12-06T00:00:00.000000Z",
        )
        cache = FrameCache()
        texts = {p.id: cache.frame(event, p, "portal") for p in (first, second)}
        assert texts[8] == "" and "Hi Mei" in texts[7]
        assert view_for(event, other) is None and view_for(event, named) is not None
        assert "Hi Mei" in cache.frame(event, staff, "staff")
