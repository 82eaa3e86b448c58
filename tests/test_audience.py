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


def _event(audience: Literal["portal", "staff"], payload: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        matter_id=7,
        matter="ABCD1234",
        seq=3,
        kind="message",
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


def test_staff_fields_are_stripped_for_clients_only() -> None:
    event = _event("portal", {"text_ct": "x", "staff_tags": ["vip"], "staffing": 1})
    client = view_for(event, CLIENT)
    assert client is not None
    assert client["payload"] == {"text_ct": "x", "staffing": 1}
    assert client["blob"] == "AQI"
    staff = view_for(event, STAFF)
    assert staff is not None and staff["payload"]["staff_tags"] == ["vip"]
    # Building the client view did not strip the event itself.
    assert event.payload["staff_tags"] == ["vip"]


def test_views_are_shared_per_viewer_class() -> None:
    event = _event("portal", {"a": 1, "staff_b": 2})
    assert view_for(event, CLIENT) is view_for(event, CLIENT2)
    assert view_for(event, STAFF) is view_for(event, STAFF2) is view_for(event, BOT)
    assert view_for(event, CLIENT) is not view_for(event, STAFF)


@given(
    payload=st.dictionaries(
        st.one_of(st.text(max_size=8), st.text(max_size=8).map(lambda s: "staff_" + s)),
        st.integers(),
        max_size=8,
    ),
    audience=st.sampled_from(["portal", "staff"]),
)
def test_no_staff_data_ever_reaches_a_client(payload: dict[str, int], audience: str) -> None:
    event = _event(audience, payload)  # type: ignore[arg-type]
    view = portal_view(event)
    if audience == "staff":
        assert view is None
        return
    assert view is not None
    assert {k: v for k, v in payload.items() if not k.startswith("staff_")} == view["payload"]
    assert view_for(event, STAFF)["payload"] == payload  # type: ignore[index]


async def test_views_of_stored_events(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        matter = await membership.can_access(session, kit.staff, kit.ref)
        for audience, payload in (("portal", {"m": 1, "staff_x": 1}), ("staff", {"note": 1})):
            await stream.append(
                session,
                matter=matter,
                actor=kit.staff,
                kind="message",
                audience=audience,
                payload=payload,
                blob=None,
                client_id=None,
            )
    async with db.read() as session:
        events = await stream.read_since(session, kit.matter.id, 0, 10)
    assert [view_for(e, kit.contact) for e in events] == [
        {**events[0].to_wire(), "payload": {"m": 1}},
        None,
    ]
    assert [view_for(e, kit.bot) for e in events] == [e.to_wire() for e in events]
