"""Internal-only tags (docs/threads.md "Tags"): the firm's tags, tagging an item,
idempotency, and that nothing of a tag reaches anyone but staff."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from rtportal import base64url
from rtportal.crypto.envelope import CTYPE_TEXT, Header, Visibility, seal_envelope
from rtportal.crypto.keys import IdentityKey
from rtportal.db.models import Event, ItemTag
from rtportal.sdk import tags as sdk_tags
from tests.conftest import FirmKit, MakeFirm
from tests.support.logins import firm_slug
from tests.support.sdkworld import sdk_world
from tests.support.server import RunningServer

_KEY = IdentityKey.generate()


def new_tag() -> str:
    return base64url.encode(secrets.token_bytes(16))


def name_blob(
    slug: str,
    tag: str,
    sender: str,
    *,
    vis: Visibility = Visibility.STAFF,
    context: str = "#tag",
    padding: int = 0,
) -> str:
    """A well-formed name envelope (the server cannot tell its key; it checks the form)."""
    header = Header(
        slug,
        context,
        tag,
        secrets.token_bytes(16),
        None,
        sender,
        _KEY.kid,
        1,
        vis,
        1_700_000_000_000,
        CTYPE_TEXT,
    )
    plain = ("LEAK-tag-name" + "x" * padding).encode()
    env = seal_envelope(header, secrets.token_bytes(32), plain, _KEY)
    return base64url.encode(env.encode())


async def make_tag(http: httpx.AsyncClient, kit: FirmKit, who: str = "staff") -> str:
    tag = new_tag()
    slug = await firm_slug(kit.db, kit.firm_id)
    sender = f"s{kit.staff.id if who == 'staff' else kit.admin.id}"
    response = await http.post(
        "/api/v1/firm/tags",
        json={"tag": tag, "name_blob": name_blob(slug, tag, sender)},
        headers=kit.auth(who),
    )
    assert response.status_code == 201, response.text
    return tag


async def post_item(
    http: httpx.AsyncClient, kit: FirmKit, who: str, client_id: str, kind: str = "message"
) -> str:
    """An item of the kit's matter; returns its id (``<sender>.<client id>``)."""
    audience = "staff" if kind == "note" else "portal"
    response = await http.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={
            "kind": kind,
            "audience": audience,
            "payload": {"thread": "t-" + client_id},
            "client_id": client_id,
        },
        headers=kit.auth(who),
    )
    assert response.status_code == 201, response.text
    principal = {"staff": kit.staff, "contact": kit.contact}[who]
    prefix = {"staff": "s", "contact": "c"}[who]
    return f"{prefix}{principal.id}.{client_id}"


async def tag_item(
    http: httpx.AsyncClient, kit: FirmKit, item: str, tag: str, *, removed: bool = False
) -> httpx.Response:
    return await http.post(
        f"/api/v1/matters/{kit.ref}/items/{item}/tags",
        json={"tag": tag, "removed": removed},
        headers=kit.auth("staff"),
    )


async def counts(kit: FirmKit) -> tuple[int, int]:
    """(item_tags rows, tag events) of the kit's matter."""
    async with kit.db.read() as session:
        rows = await session.scalar(
            select(func.count()).select_from(ItemTag).where(ItemTag.matter_id == kit.matter.id)
        )
        events = await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.matter_id == kit.matter.id, Event.kind == "tag")
        )
    return int(rows or 0), int(events or 0)


