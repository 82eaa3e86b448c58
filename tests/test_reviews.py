"""The staff review inbox (docs/reviews.md): queueing, the reviewer, acts, pages, codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from rtportal.db.models import Firm, Review, StaffUser
from rtportal.reviews.choose import today_in
from rtportal.reviews.enqueue import enqueue
from tests.conftest import FirmKit, MakeFirm
from tests.support.docworld import Docs
from tests.support.reviewworld import client_says, counts, inbox
from tests.support.server import RunningServer
from tests.test_files import blob, upload_headers


def _today(tz: str | None = None) -> str:
    return today_in(tz).isoformat()


async def _reviews(kit: FirmKit) -> list[Review]:
    async with kit.db.read() as session:
        rows = await session.execute(select(Review).where(Review.firm_id == kit.firm_id))
        return list(rows.scalars())


async def test_a_client_message_is_queued_for_the_responsible_staff_member(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    response = await client_says(http, kit, "docs", "m1")
    assert response.status_code == 201, response.text
    rows = await inbox(http, kit.auth("staff"))
    assert len(rows) == 1
    row = rows[0]
    assert row["matter"] == kit.ref
    assert row["matter_title"] == "Visa application"
    assert row["kind"] == "message" and row["label"] == "Portal Message"
    assert row["ref"] == f"c{kit.contact.id}.m1" and row["thread"] == "docs"
    assert row["sender"] == {"id": kit.contact.id, "name": "Cleo Client"}
    assert row["reviewer"] == kit.staff.id
    assert row["review_on"] == _today() and row["due"] and not row["overdue"]
    assert row["files"] == [] and row["reviewed_at"] is None
    assert await counts(http, kit.auth("staff")) == {"open": 1, "due": 1, "overdue": 0}
    assert await counts(http, kit.auth("admin")) == {"open": 0, "due": 0, "overdue": 0}
    assert await inbox(http, kit.auth("admin")) == []


async def test_staff_and_bot_items_and_retries_queue_nothing_more(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    assert (await client_says(http, kit, "t", "once")).status_code == 201
    retry = await client_says(http, kit, "t", "once")
    assert retry.status_code in (200, 201), retry.text
    for who in ("staff", "bot"):
        body = {"kind": "message", "audience": "portal", "payload": {"thread": "t"}}
        sent = await http.post(
            f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who)
        )
        assert sent.status_code == 201, sent.text
    note = {"kind": "note", "audience": "staff", "payload": {"thread": "internal"}}
    sent = await http.post(
        f"/api/v1/matters/{kit.ref}/events", json=note, headers=kit.auth("staff")
    )
    assert sent.status_code == 201, sent.text
    assert len(await _reviews(kit)) == 1


async def test_a_refused_client_send_queues_nothing(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    body = {
        "kind": "message",
        "audience": "portal",
        "payload": {"thread": "t", "parent": "c1.nothing"},
        "client_id": "bad",
    }
    sent = await http.post(
        f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth("contact")
    )
    assert sent.status_code == 404, sent.text
    bad = await client_says(http, kit, "x" * 65, "long")  # thread over 64: validate refuses
    assert bad.status_code == 400, bad.text
    assert await _reviews(kit) == []


async def test_concurrent_client_sends_share_batches_and_each_is_queued_once(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    sends = [client_says(http, kit, f"t{i % 5}", f"c{i}") for i in range(40)]
    # Some twice: a retry inside the same batch.
    sends += [client_says(http, kit, "t0", "c0"), client_says(http, kit, "t1", "c1")]
    answers = await asyncio.gather(*sends)
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    rows = await _reviews(kit)
    assert sorted(r.ref for r in rows) == sorted(f"c{kit.contact.id}.c{i}" for i in range(40))
    assert {r.reviewer_id for r in rows} == {kit.staff.id}
    assert (await counts(http, kit.auth("staff")))["open"] == 40


async def test_the_firm_preference_and_the_fallback(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with kit.db.write() as session:
        await session.execute(
            update(Firm).where(Firm.id == kit.firm_id).values(review_staff_id=kit.admin.id)
        )
    await client_says(http, kit, "a", "a1")
    # The firm's choice, else the responsible staff member: here, disabled.
    async with kit.db.write() as session:
        await session.execute(
            update(Firm).where(Firm.id == kit.firm_id).values(review_staff_id=None)
        )
        await session.execute(
            update(StaffUser).where(StaffUser.id == kit.staff.id).values(status="disabled")
        )
    await client_says(http, kit, "a", "a2")
    by_ref = {r.ref.rsplit(".", 1)[1]: r.reviewer_id for r in await _reviews(kit)}
    assert by_ref == {"a1": kit.admin.id, "a2": kit.admin.id}


async def test_the_review_date_is_today_in_the_firms_timezone(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    # Kiritimati is UTC+14: its date differs from UTC's for 14 hours a day.
    async with kit.db.write() as session:
        await session.execute(
            update(Firm).where(Firm.id == kit.firm_id).values(timezone="Pacific/Kiritimati")
        )
    await client_says(http, kit, "tz", "z1")
    (row,) = await inbox(http, kit.auth("staff"))
    assert row["review_on"] == _today("Pacific/Kiritimati")


async def test_mark_reassign_and_date_are_idempotent_and_final_once_reviewed(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    await client_says(http, kit, "t", "m1")
    (row,) = await inbox(http, kit.auth("staff"))
    rid = row["id"]
    staff = kit.auth("staff")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    moved = await http.patch(f"/api/v1/reviews/{rid}", json={"review_on": tomorrow}, headers=staff)
    assert moved.status_code == 200 and moved.json()["changed"], moved.text
    assert moved.json()["review"]["review_on"] == tomorrow and not moved.json()["review"]["due"]
    again = await http.patch(f"/api/v1/reviews/{rid}", json={"review_on": tomorrow}, headers=staff)
    assert again.status_code == 200 and not again.json()["changed"]
    assert await counts(http, staff) == {"open": 1, "due": 0, "overdue": 0}
    assert await inbox(http, staff, due="due") == []
    given = await http.post(
        f"/api/v1/reviews/{rid}/reassign", json={"reviewer": kit.admin.id}, headers=staff
    )
    assert given.status_code == 200 and given.json()["changed"], given.text
    assert await inbox(http, staff) == [] and len(await inbox(http, kit.auth("admin"))) == 1
    again = await http.post(
        f"/api/v1/reviews/{rid}/reassign", json={"reviewer": kit.admin.id}, headers=staff
    )
    assert again.status_code == 200 and not again.json()["changed"]
    done = await http.post(f"/api/v1/reviews/{rid}/reviewed", headers=kit.auth("admin"))
    assert done.status_code == 200 and done.json()["changed"], done.text
    first = done.json()["review"]
    assert first["reviewed_by"] == kit.admin.id and first["reviewed_at"] is not None
    redo = await http.post(f"/api/v1/reviews/{rid}/reviewed", json={}, headers=staff)
    assert redo.status_code == 200 and not redo.json()["changed"]
    assert redo.json()["review"]["reviewed_by"] == kit.admin.id  # who and when are kept
    assert redo.json()["review"]["reviewed_at"] == first["reviewed_at"]
    assert await inbox(http, kit.auth("admin")) == []
    late = await http.post(
        f"/api/v1/reviews/{rid}/reassign", json={"reviewer": kit.staff.id}, headers=staff
    )
    assert (
        late.status_code == 422 and late.json()["error"]["details"]["reason"] == "already_reviewed"
    )
    late = await http.patch(f"/api/v1/reviews/{rid}", json={"review_on": tomorrow}, headers=staff)
    assert late.status_code == 422


async def test_the_reassign_picker_lists_the_firms_active_staff_but_bots(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    other = await make_firm()
    async with kit.db.write() as session:
        await session.execute(
            update(StaffUser).where(StaffUser.id == kit.admin.id).values(display_name="Ann Admin")
        )
    listed = await http.get("/api/v1/reviews/reviewers", headers=kit.auth("staff"))
    assert listed.status_code == 200, listed.text
    people = listed.json()["reviewers"]
    assert {p["id"] for p in people} == {kit.admin.id, kit.staff.id}  # not the bot, no other firm
    assert people[0] == {"id": kit.admin.id, "name": "Ann Admin"}  # by name
    async with kit.db.write() as session:
        await session.execute(
            update(StaffUser).where(StaffUser.id == kit.admin.id).values(status="disabled")
        )
    again = await http.get("/api/v1/reviews/reviewers", headers=kit.auth("staff"))
    assert [p["id"] for p in again.json()["reviewers"]] == [kit.staff.id]
    theirs = await http.get("/api/v1/reviews/reviewers", headers=other.auth("staff"))
    assert kit.staff.id not in {p["id"] for p in theirs.json()["reviewers"]}


async def test_pages_and_filters(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    for i in range(7):
        assert (await client_says(http, kit, "p", f"p{i}")).status_code == 201
    rows = await _reviews(kit)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    async with kit.db.write() as session:
        ids = sorted(r.id for r in rows)[:3]
        await session.execute(update(Review).where(Review.id.in_(ids)).values(review_on=yesterday))
    staff = kit.auth("staff")
    seen = await inbox(http, staff, limit=2)
    assert [r["id"] for r in seen] == ids + sorted(r.id for r in rows)[3:]
    overdue = await inbox(http, staff, due="overdue", limit=1)
    assert [r["id"] for r in overdue] == ids and all(r["overdue"] for r in overdue)
    assert len(await inbox(http, staff, due="due")) == 7
    assert await counts(http, staff) == {"open": 7, "due": 7, "overdue": 3}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/reviews?due=soon", None, 400, "bad_request"),
        ("GET", "/api/v1/reviews?limit=0", None, 400, "bad_request"),
        ("GET", "/api/v1/reviews?limit=101", None, 400, "bad_request"),
        ("GET", "/api/v1/reviews?limit=1e3", None, 400, "bad_request"),
        ("GET", "/api/v1/reviews?what=1", None, 400, "bad_request"),
        ("GET", "/api/v1/reviews?after=yesterday", None, 400, "invalid_cursor"),
        ("GET", "/api/v1/reviews?after=2026-02-30.1", None, 400, "invalid_cursor"),
        ("GET", "/api/v1/reviews?after=2026-01-01.0", None, 400, "invalid_cursor"),
        ("POST", "/api/v1/reviews/@/reviewed", {}, 404, "not_found"),
        ("POST", "/api/v1/reviews/0/reviewed", {}, 404, "not_found"),
        ("POST", "/api/v1/reviews/99999999999999999999/reviewed", {}, 404, "not_found"),
        ("POST", "/api/v1/reviews/999999999/reviewed", {}, 404, "not_found"),
        ("POST", "/api/v1/reviews/@id/reviewed", {"extra": 1}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {"reviewer": "1"}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {"reviewer": True}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {"reviewer": 2**70}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {"reviewer": "@bot"}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", {"reviewer": "@other"}, 400, "bad_request"),
        ("POST", "/api/v1/reviews/@id/reassign", [1], 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": "2026-13-01"}, 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": "tomorrow"}, 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": "1999-01-01"}, 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": 20260101}, 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": "2026-1-1"}, 400, "bad_request"),
        ("PATCH", "/api/v1/reviews/@id", {"review_on": "x" * 300}, 413, "payload_too_large"),
        ("PATCH", "/api/v1/reviews/@id", None, 400, "bad_request"),
    ],
)
async def test_bad_input_gets_a_stable_code(
    http: httpx.AsyncClient,
    make_firm: MakeFirm,
    method: str,
    path: str,
    body: object,
    status: int,
    code: str,
) -> None:
    kit = await make_firm()
    other = await make_firm()
    await client_says(http, kit, "t", "m1")
    (row,) = await inbox(http, kit.auth("staff"))
    fill = {"@bot": kit.bot.id, "@other": other.staff.id}
    if isinstance(body, dict):
        body = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    path = path.replace("@id", str(row["id"]))
    kwargs: dict[str, object] = {"headers": kit.auth("staff")}
    if body is not None:
        kwargs["json"] = body
    response = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_clients_bots_and_other_firms_see_nothing_of_reviews(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    other = await make_firm()
    await client_says(http, kit, "t", "m1")
    (row,) = await inbox(http, kit.auth("staff"))
    rid = row["id"]
    nothing = {"error": {"code": "not_found", "message": "no such endpoint"}}
    for headers in (kit.auth("contact"), kit.auth("bot")):
        for method, path, body in (
            ("GET", "/api/v1/reviews", None),
            ("GET", "/api/v1/reviews/count", None),
            ("GET", "/api/v1/reviews/reviewers", None),
            ("POST", f"/api/v1/reviews/{rid}/reviewed", {}),
            ("POST", f"/api/v1/reviews/{rid}/reassign", {"reviewer": kit.staff.id}),
            ("PATCH", f"/api/v1/reviews/{rid}", {"review_on": _today()}),
        ):
            response = await http.request(method, path, json=body, headers=headers)
            assert response.status_code == 404 and response.json() == nothing, response.text
    # Another firm's staff: no such review (the same answer as an id nobody has).
    for method, path, body in (
        ("POST", "/api/v1/reviews/{}/reviewed", {}),
        ("POST", "/api/v1/reviews/{}/reassign", {"reviewer": other.staff.id}),
        ("PATCH", "/api/v1/reviews/{}", {"review_on": _today()}),
    ):
        response = await http.request(
            method, path.format(rid), json=body, headers=other.auth("admin")
        )
        missing = await http.request(
            method, path.format(999999999), json=body, headers=other.auth("admin")
        )
        assert response.status_code == 404, response.text
        assert response.json() == missing.json()
    assert await inbox(http, other.auth("admin")) == []
    # The client's own view of the matter carries no trace of the review.
    history = await http.get(
        f"/api/v1/matters/{kit.ref}/events", params={"after": "0"}, headers=kit.auth("contact")
    )
    assert "review" not in history.text


async def test_enqueue_a_document_for_another_writer(make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with kit.db.write() as session:
        queued = await enqueue(
            session,
            kit.matter,
            "document",
            "upload-1",
            kit.contact.id,
            request="req7",
            files=["f" * 22, "g" * 22],
        )
        again = await enqueue(session, kit.matter, "document", "upload-1", kit.contact.id)
    assert queued is not None and queued.reviewer_id == kit.staff.id and again is None
    async with kit.db.read() as session:
        n = await session.scalar(select(func.count()).select_from(Review))
    assert n is not None and n >= 1
    (row,) = [r for r in await _reviews(kit)]
    assert row.kind == "document" and row.request == "req7"


async def test_the_inbox_lists_a_document_labelled_portal_doc(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with kit.db.write() as session:
        await enqueue(
            session,
            kit.matter,
            "document",
            "upload-2",
            kit.contact.id,
            request="r1",
            files=["a" * 22],
        )
    (row,) = await inbox(http, kit.auth("staff"))
    assert row["label"] == "Portal Doc" and row["files"] == ["a" * 22] and row["request"] == "r1"


async def test_the_firm_sets_its_timezone_and_its_reviewer(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    other = await make_firm()
    admin = kit.auth("admin")
    ok = await http.patch(
        "/api/v1/firm",
        json={"timezone": "Pacific/Auckland", "review_staff_id": kit.admin.id},
        headers=admin,
    )
    assert ok.status_code == 200, ok.text
    firm = ok.json()["firm"]
    assert firm["timezone"] == "Pacific/Auckland" and firm["review_staff_id"] == kit.admin.id
    for body in (
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"timezone": 12},
        {"timezone": "x" * 65},
        {"review_staff_id": kit.bot.id},
        {"review_staff_id": other.staff.id},
        {"review_staff_id": "1"},
        {"review_staff_id": True},
    ):
        bad = await http.patch("/api/v1/firm", json=body, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request", body
    plain = await http.patch("/api/v1/firm", json={"timezone": None}, headers=kit.auth("staff"))
    assert plain.status_code == 403
    back = await http.patch(
        "/api/v1/firm", json={"timezone": None, "review_staff_id": None}, headers=admin
    )
    assert back.json()["firm"]["timezone"] is None
    assert back.json()["firm"]["review_staff_id"] is None


async def test_a_client_item_naming_files_is_queued_with_its_files(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=60) as c:
        data = blob(100)
        uploaded = await c.post(
            f"/api/v1/matters/{kit.ref}/files",
            content=data,
            headers=upload_headers(kit, "contact", data),
        )
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["file"]["id"]
        body = {"kind": "message", "client_id": "withfile",
                "payload": {"thread": "papers", "files": [file_id]}}  # fmt: skip
        sent = await c.post(
            f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth("contact")
        )
        assert sent.status_code == 201, sent.text
        again = await c.post(
            f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth("contact")
        )
        assert again.status_code in (200, 201), again.text
        (row,) = await inbox(c, kit.auth("staff"))
    assert row["ref"] == f"c{kit.contact.id}.withfile" and row["files"] == [file_id]
    assert row["label"] == "Portal Message" and row["thread"] == "papers"


async def _passport_requested(http: httpx.AsyncClient, kit: FirmKit) -> tuple[Docs, str]:
    """A "Passport" request of the kit's matter, asked of its client."""
    docs = Docs(http, kit)
    (item,) = await docs.add([await docs.new_type("Passport")])
    assert (await docs.request([item["id"]])).status_code == 200
    return docs, str(item["id"])


