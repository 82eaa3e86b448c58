"""Read marks, unread counts, the first unread item and receipts over HTTP, on the real
database (SQLite or PostgreSQL) and the real app (docs/threads.md, docs/api.md).

One matter, two applicants (``a`` sees the matter's applicants, ``b`` does
not), staff and an org admin who writes; threads as the contract shapes
them (tests/support/threadworld.py). Every count is asserted exactly, for
staff, a client and an applicants-hidden client; a note never moves a
client's count; every new endpoint answers 404 to whoever may not see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from rtportal.db.models_threads import ReadMark
from rtportal.events.cursor import CursorCodec
from tests.conftest import FirmKit, MakeFirm
from tests.support.threadworld import Applicants

Json = dict[str, Any]


@pytest.fixture
async def world(make_firm: MakeFirm) -> Applicants:
    """tA to [a]; tB to [b]; tAB to [a, b]; tI internal. Items by the org admin unless noted."""
    kit = await make_firm()
    w = await Applicants.make(kit)
    admin, a, b = kit.admin, w.a, w.b
    await w.item(admin, "tA", to=(a.id,))
    await w.item(a, "tA", to=(a.id,))  # a's own reply: never unread for a
    await w.item(admin, "tA", kind="note")  # staff only
    await w.item(admin, "tB", to=(b.id,))
    await w.item(admin, "tB", to=(b.id,))
    await w.item(admin, "tI", kind="note")
    await w.item(admin, "tAB", to=(a.id, b.id))
    await w.item(admin, "tA", to=(a.id,), redacted=True)  # deleted: never unread
    return w


def code(r: httpx.Response) -> str:
    value: str = r.json()["error"]["code"]
    return value


async def unread(http: httpx.AsyncClient, kit: FirmKit, headers: dict[str, str]) -> Json:
    r = await http.get(f"/api/v1/matters/{kit.ref}/unread", headers=headers)
    assert r.status_code == 200, r.text
    body: Json = r.json()
    return body


@pytest.fixture
def codec(app: Starlette) -> CursorCodec:
    """The server's cursor codec: a contact sends and reads tokens, never a seq."""
    cursors: CursorCodec = app.state.runtime.frames.cursors
    return cursors


def tok(codec: CursorCodec, kit: FirmKit, seq: int) -> str:
    return codec.event_token(kit.matter.id, seq)


def seq_of(codec: CursorCodec, kit: FirmKit, upto: object) -> int:
    """A cursor a contact was given, read back with the server's key (0: none)."""
    if upto == 0:
        return 0
    assert isinstance(upto, str), upto  # a contact never sees a seq
    return codec.seq_of(upto, kit.matter.id)


async def mark(
    http: httpx.AsyncClient, kit: FirmKit, thread: str, upto: object, headers: dict[str, str]
) -> httpx.Response:
    return await http.post(
        f"/api/v1/matters/{kit.ref}/threads/{thread}/read", json={"upto": upto}, headers=headers
    )