async def test_create_list_and_archive_tags(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    tag = new_tag()
    blob = name_blob(slug, tag, f"s{kit.staff.id}")
    body = {"tag": tag, "name_blob": blob}
    first = await http.post("/api/v1/firm/tags", json=body, headers=kit.auth("staff"))
    assert first.status_code == 201 and first.json()["created"] is True
    again = await http.post("/api/v1/firm/tags", json=body, headers=kit.auth("staff"))
    assert again.status_code == 200 and again.json()["created"] is False
    other = {"tag": tag, "name_blob": name_blob(slug, tag, f"s{kit.staff.id}")}
    taken = await http.post("/api/v1/firm/tags", json=other, headers=kit.auth("staff"))
    assert taken.status_code == 409 and taken.json()["error"]["details"]["reason"] == "tag_exists"
    for who in ("staff", "bot"):
        listed = await http.get("/api/v1/firm/tags", headers=kit.auth(who))
        assert listed.status_code == 200
        assert [(t["tag"], t["name_blob"], t["archived_at"]) for t in listed.json()["tags"]] == [
            (tag, blob, None)
        ]
    archived = await http.post(f"/api/v1/firm/tags/{tag}/archive", headers=kit.auth("staff"))
    assert archived.status_code == 200 and archived.json()["tag"]["archived_at"] is not None
    twice = await http.post(f"/api/v1/firm/tags/{tag}/archive", headers=kit.auth("staff"))
    assert twice.json()["tag"]["archived_at"] == archived.json()["tag"]["archived_at"]
    missing = await http.post(f"/api/v1/firm/tags/{new_tag()}/archive", headers=kit.auth("staff"))
    assert missing.status_code == 404


async def test_a_name_blob_must_be_a_staff_only_envelope_of_this_firm_tag_and_sender(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    me = f"s{kit.staff.id}"
    tag = new_tag()
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"tag": tag, "name_blob": name_blob("other-firm", tag, me)}, 400, "crypto_wrong_context"),
        ({"tag": tag, "name_blob": name_blob(slug, new_tag(), me)}, 400, "crypto_wrong_context"),
        ({"tag": tag, "name_blob": name_blob(slug, tag, "s999999")}, 400, "crypto_wrong_context"),
        (
            {"tag": tag, "name_blob": name_blob(slug, tag, me, vis=Visibility.PORTAL)},
            400,
            "crypto_wrong_context",
        ),
        (
            {"tag": tag, "name_blob": name_blob(slug, tag, me, context="ABCD1234")},
            400,
            "crypto_wrong_context",
        ),
        ({"tag": tag, "name_blob": base64url.encode(b"not an envelope")}, 400, None),
        ({"tag": tag, "name_blob": name_blob(slug, tag, me, padding=1200)}, 413, None),
        ({"tag": "short", "name_blob": name_blob(slug, "short", me)}, 400, "bad_tag"),
        ({"tag": tag}, 400, None),
        ({"tag": tag, "name_blob": name_blob(slug, tag, me), "name": "x"}, 400, None),
    ]
    for body, status, reason in cases:
        response = await http.post("/api/v1/firm/tags", json=body, headers=kit.auth("staff"))
        assert response.status_code == status, (body.keys(), response.text)
        if reason is not None:
            assert response.json()["error"]["details"]["reason"] == reason
    listed = await http.get("/api/v1/firm/tags", headers=kit.auth("staff"))
    assert listed.json()["tags"] == []  # nothing of the refused ones was written


