"""Threads (docs/threads.md): the rules of sends, who sees which thread, edits,
deletes and their redaction, the thread endpoints; over HTTP and the websocket,
on the test backends."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from rtportal.app import create_app
from rtportal.db.models import Event, MatterMember
from rtportal.keys import ids
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.threadworld import add_applicant, put_welcome
from tests.support.wsjson import connected, recv

Json = dict[str, Any]
_SUBSCRIBE = '{"type":"subscribe","id":"s","subs":[{"matter":"REF","after":0}]}'


async def _post(
    http: httpx.AsyncClient, kit: FirmKit, who: str, body: Json, ref: str | None = None
) -> httpx.Response:
    return await http.post(
        f"/api/v1/matters/{ref or kit.ref}/events", json=body, headers=kit.auth(who)
    )


def _msg(thread: str, cid: str, **payload: Any) -> Json:
    return {"kind": "message", "client_id": cid, "payload": {"thread": thread, **payload}}


async def _no_see(kit: FirmKit) -> None:
    """The kit's client no longer sees the other applicants' threads."""
    async with kit.db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(
                MatterMember.principal_id == kit.contact.id,
                MatterMember.principal_kind == "contact",
            )
            .values(see_applicants=False)
        )


def _error(response: httpx.Response) -> tuple[int, str, str | None]:
    err = response.json()["error"]
    return response.status_code, err["code"], (err.get("details") or {}).get("reason")


async def test_the_server_sets_item_to_and_parent(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    opened = await _post(http, kit, "staff", _msg("t1", "a1", to=[kit.contact.id]))
    assert opened.status_code == 201, opened.text
    payload = opened.json()["event"]["payload"]
    assert payload == {"thread": "t1", "to": [kit.contact.id], "item": f"s{kit.staff.id}.a1"}
    reply = await _post(http, kit, "contact", _msg("t1", "r1"))
    assert reply.json()["event"]["payload"] == {
        "thread": "t1",
        "to": [kit.contact.id],
        "item": f"c{kit.contact.id}.r1",
        "parent": f"s{kit.staff.id}.a1",
    }
    own = await _post(http, kit, "contact", _msg("mine", "o1"))
    assert own.json()["event"]["payload"]["to"] == [kit.contact.id]
    note = await _post(
        http,
        kit,
        "staff",
        {"kind": "note", "audience": "staff", "client_id": "n1", "payload": {"thread": "t1"}},
    )
    assert note.json()["event"]["payload"]["parent"] == f"s{kit.staff.id}.a1"


@pytest.mark.parametrize(
    ("who", "body", "status", "code", "reason"),
    [
        ("staff", _msg("new", "x1", to=[]), 400, "bad_request", "thread_recipients"),
        ("staff", _msg("new", "x2", to=[999999]), 400, "bad_request", "thread_recipients"),
        ("contact", _msg("new", "x3", to=[1, 2]), 400, "bad_request", "thread_recipients"),
        ("contact", _msg("nope", "x4", parent="s1.zz"), 404, "not_found", "no_such_thread"),
        ("contact", {"kind": "edit", "payload": {"item": "c1.x"}}, 400, "bad_request",
         "client_id_required"),
        ("contact", {"kind": "message", "client_id": "x5", "payload": {}}, 400, "bad_request",
         "thread_required"),
        ("contact", _msg("t", "x6", item="c1.other"), 400, "bad_request", "item_id"),
        ("contact", _msg("a b", "x9"), 400, "bad_request", "thread_id"),
        ("staff", _msg("<b>", "x10", to=[1]), 400, "bad_request", "thread_id"),
        ("contact", _msg("t" * 65, "x11"), 400, "bad_request", "thread_id"),
        ("contact", _msg("café", "x12"), 400, "bad_request", "thread_id"),
        ("contact", {"kind": "note", "audience": "portal", "client_id": "x7",
                     "payload": {"thread": "t"}}, 400, "bad_request", None),
        ("contact", {"kind": "edit", "client_id": "x8", "payload": {"item": "s1.none"}}, 404,
         "not_found", "no_such_item"),
    ],
)  # fmt: skip
async def test_refusals_have_stable_codes(
    app: Starlette,
    http: httpx.AsyncClient,
    make_firm: MakeFirm,
    who: str,
    body: Json,
    status: int,
    code: str,
    reason: str | None,
) -> None:
    kit = await make_firm()
    assert _error(await _post(http, kit, who, body)) == (status, code, reason)
    async with kit.db.read() as session:
        kinds = await session.scalars(select(Event.kind).where(Event.matter_id == kit.matter.id))
        assert list(kinds) == []  # nothing half-written


async def test_internal_threads_take_notes_and_clients_never_reach_them(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    note = {"kind": "note", "audience": "staff", "client_id": "n1", "payload": {"thread": "int"}}
    assert (await _post(http, kit, "staff", note)).status_code == 201
    msg = _msg("int", "m1", to=[kit.contact.id])
    assert _error(await _post(http, kit, "staff", msg)) == (400, "bad_request", "internal_thread")
    # For the client the internal thread does not exist.
    assert _error(await _post(http, kit, "contact", _msg("int", "c1"))) == (
        404,
        "not_found",
        "no_such_thread",
    )
    got = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/int/items", headers=kit.auth("contact")
    )
    assert got.status_code == 404
    listed = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("contact"))
    assert listed.json()["threads"] == []
    staff = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("staff"))
    assert [(t["thread"], t["kind"]) for t in staff.json()["threads"]] == [("int", "internal")]


async def test_applicants_visibility_history_thread_list_and_pages(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await _no_see(kit)
    other, other_token = await add_applicant(kit, "Otto Other", sees=True)
    kit.tokens["other"] = other_token
    assert (
        await _post(http, kit, "staff", _msg("to-other", "a", to=[other.id]))
    ).status_code == 201
    assert (await _post(http, kit, "other", _msg("to-other", "b"))).status_code == 201
    assert (await _post(http, kit, "staff", _msg("to-cleo", "c", to=[kit.contact.id]))).is_success
    hist = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("contact"))
    threads = {e["payload"].get("thread") for e in hist.json()["events"]}
    assert threads == {"to-cleo"}
    listed = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("contact"))
    assert [(t["thread"], t["unread"]) for t in listed.json()["threads"]] == [("to-cleo", 1)]
    # a note in the client's thread moves the staff's list, never the client's
    note = {
        "kind": "note",
        "audience": "staff",
        "client_id": "nn",
        "payload": {"thread": "to-cleo"},
    }
    assert (await _post(http, kit, "staff", note)).status_code == 201
    listed = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("contact"))
    assert [(t["thread"], t["unread"]) for t in listed.json()["threads"]] == [("to-cleo", 1)]
    mine = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("admin"))
    unread = {t["thread"]: t["unread"] for t in mine.json()["threads"]}
    assert unread == {"to-cleo": 2, "to-other": 2}  # another staff member's items, and the client's
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/to-other/items", headers=kit.auth("contact")
    )
    assert page.status_code == 404
    # The applicant who sees applicants sees both threads.
    listed = await http.get(f"/api/v1/matters/{kit.ref}/threads", headers=kit.auth("other"))
    rows = {t["thread"]: t for t in listed.json()["threads"]}
    assert set(rows) == {"to-other", "to-cleo"}
    assert rows["to-other"]["items"] == 2
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/to-other/items", headers=kit.auth("other")
    )
    assert [e["payload"]["item"] for e in page.json()["events"]] == [
        f"s{kit.staff.id}.a",
        f"c{other.id}.b",
    ]
    # Nor can the client reply into, edit or delete in a thread not addressed to them.
    assert _error(await _post(http, kit, "contact", _msg("to-other", "z"))) == (
        404,
        "not_found",
        "no_such_thread",
    )
    edit = {"kind": "edit", "client_id": "e", "payload": {"item": f"c{other.id}.b"}}
    assert _error(await _post(http, kit, "contact", edit))[2] == "no_such_item"


async def test_live_and_backlog_respect_applicants_visibility(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await _no_see(kit)
    other, _ = await add_applicant(kit, "Otto Other", sees=True)
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await _post(http, kit, "staff", _msg("early", "e1", to=[other.id]))
            ws = await connected(server, kit.tokens["contact"])
            await ws.send(_SUBSCRIBE.replace("REF", kit.ref))
            assert (await recv(ws))["type"] == "subscribed"
            await _post(http, kit, "staff", _msg("late", "l1", to=[other.id]))
            await _post(http, kit, "staff", _msg("mine", "m1", to=[kit.contact.id]))
            frame = await recv(ws)  # neither the backlog nor the live one to the other
            assert frame["type"] == "event" and frame["payload"]["thread"] == "mine"
            await ws.close()


async def test_one_client_id_sent_100_times_concurrently_is_one_item(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    # The user's write bucket would refuse most of them (rtportal.limits).
    roomy = dataclasses.replace(settings, write_rate=1000.0, write_burst=1000)
    async with running_server(create_app(roomy)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            ws = await connected(server, kit.tokens["contact"])
            frame = json.dumps(
                {
                    "type": "send",
                    "id": "same",
                    "matter": kit.ref,
                    "kind": "message",
                    "audience": "portal",
                    "payload": {"thread": "race"},
                }
            )

            async def by_ws() -> None:
                for _ in range(50):
                    await ws.send(frame)

            posts = [_post(http, kit, "contact", _msg("race", "same")) for _ in range(50)]
            _, *answers = await asyncio.gather(by_ws(), *posts)
            responses = [r for r in answers if isinstance(r, httpx.Response)]
            assert {r.status_code for r in responses} <= {200, 201}, responses[0].text
            # A contact's answers name the event by its cursor token (never a seq).
            seqs = {r.json()["cursor"] for r in responses}
            acks: list[str] = []
            while len(acks) < 50:
                got = await recv(ws)
                if got["type"] == "ack":
                    acks.append(got["cursor"])
            await ws.close()
            assert seqs == set(acks) and len(seqs) == 1
    async with kit.db.read() as session:
        rows = await session.scalars(select(Event.seq).where(Event.matter_id == kit.matter.id))
        assert len(list(rows)) == 1


async def test_an_edit_retried_is_one_edit_and_only_the_sender_edits(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await _post(http, kit, "contact", _msg("t", "i1"))
    item = f"c{kit.contact.id}.i1"
    edit = {"kind": "edit", "client_id": "e1", "payload": {"item": item}, "blob": "AQID"}
    answers = await asyncio.gather(*[_post(http, kit, "contact", edit) for _ in range(10)])
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["cursor"] for a in answers}) == 1  # a contact's: a token
    made = answers[0].json()["event"]
    assert made["payload"] == {"item": item, "thread": "t", "to": [kit.contact.id]}
    staff_edit = {"kind": "edit", "client_id": "e2", "payload": {"item": item}}
    assert _error(await _post(http, kit, "staff", staff_edit)) == (403, "forbidden", "not_sender")
    async with kit.db.read() as session:
        kinds = await session.scalars(
            select(Event.kind).where(Event.matter_id == kit.matter.id).order_by(Event.seq)
        )
        assert list(kinds) == ["message", "edit"]


async def test_a_delete_redacts_and_its_tombstone_reaches_viewers_live(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await _post(
                http, kit, "staff", {**_msg("t", "i1", to=[kit.contact.id]), "blob": "AAAA"}
            )
            item = f"s{kit.staff.id}.i1"
            edit = {"kind": "edit", "client_id": "e1", "payload": {"item": item}, "blob": "BBBB"}
            assert (await _post(http, kit, "staff", edit)).status_code == 201
            ws = await connected(server, kit.tokens["contact"])
            await ws.send(_SUBSCRIBE.replace("REF", kit.ref))
            assert (await recv(ws))["type"] == "subscribed"
            backlog = [await recv(ws), await recv(ws)]
            assert [f["blob"] for f in backlog] == ["AAAA", "BBBB"]
            gone = {"kind": "delete", "client_id": "d1", "payload": {"item": item}}
            assert (await _post(http, kit, "staff", gone)).status_code == 201
            assert (await _post(http, kit, "staff", gone)).status_code == 200  # one delete
            tomb = await recv(ws)
            assert tomb["kind"] == "delete"
            assert tomb["payload"]["item"] == item
            await ws.close()
            # A new reader (the frame cache of this worker held the old frames).
            ws = await connected(server, kit.tokens["contact"])
            await ws.send(_SUBSCRIBE.replace("REF", kit.ref))
            assert (await recv(ws))["type"] == "subscribed"
            again = [await recv(ws) for _ in range(3)]
            assert [(e["blob"], e.get("redacted")) for e in again[:2]] == [(None, True)] * 2
            await ws.close()
            hist = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("staff"))
            assert [e["blob"] for e in hist.json()["events"]] == [None, None, None]
            edit2 = {"kind": "edit", "client_id": "e9", "payload": {"item": item}, "blob": "CCCC"}
            assert _error(await _post(http, kit, "staff", edit2))[2] == "no_such_item"
    async with kit.db.read() as session:
        rows = await session.execute(
            select(Event.kind, Event.blob, Event.redacted)
            .where(Event.matter_id == kit.matter.id)
            .order_by(Event.seq)
        )
        assert [tuple(r) for r in rows] == [
            ("message", None, True),
            ("edit", None, True),
            ("delete", None, False),
        ]


async def test_staff_delete_any_item_clients_only_their_own(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await _post(http, kit, "staff", _msg("t", "s1", to=[kit.contact.id]))
    await _post(http, kit, "contact", _msg("t", "c1"))
    mine = {"kind": "delete", "client_id": "d", "payload": {"item": f"s{kit.staff.id}.s1"}}
    assert _error(await _post(http, kit, "contact", mine)) == (403, "forbidden", "not_sender")
    theirs = {"kind": "delete", "client_id": "d", "payload": {"item": f"c{kit.contact.id}.c1"}}
    assert (await _post(http, kit, "staff", theirs)).status_code == 201


@pytest.mark.parametrize("who", ["other-matter", "other-firm", "removed", "nobody"])
async def test_thread_endpoints_are_404_to_whoever_may_not_see(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm, who: str
) -> None:
    kit = await make_firm()
    await _post(http, kit, "staff", _msg("t", "s1", to=[kit.contact.id]))
    headers: dict[str, str] = {}
    if who == "other-matter":
        other_matter = await kit.add_matter(members=())
        _, token = await kit.add_contact("Elsewhere", matter=other_matter)
        headers = {"Authorization": f"Bearer {token}"}
    elif who == "other-firm":
        headers = (await make_firm()).auth("staff")
    elif who == "removed":
        await kit.remove_member(kit.contact)
        headers = kit.auth("contact")
    for path in ("threads", "threads/t/items"):
        got = await http.get(f"/api/v1/matters/{kit.ref}/{path}", headers=headers)
        assert got.status_code == (401 if who == "nobody" else 404), (path, got.text)


async def test_thread_pages_go_both_ways(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    for n in range(7):
        await _post(http, kit, "contact", _msg("long", f"m{n}"))
    await _post(http, kit, "contact", _msg("other", "x"))
    url = f"/api/v1/matters/{kit.ref}/threads/long/items"
    newest = (await http.get(f"{url}?limit=3", headers=kit.auth("contact"))).json()
    assert [e["payload"]["item"][-2:] for e in newest["events"]] == ["m4", "m5", "m6"]
    assert newest["more"] is True
    older = (
        await http.get(f"{url}?limit=3&before={newest['prev']}", headers=kit.auth("contact"))
    ).json()
    assert [e["payload"]["item"][-2:] for e in older["events"]] == ["m1", "m2", "m3"]
    forward = (
        await http.get(f"{url}?limit=5&after={older['next']}", headers=kit.auth("contact"))
    ).json()
    assert [e["payload"]["item"][-2:] for e in forward["events"]] == ["m4", "m5", "m6"]
    assert forward["more"] is False
    bad = await http.get(f"{url}?before=x", headers=kit.auth("contact"))
    assert bad.json()["error"]["code"] == "invalid_cursor"
    listed = (
        await http.get(f"/api/v1/matters/{kit.ref}/threads?limit=1", headers=kit.auth("staff"))
    ).json()
    assert [t["thread"] for t in listed["threads"]] == ["other"]
    rest = (
        await http.get(
            f"/api/v1/matters/{kit.ref}/threads?before={listed['next']}", headers=kit.auth("staff")
        )
    ).json()
    assert [(t["thread"], t["items"], t["opener"]) for t in rest["threads"]] == [
        ("long", 7, f"{ids.of(kit.contact)}.m0")
    ]


async def test_a_note_before_the_first_reply_leaves_the_welcome_thread_a_client_thread(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    thread = f"welcome-{kit.contact.id}"
    await put_welcome(kit.db, kit.matter, kit.staff, kit.contact.id)
    note = {"kind": "note", "audience": "staff", "client_id": "n", "payload": {"thread": thread}}
    made = await _post(http, kit, "staff", note)
    assert made.json()["event"]["payload"]["parent"] == thread
    reply = await _post(http, kit, "contact", _msg(thread, "r"))
    assert reply.status_code == 201, reply.text
    assert reply.json()["event"]["payload"]["to"] == [kit.contact.id]
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/{thread}/items", headers=kit.auth("contact")
    )
    body = page.json()
    assert body["kind"] == "client" and body["welcome"]["kind"] == "welcome"
    assert [e["kind"] for e in body["events"]] == ["message"]  # never the note


async def test_an_opener_after_a_client_left_goes_to_those_who_remain(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A staff opener naming no recipients goes to the matter's client members. Sent
    just after one left, it is first checked against what the worker remembers of the
    matter (with the one who left); the write finds that stale and the send is checked
    again, from the send as it came: checked again as first prepared, its ``to``
    named the one who left and it was refused (``thread_recipients``), though its
    sender named nobody."""
    kit = await make_firm()
    other, _ = await add_applicant(kit, "Omar", sees=True)
    first = await _post(http, kit, "staff", _msg("t1", "a1"))
    assert first.json()["event"]["payload"]["to"] == sorted([kit.contact.id, other.id])
    await kit.remove_member(other, hub=app.state.runtime.hub)
    second = await _post(http, kit, "staff", _msg("t2", "a2"))
    assert second.status_code == 201, second.text
    assert second.json()["event"]["payload"]["to"] == [kit.contact.id]
