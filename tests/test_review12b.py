"""Issue 12 reviewed again, as an attacker and as a newcomer: each test is one finding
that the first review (tests/test_review12.py) missed, on the test backends."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update
from starlette.applications import Starlette

from rtportal.db.models import Event
from rtportal.events.visiblesql import THREADED
from rtportal.threads.sql import ITEM_KINDS, PORTAL_ITEM_KINDS
from tests.conftest import FirmKit, MakeFirm
from tests.support.threadworld import hide_applicants, put_item, put_welcome

Json = dict[str, Any]


async def _post(
    http: httpx.AsyncClient, kit: FirmKit, headers: dict[str, str], body: Json
) -> httpx.Response:
    return await http.post(f"/api/v1/matters/{kit.ref}/events", json=body, headers=headers)


def _msg(thread: str, cid: str, **payload: Any) -> Json:
    return {"kind": "message", "client_id": cid, "payload": {"thread": thread, **payload}}


async def test_a_retried_first_reply_in_a_welcome_thread_is_the_same_item(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """The first reply in a welcome thread became the thread's opener: its retry (the
    browser retries a post once, same client id) was prepared as an opener, without
    the ``parent`` it was stored with, and answered ``conflict``; later replies named
    that reply, not the welcome, as their ``parent``."""
    kit = await make_firm()
    thread = f"welcome-{kit.contact.id}"
    await put_welcome(kit.db, kit.matter, kit.staff, kit.contact.id)
    first = await _post(http, kit, kit.auth("contact"), _msg(thread, "r1"))
    assert first.status_code == 201, first.text
    again = await _post(http, kit, kit.auth("contact"), _msg(thread, "r1"))
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    second = await _post(http, kit, kit.auth("staff"), _msg(thread, "s1"))
    assert second.status_code == 201, second.text
    payload = second.json()["event"]["payload"]
    assert (payload["parent"], payload["to"]) == (thread, [kit.contact.id])
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/{thread}/items", headers=kit.auth("staff")
    )
    assert page.json()["opener"] == thread
    # ... and the invitee's page still starts with their welcome once they replied.
    mine = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/{thread}/items", headers=kit.auth("contact")
    )
    assert (mine.json()["welcome"] or {}).get("kind") == "welcome", mine.text


async def test_nobody_opens_a_thread_under_a_welcome_name(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Invite ids are sequential: a staff or bot thread opened as ``welcome-<the next
    invite id>`` became that invitee's welcome thread, and their replies went to the
    staff thread's recipients. Only a ``welcome`` event opens such a thread."""
    kit = await make_firm()
    other, _ = await kit.add_contact("Other Applicant", matter=kit.matter)
    note = {"kind": "note", "audience": "staff", "client_id": "n", "payload": {"thread": ""}}
    for who, body in (
        ("staff", _msg("welcome-999999", "m1", to=[other.id])),
        ("bot", _msg("welcome-999999", "m2")),
        ("staff", {**note, "payload": {"thread": "welcome-999999"}}),
    ):
        r = await _post(http, kit, kit.auth(who), body)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["details"]["reason"] == "no_such_thread"


def test_the_items_every_client_holds_are_the_threaded_kinds() -> None:
    """``sql.PORTAL_ITEM_KINDS`` (a client's read mark is clamped to one of them) is
    the registry's threaded kinds that are thread items, spelled as literal SQL. (A
    ``document`` event is seen by the same rule but lives in no thread.)"""
    assert set(PORTAL_ITEM_KINDS) == set(THREADED) & set(ITEM_KINDS)
    assert set(THREADED) - set(ITEM_KINDS) == {"document"}


async def _statuses(
    http: httpx.AsyncClient, kit: FirmKit, thread: str, headers: dict[str, str]
) -> list[int]:
    base = f"/api/v1/matters/{kit.ref}/threads/{thread}"
    out = []
    for method, url, body in (
        ("GET", f"{base}/items", None),
        ("POST", f"{base}/read", {"upto": 0}),
        ("GET", f"{base}/receipts", None),
        ("GET", f"{base}/first-unread", None),
    ):
        r = await http.request(method, url, json=body, headers=headers)
        out.append(r.status_code)
    return out