async def test_tagging_an_item_is_one_row_and_one_event_however_often_it_is_sent(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    tag = await make_tag(http, kit)
    item = await post_item(http, kit, "contact", "m1")
    added = await tag_item(http, kit, item, tag)
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["tagged"], body["changed"]) == (True, True)
    assert body["event"]["kind"] == "tag" and body["event"]["audience"] == "staff"
    assert body["event"]["payload"] == {"item": item, "tag": tag, "thread": "t-m1"}
    again = await tag_item(http, kit, item, tag)
    assert again.status_code == 200
    assert (again.json()["tagged"], again.json()["changed"], again.json()["event"]) == (
        True,
        False,
        None,
    )
    assert await counts(kit) == (1, 1)
    # Retried concurrently: still one row and one event per change.
    off = [tag_item(http, kit, item, tag, removed=True) for _ in range(8)]
    answers = await asyncio.gather(*off)
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert await counts(kit) == (0, 2)
    removed = next(a.json()["event"] for a in answers if a.status_code == 201)
    assert removed["payload"] == {"item": item, "tag": tag, "thread": "t-m1", "removed": True}
    answers = await asyncio.gather(*(tag_item(http, kit, item, tag) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert await counts(kit) == (1, 3)


async def test_what_cannot_be_tagged(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    tag = await make_tag(http, kit)
    foreign_tag = await make_tag(http, other)
    item = await post_item(http, kit, "staff", "n1", kind="note")
    assert (await tag_item(http, kit, item, tag)).status_code == 201  # a note is an item
    for bad_item in (f"s{kit.staff.id}.nope", "x1.n1", "s1", f"c{kit.contact.id}.n1"):
        response = await tag_item(http, kit, bad_item, tag)
        assert response.status_code == 404, bad_item
        assert response.json()["error"]["details"]["reason"] == "no_such_item"
    for bad_tag, status in ((foreign_tag, 404), (new_tag(), 404), ("x", 400)):
        assert (await tag_item(http, kit, item, bad_tag)).status_code == status
    # Another firm's staff: the matter does not exist for them.
    response = await http.post(
        f"/api/v1/matters/{kit.ref}/items/{item}/tags",
        json={"tag": foreign_tag},
        headers=other.auth("staff"),
    )
    assert response.status_code == 404
    # An archived tag goes on nothing new; it still comes off.
    await http.post(f"/api/v1/firm/tags/{tag}/archive", headers=kit.auth("staff"))
    second = await post_item(http, kit, "staff", "n2", kind="note")
    refused = await tag_item(http, kit, second, tag)
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["reason"] == "tag_archived"
    assert (await tag_item(http, kit, item, tag, removed=True)).status_code == 201
    # A tag event is the server's: no send of one is taken, whoever sends it.
    forged = await http.post(
        f"/api/v1/matters/{kit.ref}/events",
        json={"kind": "tag", "audience": "staff", "payload": {"item": item, "tag": tag}},
        headers=kit.auth("staff"),
    )
    assert forged.status_code == 400 and "written only by the server" in forged.text


async def test_a_client_or_no_session_never_reaches_a_tag(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    tag = await make_tag(http, kit)
    item = await post_item(http, kit, "contact", "c1")
    assert (await tag_item(http, kit, item, tag)).status_code == 201
    slug = await firm_slug(kit.db, kit.firm_id)
    calls = [
        ("GET", "/api/v1/firm/tags", None),
        ("POST", "/api/v1/firm/tags", {"tag": tag, "name_blob": name_blob(slug, tag, "c1")}),
        ("POST", f"/api/v1/firm/tags/{tag}/archive", None),
        ("POST", f"/api/v1/matters/{kit.ref}/items/{item}/tags", {"tag": tag}),
    ]
    for method, path, body in calls:
        client = await http.request(method, path, json=body, headers=kit.auth("contact"))
        assert client.status_code == 404, (path, client.text)
        assert tag not in client.text
        nobody = await http.request(method, path, json=body)
        assert nobody.status_code == 401, path
    for method, path, body in calls[1:]:  # bots read the list, never write
        bot = await http.request(method, path, json=body, headers=kit.auth("bot"))
        assert bot.status_code == 404, path
    history = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("contact"))
    assert history.status_code == 200
    assert tag not in history.text and '"tag"' not in history.text
    staff_view = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("staff"))
    assert tag in staff_view.text


async def test_the_python_client_creates_opens_and_puts_a_tag(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        name = "Urgent ⚑ " + secrets.token_hex(4)
        tag = await sdk_tags.create_tag(w.staff, name)
        assert len(tag) == 22
        assert await sdk_tags.tag_names(w.staff) == {tag: name}
        assert await sdk_tags.tag_names(w.admin) == {tag: name}  # any staff member reads it
        item_id = "k" + secrets.token_hex(4)
        await w.staff.http.call(
            "POST",
            f"/api/v1/matters/{kit.ref}/events",
            {
                "kind": "message",
                "payload": {"thread": "sdk", "to": [kit.contact.id]},
                "client_id": item_id,
            },
        )
        item = f"s{kit.staff.id}.{item_id}"
        answer = await sdk_tags.tag_item(w.staff, kit.ref, item, tag)
        assert answer["changed"] is True and answer["tagged"] is True
        again = await sdk_tags.tag_item(w.staff, kit.ref, item, tag)
        assert again["changed"] is False
        off = await sdk_tags.tag_item(w.staff, kit.ref, item, tag, removed=True)
        assert off["changed"] is True and off["tagged"] is False
