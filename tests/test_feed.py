"""The staff activity feed (docs/threads.md "Activity feed"): rows, filters, pages, who."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from rtportal.db.models import Event, Matter, ReadMark
from rtportal.events.unit import Unit
from tests.conftest import FirmKit, MakeFirm
from tests.test_tags import make_tag, tag_item

Row = tuple[str, int, str]  # (matter, seq, type)


async def send(
    http: httpx.AsyncClient,
    kit: FirmKit,
    who: str,
    matter: Matter,
    kind: str,
    payload: dict[str, Any],
    client_id: str | None = None,
) -> int:
    audience = "staff" if kind == "note" else "portal"
    body: dict[str, Any] = {"kind": kind, "audience": audience, "payload": payload}
    if client_id is not None:
        body["client_id"] = client_id
    response = await http.post(
        f"/api/v1/matters/{matter.reference}/events", json=body, headers=kit.auth(who)
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    if "seq" in answer:
        return int(answer["seq"])
    # A contact is answered a cursor token, never a seq: the feed (staff) names
    # events by seq, so read the one just written (tests here write one at a time).
    async with kit.db.read() as session:
        newest = await session.scalar(
            sa.select(sa.func.max(Event.seq)).where(Event.matter_id == matter.id)
        )
    return int(newest or 0)


async def system_event(kit: FirmKit, matter: Matter, kind: str, payload: dict[str, Any]) -> int:
    """A system kind's event as its service writes it (``access``: the invite
    lifecycle; ``phase``: rtportal.timeline), both staff-only."""
    async with Unit(kit.db, None, kit.settings) as unit:
        event, _ = await unit.append(
            matter=matter,
            actor=kit.staff,
            kind=kind,
            audience="staff",
            payload=payload,
            system=True,
        )
    return event.seq


async def access_event(kit: FirmKit, matter: Matter) -> int:
    """An ``access`` record as the invite lifecycle writes it."""
    payload = {"action": "invited", "contact_id": kit.contact.id, "invite_id": 1}
    return await system_event(kit, matter, "access", payload)


async def feed(
    http: httpx.AsyncClient, kit: FirmKit, who: str = "staff", **params: Any
) -> httpx.Response:
    return await http.get("/api/v1/feed", params=params, headers=kit.auth(who))


async def rows(
    http: httpx.AsyncClient, kit: FirmKit, who: str = "staff", **params: Any
) -> list[Row]:
    response = await feed(http, kit, who, **params)
    assert response.status_code == 200, response.text
    return [(r["matter"], r["seq"], r["type"]) for r in response.json()["rows"]]


async def scenario(
    http: httpx.AsyncClient, kit: FirmKit
) -> tuple[Matter, Matter, Matter, list[Row]]:
    """Three matters (the bot is a member of two) and one event of every feed type,
    plus events the feed does not show; returns the expected feed, newest first."""
    a = kit.matter
    b = await kit.add_matter(title="Second")
    c = await kit.add_matter(title="Third", members=(kit.contact,))
    made: list[Row] = []
    seq = await send(http, kit, "contact", a, "message", {"thread": "t1"}, "c1")
    made.append((a.reference, seq, "client_message"))
    seq = await send(
        http, kit, "staff", b, "message", {"thread": "t2", "to": [kit.contact.id]}, "s1"
    )
    made.append((b.reference, seq, "message"))
    seq = await send(http, kit, "staff", a, "note", {"thread": "n1"}, "n1")
    made.append((a.reference, seq, "note"))
    seq = await system_event(kit, c, "phase", {"phase": 1, "name": "Lodged"})
    made.append((c.reference, seq, "phase"))
    seq = await access_event(kit, b)
    made.append((b.reference, seq, "invite"))
    seq = await send(http, kit, "bot", a, "bot", {"status": "checked"})
    made.append((a.reference, seq, "bot"))
    seq = await send(http, kit, "contact", c, "message", {"thread": "t3"}, "c2")
    made.append((c.reference, seq, "client_message"))
    made.reverse()
    return a, b, c, made


async def test_the_feed_filters_exactly(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    a, b, c, expected = await scenario(http, kit)
    tag = await make_tag(http, kit)
    assert (await tag_item(http, kit, f"c{kit.contact.id}.c1", tag)).status_code == 201
    assert await rows(http, kit) == expected  # the tag event is not a feed row
    for feed_type in ("client_message", "message", "note", "phase", "invite", "bot"):
        assert await rows(http, kit, type=feed_type) == [r for r in expected if r[2] == feed_type]
    assert await rows(http, kit, type="document") == []
    for matter in (a, b, c):
        assert await rows(http, kit, matter=matter.reference) == [
            r for r in expected if r[0] == matter.reference
        ]
    assert await rows(http, kit, matter=a.reference, type="note") == [
        r for r in expected if r[0] == a.reference and r[2] == "note"
    ]
    tagged = [r for r in expected if r[0] == a.reference and r[2] == "client_message"]
    assert await rows(http, kit, tag=tag) == tagged
    assert await rows(http, kit, tag=tag, type="note") == []
    # Unread: items others wrote, after the reader's mark in their thread.
    items = [r for r in expected if r[2] in ("client_message", "message", "note")]
    others = [r for r in items if r[2] == "client_message"]  # the staff member wrote the rest
    assert await rows(http, kit, unread=1) == others
    async with kit.db.write() as session:
        session.add(
            ReadMark(matter_id=a.id, reader=f"s{kit.staff.id}", thread="t1", seq=tagged[0][1])
        )
    assert await rows(http, kit, unread=1) == [r for r in others if r != tagged[0]]
    assert await rows(http, kit, unread=1, matter=a.reference) == []
    assert await rows(http, kit, who="admin", unread=1) == items  # the admin read nothing
    # The row itself.
    full = (await feed(http, kit, type="client_message", matter=a.reference)).json()["rows"][0]
    assert full["from_client"] is True and full["title"] == a.title
    assert full["thread"] == "t1" and full["item"] == f"c{kit.contact.id}.c1"
    assert full["tags"] == [tag]
    assert full["event"]["seq"] == full["seq"] and full["event"]["kind"] == "message"
    assert full["at"] == full["event"]["created_at"]
    # A bot reads the feed of its matters (staff-equivalent), not of the others.
    assert await rows(http, kit, who="bot") == [r for r in expected if r[0] != c.reference]


async def test_pages_are_stable_while_the_feed_grows(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    _, _, _, expected = await scenario(http, kit)
    seen: list[Row] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["before"] = cursor
        response = await feed(http, kit, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [(r["matter"], r["seq"], r["type"]) for r in body["rows"]]
        pages += 1
        # New activity between pages goes to the top, never into a later page.
        await send(http, kit, "contact", kit.matter, "message", {"thread": "t1"}, f"late{pages}")
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == expected and pages == 4
    # Filtered pages too.
    first = (await feed(http, kit, limit=1, type="client_message")).json()
    second = (await feed(http, kit, limit=1, type="client_message", before=first["next"])).json()
    assert first["rows"][0]["seq"] != second["rows"][0]["seq"]
    assert second["rows"][0]["type"] == "client_message"


async def test_who_may_read_the_feed(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    await scenario(http, kit)
    client = await feed(http, kit, who="contact")
    assert client.status_code == 404
    assert kit.ref not in client.text
    assert (await http.get("/api/v1/feed")).status_code == 401
    assert await rows(http, other) == []  # another firm's staff see nothing of it
    assert (await feed(http, other, matter=kit.ref)).status_code == 404
    tag = await make_tag(http, kit)
    assert (await feed(http, other, tag=tag)).status_code == 404
    assert (await feed(http, kit, who="contact", type="bogus", limit=0)).status_code == 404


async def test_bad_parameters_are_bad_requests(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await scenario(http, kit)
    cases: list[dict[str, Any]] = [
        {"type": "client"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "²"},
        {"unread": "yes"},
        {"before": "12"},
        {"before": "A" * 22},
        {"before": "A" * 21 + "="},
        {"page": 2},
        {"tag": "x"},
        {"matter": "nope"},
    ]
    for params in cases:
        response = await feed(http, kit, **params)
        assert response.status_code in (400, 404), (params, response.text)
        if "before" in params:
            assert response.json()["error"]["code"] == "invalid_cursor"
    ok = (await feed(http, kit, limit=1)).json()["next"]
    assert (
        await feed(http, kit, before=ok[:-1] + ("A" if ok[-1] != "A" else "B"))
    ).status_code == 400