async def test_a_welcome_thread_before_its_first_reply_is_its_invitees_alone(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A co-applicant who sees the other applicants could not open another invitee's
    welcome thread (items: 404) but could mark it read, list its receipts and its first
    unread item (200): probing ``welcome-<n>`` told who was invited to the matter (an
    invite they never accepted, one removed or expired: the invite lifecycle is staff's)."""
    kit = await make_firm()  # the kit's contact sees the applicants (the default)
    other, other_token = await kit.add_contact("Other Applicant", matter=kit.matter)
    await put_welcome(kit.db, kit.matter, kit.staff, other.id)
    thread = f"welcome-{other.id}"
    unknown = f"welcome-{other.id + 1000}"
    peer = kit.auth("contact")
    assert await _statuses(http, kit, thread, peer) == await _statuses(http, kit, unknown, peer)
    assert await _statuses(http, kit, thread, peer) == [404] * 4
    invitee = {"Authorization": f"Bearer {other_token}"}
    assert await _statuses(http, kit, thread, invitee) == [200] * 4
    # Once the invitee answers, the thread is a client thread like any other: seen
    # by whoever sees the applicants.
    reply = await _post(http, kit, invitee, _msg(thread, "hello"))
    assert reply.status_code == 201, reply.text
    assert await _statuses(http, kit, thread, peer) == [200] * 4


async def test_receipts_are_ordered_as_a_client_sees_the_marks(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A client is shown a staff mark past a note as the last item before it, but the
    list was ordered by the stored mark: of two staff readers shown at one item, the
    one listed first out of turn had read on over something the client cannot see."""
    kit = await make_firm()
    opened = await _post(http, kit, kit.auth("staff"), _msg("t", "open", to=[kit.contact.id]))
    assert opened.status_code == 201, opened.text
    note = {"kind": "note", "audience": "staff", "client_id": "n", "payload": {"thread": "t"}}
    noted = await _post(http, kit, kit.auth("staff"), note)
    assert noted.status_code == 201, noted.text
    readers = sorted(
        [("admin", f"s{kit.admin.id}"), ("staff", f"s{kit.staff.id}")], key=lambda r: r[1]
    )
    # The reader listed last by id reads on over the note; the other stops at the item.
    for (who, _), upto in zip(readers, (opened.json()["seq"], noted.json()["seq"]), strict=True):
        r = await http.post(
            f"/api/v1/matters/{kit.ref}/threads/t/read", json={"upto": upto}, headers=kit.auth(who)
        )
        assert r.status_code == 200, r.text
    url = f"/api/v1/matters/{kit.ref}/threads/t/receipts"
    shown = (await http.get(url, headers=kit.auth("contact"))).json()["receipts"]
    assert len({x["upto"] for x in shown}) == 1
    assert [x["reader"] for x in shown] == [r for _, r in readers]
    staff_view = (await http.get(url, headers=kit.auth("staff"))).json()["receipts"]
    assert [x["reader"] for x in staff_view] == [r for _, r in reversed(readers)]


async def test_a_clients_own_thread_from_before_threads_is_theirs_for_marks_too(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A client's message stored before threads had recipients (no ``to``) opens a
    thread addressed to that client for sends and pages (``items.Found``), but the
    read side (``readers.thread_info``) took it as addressed to nobody: its client,
    applicants hidden, could read and answer it but not mark it read (404)."""
    kit = await make_firm()
    await hide_applicants(kit.db, kit.matter, kit.contact)
    await put_item(kit.db, kit.matter, kit.contact, "old")  # no ``to``: before threads
    assert await _statuses(http, kit, "old", kit.auth("contact")) == [200] * 4


async def test_an_internal_message_from_before_notes_keeps_its_thread_internal(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A ``message`` of audience staff (how internal messages were stored before
    notes) opened an internal thread for the read side, but a client thread for
    sends: a staff reply there was a portal message, shown to every client who
    sees the applicants."""
    kit = await make_firm()
    seq = await put_item(kit.db, kit.matter, kit.staff, "inside")
    async with kit.db.write() as session:
        await session.execute(
            update(Event)
            .where(Event.matter_id == kit.matter.id, Event.seq == seq)
            .values(audience="staff")
        )
    reply = await _post(http, kit, kit.auth("staff"), _msg("inside", "r1"))
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["details"]["reason"] == "internal_thread"
    note = {"kind": "note", "audience": "staff", "client_id": "n", "payload": {"thread": "inside"}}
    assert (await _post(http, kit, kit.auth("staff"), note)).status_code == 201
    url = f"/api/v1/matters/{kit.ref}/threads/inside/items"
    assert (await http.get(url, headers=kit.auth("staff"))).json()["kind"] == "internal"
    assert await _statuses(http, kit, "inside", kit.auth("contact")) == [404] * 4
