"""Issue 12 reviewed as an attacker: each test is one finding of that review, on the
test backends (a client learning of staff-only events through page sizes, receipts
or its own read mark; a client taking over a welcome thread)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from rtportal.app import create_app
from rtportal.db import Database
from rtportal.settings import Settings
from rtportal.threads.items import find_opener
from rtportal.threads.readers import thread_info
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.threadworld import hide_applicants, put_item, put_welcome
from tests.test_threads_live import is_, none_of, open_conn

Json = dict[str, Any]


async def _post(http: httpx.AsyncClient, kit: FirmKit, who: str, body: Json) -> httpx.Response:
    return await http.post(f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who))


def _msg(thread: str, cid: str, **payload: Any) -> Json:
    return {"kind": "message", "client_id": cid, "payload": {"thread": thread, **payload}}


def _note(thread: str, cid: str) -> Json:
    return {"kind": "note", "audience": "staff", "client_id": cid, "payload": {"thread": thread}}


async def _thread_with_notes(http: httpx.AsyncClient, kit: FirmKit, notes: int) -> None:
    """Client thread ``t`` (staff opener to the kit's client), then ``notes`` notes in it."""
    opened = await _post(http, kit, "staff", _msg("t", "open", to=[kit.contact.id]))
    assert opened.status_code == 201, opened.text
    for n in range(notes):
        made = await _post(http, kit, "staff", _note("t", f"n{n}"))
        assert made.status_code == 201, made.text


async def _page(http: httpx.AsyncClient, kit: FirmKit, query: str) -> Json:
    url = f"/api/v1/matters/{kit.ref}/threads/t/items?{query}"
    r = await http.get(url, headers=kit.auth("contact"))
    assert r.status_code == 200, r.text
    body: Json = r.json()
    return body


async def test_a_clients_thread_pages_do_not_count_the_notes_in_it(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Paging a client thread one item at a time must not walk over notes: an empty
    page (or one more page) per note would count them."""
    kit = await make_firm()
    await _thread_with_notes(http, kit, 3)
    newest = await _page(http, kit, "limit=1")
    assert [e["kind"] for e in newest["events"]] == ["message"]
    assert newest["more"] is False
    forward = await _page(http, kit, "limit=1&after=0")
    assert [e["kind"] for e in forward["events"]] == ["message"]
    assert forward["more"] is False
    after = await _page(http, kit, f"limit=1&after={forward['next']}")
    assert after["events"] == [] and after["more"] is False


async def _receipts(http: httpx.AsyncClient, kit: FirmKit, who: str) -> list[Json]:
    r = await http.get(f"/api/v1/matters/{kit.ref}/threads/t/receipts", headers=kit.auth(who))
    assert r.status_code == 200, r.text
    out: list[Json] = r.json()["receipts"]
    return out


async def test_a_staff_receipt_never_points_a_client_at_a_note(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Staff read a client thread up to a note in it: the client's view of that
    receipt names the last item the client holds, not a cursor it cannot match."""
    kit = await make_firm()
    await _thread_with_notes(http, kit, 1)
    history = await http.get(
        f"/api/v1/matters/{kit.ref}/events?before=end", headers=kit.auth("staff")
    )
    staff_head = history.json()["head"]
    r = await http.post(
        f"/api/v1/matters/{kit.ref}/threads/t/read",
        json={"upto": staff_head},
        headers=kit.auth("staff"),
    )
    assert r.status_code == 200, r.text
    held = [e["cursor"] for e in (await _page(http, kit, ""))["events"]]
    shown = await _receipts(http, kit, "contact")
    assert [x["upto"] for x in shown if x["reader"] == f"s{kit.staff.id}"] == [held[-1]]
    staff_view = await _receipts(http, kit, "staff")
    assert [x["upto"] for x in staff_view] == [staff_head]  # staff still see the mark


async def test_a_clients_read_mark_does_not_turn_a_position_into_an_event_cursor(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A position (``head``) may point past notes; marking read up to it must not
    answer the event cursor of that seq (an oracle for "something hidden follows")."""
    kit = await make_firm()
    await _thread_with_notes(http, kit, 2)
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/events?before=end", headers=kit.auth("contact")
    )
    assert page.status_code == 200, page.text
    head = page.json()["head"]
    held = [e["cursor"] for e in (await _page(http, kit, ""))["events"]]
    r = await http.post(
        f"/api/v1/matters/{kit.ref}/threads/t/read",
        json={"upto": head},
        headers=kit.auth("contact"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["upto"] == held[-1]
    first = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/t/first-unread", headers=kit.auth("contact")
    )
    assert first.json()["after"] == held[-1]


async def test_a_client_cannot_open_a_welcome_thread(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """``welcome-<contact id>`` is the server's name for an invitee's first thread.
    A client opening one would (a) learn, by which ids are refused, who else was
    invited to the matter, and (b) own a future invitee's welcome thread (its opener,
    addressed to the attacker: the invitee could not even open it)."""
    kit = await make_firm()
    await hide_applicants(kit.db, kit.matter, kit.contact)
    other, other_token = await kit.add_contact("Other Applicant", matter=kit.matter)
    await put_welcome(kit.db, kit.matter, kit.staff, other.id)
    taken = await _post(http, kit, "contact", _msg(f"welcome-{other.id}", "probe1"))
    future = other.id + 1000
    free = await _post(http, kit, "contact", _msg(f"welcome-{future}", "probe2"))
    assert (taken.status_code, free.status_code) == (404, 404), (taken.text, free.text)
    assert taken.json()["error"] == free.json()["error"]
    # The client's own welcome thread still takes their reply.
    await put_welcome(kit.db, kit.matter, kit.staff, kit.contact.id)
    mine = await _post(http, kit, "contact", _msg(f"welcome-{kit.contact.id}", "r1"))
    assert mine.status_code == 201, mine.text
    # And the other applicant's welcome thread is theirs.
    headers = {"Authorization": f"Bearer {other_token}"}
    page = await http.get(
        f"/api/v1/matters/{kit.ref}/threads/welcome-{other.id}/items", headers=headers
    )
    assert page.status_code == 200, page.text


async def test_a_clients_history_pages_do_not_count_staff_events(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Protocol v2 hides seqs so that a client cannot count staff-only events; paging
    the matter's history one event at a time counts them all the same (one more page,
    most of them empty, per note)."""
    kit = await make_firm()
    await _thread_with_notes(http, kit, 5)
    url = f"/api/v1/matters/{kit.ref}/events"
    pages, seen, query = 0, 0, "before=end"
    while True:
        r = await http.get(f"{url}?limit=1&{query}", headers=kit.auth("contact"))
        assert r.status_code == 200, r.text
        body = r.json()
        pages, seen = pages + 1, seen + len(body["events"])
        if not body["more"] or pages > 50:
            break
        query = f"before={body['prev']}"
    assert pages == max(seen, 1)


async def test_a_staff_mark_over_a_note_sends_clients_no_receipt_live(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """Live: staff reading on over a note in a client thread is news to staff only; a
    client's receipt frame names only an item it holds."""
    kit = await make_firm()
    opener = await put_item(kit.db, kit.matter, kit.admin, "tA", to=(kit.contact.id,))
    note = await put_item(kit.db, kit.matter, kit.admin, "tA", kind="note")
    ref, s_id = kit.ref, f"s{kit.staff.id}"
    async with running_server(create_app(settings)) as server:
        codec = server.app.state.runtime.frames.cursors
        held = codec.event_token(kit.matter.id, opener)
        a = await open_conn(server, kit.tokens["contact"], ref, held, "a")
        s2 = await open_conn(server, kit.tokens["admin"], ref, note, "s2")
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            url = f"/api/v1/matters/{ref}/threads/tA/read"
            r = await http.post(url, json={"upto": opener}, headers=kit.auth("staff"))
            assert r.status_code == 200, r.text
            got = await a.until(is_("receipt", reader=s_id))
            assert got[-1]["upto"] == held
            r = await http.post(url, json={"upto": note}, headers=kit.auth("staff"))
            assert r.status_code == 200, r.text
            assert (await s2.until(is_("receipt", reader=s_id, upto=note)))[-1]
            reply = await put_item(kit.db, kit.matter, kit.admin, "tA", to=(kit.contact.id,))
            r = await http.post(url, json={"upto": reply}, headers=kit.auth("staff"))
            assert r.status_code == 200, r.text
        before = await a.until(is_("receipt", reader=s_id))
        assert before[-1]["upto"] == codec.event_token(kit.matter.id, reply)
        none_of(before[:-1], is_("receipt"))  # nothing for the move over the note
        await a.ws.close()
        await s2.ws.close()


async def test_a_reply_in_a_thread_without_recipients_cannot_name_its_own(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A thread opened before threads had recipients (a staff message without ``to``):
    a client's reply there named any ``to`` it liked, and was then shown to a
    co-applicant who may not see the thread (``to`` is what the visibility rule reads)."""
    kit = await make_firm()
    other, _ = await kit.add_contact("Other Applicant", matter=kit.matter)
    await hide_applicants(kit.db, kit.matter, other)
    await put_item(kit.db, kit.matter, kit.admin, "old")  # no ``to``: stored before threads
    r = await _post(http, kit, "contact", _msg("old", "r1", to=[other.id]))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["reason"] == "thread_recipients"
    fine = await _post(http, kit, "contact", _msg("old", "r2"))
    assert fine.status_code == 201, fine.text
    assert "to" not in fine.json()["event"]["payload"]


async def _lookup_plans(db: Database, matter_id: int, thread: str) -> list[tuple[str, str]]:
    """SQLite's plans of the statements a thread lookup runs (``find_opener``,
    ``thread_info``), as executed: with their bound parameters, not literals."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "FROM events" in sql:
            statements.append((sql, params))

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with db.read() as session:
            assert await find_opener(session, matter_id, thread) is None
            assert await thread_info(session, matter_id, thread) is None
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out = []
    async with db.read() as session:
        conn = await session.connection()
        for sql, params in statements:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple(params))
            out.append((sql, " ".join(str(r[-1]) for r in rows.all())))
    assert out
    return out


@pytest.fixture
async def sqlite_db(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database whatever the suite's backend: the plans below are
    SQLite's (its planner is the one that could not use the partial index)."""
    path = tmp_path / "plans.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        yield database
    finally:
        await database.close()


async def test_a_thread_lookup_reads_the_thread_index_as_executed(sqlite_db: Database) -> None:
    """Every typing frame, read mark, receipt list and page looks its thread up. With
    the index's ``kind IN (...)`` bound as parameters SQLite could not use the partial
    index and walked the matter's log in seq order: 0.2-0.6 s a lookup at 200,000
    events, which any client could ask for 16 times per 3 s per connection."""
    for sql, got in await _lookup_plans(sqlite_db, 1, "t1"):
        assert "ix_events_thread (matter_id=? AND <expr>=?)" in got, (sql, got)


async def test_looking_up_a_welcome_thread_is_an_index_range_not_the_matters_log(
    sqlite_db: Database,
) -> None:
    """Any client can name ``welcome-<n>`` in a page, a read mark, a receipt or a typing
    frame: each must cost an index range, never a walk of the matter's log (measured:
    30-50 ms at 200,000 events on SQLite and PostgreSQL)."""
    for sql, got in await _lookup_plans(sqlite_db, 1, "welcome-12345"):
        assert "<expr>=?" in got, (sql, got)
