"""view_for: the one function that decides what a viewer sees of an event."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import given
from hypothesis import strategies as st

from rtportal.access import membership
from rtportal.db import Database
from rtportal.events import log as stream
from rtportal.events.audience import portal_view, view_for, viewer_class
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from tests.conftest import MakeFirm

STAFF = Principal("staff", 1, 1, "Sam")
STAFF2 = Principal("staff", 2, 1, "Ada")
BOT = Principal("bot", 3, 1, "Robo")
CLIENT = Principal("contact", 4, 1, "Cleo")
CLIENT2 = Principal("contact", 5, 1, "Dan")


def _event(
    audience: Literal["portal", "staff"], payload: dict[str, Any], kind: str = "message"
) -> StoredEvent:
    return StoredEvent(
        matter_id=7,
        matter="ABCD1234",
        seq=3,
        kind=kind,
        audience=audience,
        actor={"kind": "staff", "id": 1, "name": "Sam"},
        payload=payload,
        blob=b"\x01\x02",
        client_id="c1",
        created_at="2026-01-01T00:00:00.000000Z",
    )


def test_viewer_classes() -> None:
    assert [viewer_class(p) for p in (STAFF, BOT, CLIENT)] == ["staff", "staff", "portal"]


def test_staff_event_is_invisible_to_clients() -> None:
    event = _event("staff", {"staff_note": "internal"})
    assert view_for(event, CLIENT) is None
    assert view_for(event, CLIENT2) is None
    assert view_for(event, STAFF) == event.to_wire()
    assert view_for(event, BOT) == event.to_wire()


def test_client_view_holds_only_the_kinds_client_fields() -> None:
    payload = {
        "phase": "Lodged",
        "step": {"index": 2, "total": 5, "staff_reason": "S1", "extra": "S2"},
        "checklist": [{"label": "Passport", "done": True, "staff_comment": "S3"}, "S4", {}],
        "staff_detail": "S5",
        "meta": {"staff_comment": "S6"},
    }
    event = _event("portal", payload, kind="phase")
    client = view_for(event, CLIENT)
    assert client is not None
    assert client["payload"] == {
        "phase": "Lodged",
        "step": {"index": 2, "total": 5},
        "checklist": [{"label": "Passport", "done": True}, {}],
    }
    assert client["blob"] is None  # phase carries no blob: none is shown
    staff = view_for(event, STAFF)
    assert staff is not None and staff["payload"] == payload
    # Building the client view did not change the event itself.
    assert event.payload["step"]["staff_reason"] == "S1"


def test_values_that_do_not_fit_their_type_are_left_out() -> None:
    event = _event("portal", {"thread": ["x"], "to": [1, "2"], "reply_to": "3", "sent_at": 5})
    client = view_for(event, CLIENT, see_applicants=True)
    assert client is not None and client["payload"] == {"sent_at": 5, "to": [1]}
    assert client["blob"] == "AQI"


def test_staff_kinds_and_unknown_kinds_never_reach_a_client() -> None:
    for kind in ("note", "tag", "invite", "no-such-kind"):
        assert view_for(_event("portal", {"text": "x"}, kind=kind), CLIENT) is None


def test_views_are_shared_per_viewer_class() -> None:
    event = _event("portal", {"a": 1, "staff_b": 2})
    assert view_for(event, CLIENT) is view_for(event, CLIENT2)
    assert view_for(event, STAFF) is view_for(event, STAFF2) is view_for(event, BOT)
    assert view_for(event, CLIENT) is not view_for(event, STAFF)


@given(
    payload=st.dictionaries(
        st.one_of(st.sampled_from(["thread", "item", "sent_at"]), st.text(max_size=8)),
        st.one_of(st.integers(), st.text(max_size=8), st.dictionaries(st.text(), st.integers())),
        max_size=8,
    ),
    audience=st.sampled_from(["portal", "staff"]),
)
def test_no_undeclared_data_ever_reaches_a_client(payload: dict[str, Any], audience: str) -> None:
    event = _event(audience, payload)  # type: ignore[arg-type]
    view = portal_view(event)
    if audience == "staff":
        assert view is None
        return
    assert view is not None
    declared = {"thread": str, "sent_at": int, "parent": str, "item": str, "to": list}
    for key, value in view["payload"].items():
        assert type(value) is declared[key]
        assert payload[key] == value or key == "to"  # a list keeps its fitting items
    assert view_for(event, STAFF)["payload"] == payload  # type: ignore[index]


async def test_views_of_stored_events(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        matter = await membership.can_access(session, kit.staff, kit.ref)
        for kind, audience, payload in (
            ("message", "portal", {"thread": "t", "to": [kit.contact.id]}),
            ("note", "staff", {"thread": "s"}),
        ):
            await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind=kind,
                audience=audience,
                payload=payload,
                blob=None,
                client_id=None,
            )
    async with db.read() as session:
        events = await stream.read_since(session, kit.matter.id, 0, 10)
    assert [view_for(e, kit.contact) for e in events] == [
        {**events[0].to_wire(), "payload": {"thread": "t", "to": [kit.contact.id]}},
        None,
    ]
    assert [view_for(e, kit.bot) for e in events] == [e.to_wire() for e in events]