async def marks_stored(kit: FirmKit) -> int:
    async with kit.db.read() as session:
        count = await session.execute(
            select(func.count()).select_from(ReadMark).where(ReadMark.matter_id == kit.matter.id)
        )
        return int(count.scalar() or 0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_unread_counts_are_exact_for_staff_a_client_and_an_applicants_hidden_client(
    http: httpx.AsyncClient, world: Applicants
) -> None:
    kit = world.kit
    staff = await unread(http, kit, kit.auth("staff"))
    assert staff == {"matter": 7, "threads": {"tA": 3, "tB": 2, "tI": 1, "tAB": 1}}
    # The org admin wrote every item but a's reply.
    assert await unread(http, kit, kit.auth("admin")) == {"matter": 1, "threads": {"tA": 1}}
    a = await unread(http, kit, kit.auth("contact"))
    assert a == {"matter": 4, "threads": {"tA": 1, "tB": 2, "tAB": 1}}
    b = await unread(http, kit, bearer(world.b_token))
    assert b == {"matter": 3, "threads": {"tB": 2, "tAB": 1}}
    # Notes (internal or in a client thread) and a new internal thread: staff counts
    # move, the clients' do not.
    await world.item(kit.admin, "tA", kind="note")
    await world.item(kit.admin, "tB", kind="note")
    await world.item(kit.admin, "tI2", kind="note")
    assert (await unread(http, kit, kit.auth("staff")))["matter"] == 10
    assert await unread(http, kit, kit.auth("contact")) == a
    assert await unread(http, kit, bearer(world.b_token)) == b
    # A message in b's own thread moves a (who sees the applicants) and b; not tA for b.
    await world.item(kit.admin, "tB", to=(world.b.id,))
    await world.item(kit.admin, "tA", to=(world.a.id,))
    assert (await unread(http, kit, kit.auth("contact")))["threads"] == {
        "tA": 2,
        "tB": 3,
        "tAB": 1,
    }
    assert (await unread(http, kit, bearer(world.b_token)))["threads"] == {"tB": 3, "tAB": 1}


async def test_marks_move_only_forward_and_answer_the_counts(
    http: httpx.AsyncClient, world: Applicants, codec: CursorCodec
) -> None:
    kit = world.kit
    tb = world.seqs["tB"]
    r = await mark(http, kit, "tB", tok(codec, kit, tb[0]), bearer(world.b_token))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "matter": kit.ref,
        "thread": "tB",
        "upto": tok(codec, kit, tb[0]),  # the event cursor b sent: never a seq
        "unread": 1,
        "matter_unread": 2,
    }
    head = world.seqs["tA"][-1]
    r = await mark(http, kit, "tB", tok(codec, kit, head), bearer(world.b_token))
    # A client's mark stays on an event of the thread it sees (head is tA's, which b
    # does not see): the last of tB before it (docs/threads.md, "Receipts").
    seen = max(s for s in tb if s <= head)
    assert seq_of(codec, kit, r.json()["upto"]) == seen and r.json()["unread"] == 0
    # A seq from a contact is refused (it would name a position by number).
    r = await mark(http, kit, "tB", head, bearer(world.b_token))
    assert r.status_code == 400 and code(r) == "invalid_cursor", r.text
    # Backward and zero leave the mark where it is.
    for upto in (tok(codec, kit, tb[0]), 0):
        r = await mark(http, kit, "tB", upto, bearer(world.b_token))
        assert r.status_code == 200 and seq_of(codec, kit, r.json()["upto"]) == seen, r.text
    assert await unread(http, kit, bearer(world.b_token)) == {"matter": 1, "threads": {"tAB": 1}}
    # Other readers' counts are their own.
    assert (await unread(http, kit, kit.auth("contact")))["threads"]["tB"] == 2
    async with kit.db.read() as session:
        rows = (
            await session.execute(
                select(func.count())
                .select_from(ReadMark)
                .where(ReadMark.matter_id == kit.matter.id, ReadMark.thread == "tB")
            )
        ).scalar()
    assert rows == 1