async def test_a_clients_upload_against_a_request_is_a_portal_doc_to_review(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    docs, req = await _passport_requested(http, kit)
    first = await docs.upload_file()
    assert (await docs.upload(req, [first])).json()["changed"]
    assert not (await docs.upload(req, [first])).json()["changed"]  # a retry: nothing new
    staff_file = await docs.upload_file("staff")
    assert (await docs.upload(req, [staff_file], "staff")).status_code == 200
    (row,) = await inbox(http, kit.auth("staff"))
    assert row["kind"] == "document" and row["label"] == "Portal Doc"
    assert row["request"] == req and row["files"] == [first] and row["thread"] is None
    assert row["sender"] == {"id": kit.contact.id, "name": "Cleo Client"}
    second = await docs.upload_file()
    assert (await docs.upload(req, [second])).json()["changed"]  # more files, same round
    rows = await inbox(http, kit.auth("staff"))
    assert [r["files"] for r in rows] == [[first], [second]]


async def test_a_decision_on_an_upload_is_its_review(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Accepting or rejecting a request closes its uploads' open reviews (by the
    decider, in the decision's transaction); a message's review stays open."""
    kit = await make_firm()
    docs, req = await _passport_requested(http, kit)
    for _ in range(2):  # two uploads into one round: two reviews
        assert (await docs.upload(req, [await docs.upload_file()])).json()["changed"]
    assert (await client_says(http, kit, "t", "m1")).status_code == 201
    assert (await counts(http, kit.auth("staff")))["open"] == 3

    assert (await docs.reject(req, who="admin")).status_code == 200
    assert (await counts(http, kit.auth("staff")))["open"] == 1
    closed = [r for r in await _reviews(kit) if r.kind == "document"]
    assert len(closed) == 2
    assert all(r.reviewed_by == kit.admin.id and r.reviewed_at is not None for r in closed)

    # The client uploads again: a new review, open until staff accept.
    assert (await docs.upload(req, [await docs.upload_file()])).json()["changed"]
    assert (await counts(http, kit.auth("staff")))["open"] == 2
    assert (await docs.accept(req)).json()["changed"]
    assert (await counts(http, kit.auth("staff")))["open"] == 1
    assert not (await docs.accept(req)).json()["changed"]  # a retry closes nothing more
    [message] = [r for r in await _reviews(kit) if r.kind == "message"]
    assert message.reviewed_at is None