async def test_concurrent_marks_keep_the_furthest(
    http: httpx.AsyncClient, world: Applicants
) -> None:
    kit = world.kit
    ups = list(range(1, world.seqs["tA"][-1] + 1))
    answers = await asyncio.gather(*(mark(http, kit, "tI", u, kit.auth("staff")) for u in ups))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    async with kit.db.read() as session:
        seqs = (
            (
                await session.execute(
                    select(ReadMark.seq).where(
                        ReadMark.matter_id == kit.matter.id, ReadMark.thread == "tI"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert seqs == [max(ups)]


async def test_bad_marks_are_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, world: Applicants
) -> None:
    kit = world.kit
    head = world.seqs["tA"][-1]
    url = f"/api/v1/matters/{kit.ref}/threads/tAB/read"
    cases: list[tuple[Any, int, str]] = [
        ({"upto": head + 1}, 400, "invalid_cursor"),
        ({"upto": "3"}, 400, "invalid_cursor"),
        ({"upto": -1}, 400, "invalid_cursor"),
        ({"upto": True}, 400, "invalid_cursor"),
        ({"upto": 2**53}, 400, "invalid_cursor"),
        ({}, 400, "bad_request"),
        ({"upto": 1, "extra": 1}, 400, "bad_request"),
        ([1], 400, "bad_request"),
    ]
    for body, status, expected in cases:
        r = await http.post(url, json=body, headers=kit.auth("contact"))
        assert (r.status_code, code(r)) == (status, expected), (body, r.text)
    assert await marks_stored(kit) == 0


async def test_first_unread_is_the_first_item_after_the_mark_the_reader_may_see(
    http: httpx.AsyncClient, world: Applicants, codec: CursorCodec
) -> None:
    kit = world.kit
    ta, tb = world.seqs["tA"], world.seqs["tB"]

    async def first(thread: str, headers: dict[str, str]) -> Json:
        r = await http.get(
            f"/api/v1/matters/{kit.ref}/threads/{thread}/first-unread", headers=headers
        )
        assert r.status_code == 200, r.text
        body: Json = r.json()
        return body

    assert await first("tB", bearer(world.b_token)) == {
        "thread": "tB",
        "after": 0,
        "first_unread": tok(codec, kit, tb[0]),
    }
    await mark(http, kit, "tB", tok(codec, kit, tb[0]), bearer(world.b_token))
    assert await first("tB", bearer(world.b_token)) == {
        "thread": "tB",
        "after": tok(codec, kit, tb[0]),
        "first_unread": tok(codec, kit, tb[1]),
    }
    # a: after reading the opener, a's own reply, the note and the deleted item are not unread.
    await mark(http, kit, "tA", tok(codec, kit, ta[0]), kit.auth("contact"))
    assert (await first("tA", kit.auth("contact")))["first_unread"] is None
    # Staff: the note is.
    assert (await first("tA", kit.auth("staff")))["first_unread"] == ta[0]
    await mark(http, kit, "tA", ta[1], kit.auth("staff"))
    assert (await first("tA", kit.auth("staff")))["first_unread"] == ta[2]


async def test_receipts_are_seen_both_ways_and_staff_hidden_when_the_firm_says(
    http: httpx.AsyncClient, world: Applicants, codec: CursorCodec
) -> None:
    kit = world.kit
    tab = world.seqs["tAB"][0]
    await mark(http, kit, "tAB", tok(codec, kit, tab), kit.auth("contact"))
    await mark(http, kit, "tAB", tok(codec, kit, tab), bearer(world.b_token))
    await mark(http, kit, "tAB", tab - 1, kit.auth("staff"))

    async def readers(thread: str, headers: dict[str, str]) -> list[tuple[str, str, int]]:
        r = await http.get(f"/api/v1/matters/{kit.ref}/threads/{thread}/receipts", headers=headers)
        assert r.status_code == 200, r.text
        staff = headers in (kit.auth("staff"), kit.auth("admin"))
        return sorted(
            (x["reader"], x["name"], x["upto"] if staff else seq_of(codec, kit, x["upto"]))
            for x in r.json()["receipts"]
        )

    a, b, s = f"c{world.a.id}", f"c{world.b.id}", f"s{kit.staff.id}"
    everyone = sorted(
        [(a, "Cleo Client", tab), (b, "Bea Applicant", tab), (s, "Sam Staff", tab - 1)]
    )
    assert await readers("tAB", kit.auth("staff")) == everyone
    # The staff mark is before the thread's first item: it names no event a client
    # sees, so clients are not shown it (a client only gets cursors of its events).
    for headers in (kit.auth("contact"), bearer(world.b_token)):
        assert await readers("tAB", headers) == everyone[:2]
    await mark(http, kit, "tAB", tab, kit.auth("staff"))
    everyone = sorted([(a, "Cleo Client", tab), (b, "Bea Applicant", tab), (s, "Sam Staff", tab)])
    for headers in (kit.auth("staff"), kit.auth("contact"), bearer(world.b_token)):
        assert await readers("tAB", headers) == everyone
    # tB is b's: a (who sees the applicants) sees b's receipt; b may not learn of a.
    await mark(http, kit, "tB", tok(codec, kit, world.seqs["tB"][-1]), kit.auth("contact"))
    await mark(http, kit, "tB", tok(codec, kit, world.seqs["tB"][0]), bearer(world.b_token))
    assert [r[0] for r in await readers("tB", kit.auth("contact"))] == sorted([a, b])
    assert [r[0] for r in await readers("tB", bearer(world.b_token))] == [b]
    assert [r[0] for r in await readers("tB", kit.auth("staff"))] == sorted([a, b])
    # The firm hides staff readers from its clients; staff still see each other.
    r = await http.patch(
        "/api/v1/firm", json={"hide_staff_receipts": True}, headers=kit.auth("admin")
    )
    assert r.status_code == 200 and r.json()["firm"]["hide_staff_receipts"] is True, r.text
    got = await http.get("/api/v1/firm", headers=kit.auth("admin"))
    assert got.json()["firm"]["hide_staff_receipts"] is True
    assert [x[0] for x in await readers("tAB", kit.auth("contact"))] == sorted([a, b])
    assert [x[0] for x in await readers("tAB", bearer(world.b_token))] == sorted([a, b])
    assert [x[0] for x in await readers("tAB", kit.auth("staff"))] == sorted([a, b, s])
    # Internal threads have receipts for staff only.
    await mark(http, kit, "tI", world.seqs["tI"][0], kit.auth("staff"))
    assert [x[0] for x in await readers("tI", kit.auth("admin"))] == [s]
    for bad in ({"hide_staff_receipts": "yes"}, {"hide_staff_receipts": None}):
        r = await http.patch("/api/v1/firm", json=bad, headers=kit.auth("admin"))
        assert r.status_code == 400 and code(r) == "bad_request", r.text
    for who, status in (("staff", 403), ("contact", 404)):
        r = await http.patch(
            "/api/v1/firm", json={"hide_staff_receipts": False}, headers=kit.auth(who)
        )
        assert r.status_code == status, (who, r.text)


async def test_every_new_endpoint_is_not_found_for_whoever_may_not_see(
    http: httpx.AsyncClient, world: Applicants, make_firm: MakeFirm
) -> None:
    kit = world.kit
    other = await make_firm()  # another firm: its staff and client
    elsewhere = await kit.add_matter(title="Elsewhere", members=())
    _outsider, outsider_token = await kit.add_contact("Olly Outsider", matter=elsewhere)
    removed, removed_token = await kit.add_contact("Remy Removed", matter=kit.matter)
    await kit.remove_member(removed)
    ref = kit.ref
    endpoints: list[tuple[str, str, Json | None]] = []
    for thread in ("tA", "tI", "tAB", "nope", "bad%20id"):
        base = f"/api/v1/matters/{ref}/threads/{thread}"
        endpoints += [
            ("POST", f"{base}/read", {"upto": 1}),
            ("GET", f"{base}/receipts", None),
            ("GET", f"{base}/first-unread", None),
        ]
    endpoints.append(("GET", f"/api/v1/matters/{ref}/unread", None))
    callers = {
        "other firm's staff": other.auth("staff"),
        "other firm's client": other.auth("contact"),
        "another matter's client": bearer(outsider_token),
        "removed client": bearer(removed_token),
    }
    checked = 0
    for who, headers in callers.items():
        for method, url, body in endpoints:
            r = await http.request(method, url, json=body, headers=headers)
            assert r.status_code == 404 and code(r) == "not_found", (who, method, url, r.text)
            assert set(r.json()) == {"error"}, r.text
            checked += 1
    for method, url, body in endpoints:
        r = await http.request(method, url, json=body)
        assert r.status_code == 401 and code(r) == "unauthenticated", (url, r.text)
        checked += 1
    # b does not see tA nor the internal thread; a does not see tI; nobody sees "nope".
    for headers, thread in (
        (bearer(world.b_token), "tA"),
        (bearer(world.b_token), "tI"),
        (kit.auth("contact"), "tI"),
        (kit.auth("staff"), "nope"),
    ):
        base = f"/api/v1/matters/{ref}/threads/{thread}"
        for method, url, body in (
            ("POST", f"{base}/read", {"upto": 1}),
            ("GET", f"{base}/receipts", None),
            ("GET", f"{base}/first-unread", None),
        ):
            r = await http.request(method, url, json=body, headers=headers)
            assert r.status_code == 404 and code(r) == "not_found", (thread, url, r.text)
            checked += 1
    assert await marks_stored(kit) == 0
    print(f"access matrix: {checked} refusals")


async def test_a_welcome_thread_is_its_recipients_before_anyone_replies(
    http: httpx.AsyncClient, world: Applicants, codec: CursorCodec
) -> None:
    kit = world.kit
    # Named by an invite id (firms without end-to-end encryption): its opener's ``to`` decides.
    seq = await world.item(
        kit.admin, f"welcome-{world.b.id + 1000}", kind="welcome", to=(world.a.id,)
    )
    thread = f"welcome-{world.b.id + 1000}"
    for headers, status in (
        (kit.auth("contact"), 200),
        (kit.auth("staff"), 200),
        (bearer(world.b_token), 404),
    ):
        upto = seq if headers == kit.auth("staff") else tok(codec, kit, seq)
        r = await mark(http, kit, thread, upto, headers)
        assert r.status_code == status, r.text
    # A welcome-like name without its welcome event is no thread.
    r = await mark(http, kit, f"welcome-{world.a.id}", seq, kit.auth("staff"))
    assert r.status_code == 404 and code(r) == "not_found", r.text
