"""The document checklist (docs/documents.md): types, defaults, add to portal,
uploads against requests, decisions, provided documents, the disclosure
precondition and the timeline's blockers, through the HTTP API on the test
backend. Every refusal has its stable code; nothing answers 500.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
from sqlalchemy import select

from rtportal import base64url
from rtportal.db.models import Event, StoredFile
from rtportal.documents.envelopes import MAX_UPLOAD_BYTES, MAX_UPLOADS
from rtportal.documents.rows import MAX_BLOB
from rtportal.events.audience import view_for
from rtportal.events.log import read_since
from tests.conftest import FirmKit, MakeFirm
from tests.support.docworld import Docs, envelope
from tests.support.keyfirm import b64, key_firm
from tests.support.threadworld import add_applicant


def code(r: httpx.Response) -> tuple[int, str, str | None]:
    error = r.json()["error"]
    return r.status_code, error["code"], (error.get("details") or {}).get("reason")


async def _world(http: httpx.AsyncClient, kit: FirmKit) -> tuple[Docs, int, int]:
    docs = Docs(http, kit)
    passport = await docs.new_type("Passport", description="The photo page")
    guide = await docs.new_type("Credit guide", disclosure=True)
    return docs, passport, guide


async def test_the_request_lifecycle(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    docs, passport, guide = await _world(http, kit)
    items = await docs.add([passport, guide])
    req = items[0]["id"]
    assert [i["status"] for i in items] == ["not_requested", "not_shared"]
    assert items[0]["thread"] != items[1]["thread"] and len(items[0]["thread"]) == 22
    assert await docs.checklist("contact") == {}  # nothing requested or shared yet

    r = await docs.request([req])
    assert r.status_code == 200 and r.json()["changed"] and len(r.json()["events"]) == 1
    again = await docs.request([req])  # a retry: the same state, no event
    assert again.status_code == 200 and not again.json()["changed"]
    seen = await docs.checklist("contact")
    assert list(seen) == [req] and seen[req]["status"] == "requested"
    assert seen[req]["requested_at"] and "type" not in seen[req] and "to" not in seen[req]
    assert seen[req]["label"] == "Passport" and seen[req]["description"] == "The photo page"

    first = await docs.upload_file()
    r = await docs.upload(req, [first])
    assert r.status_code == 200 and r.json()["changed"], r.text
    assert r.json()["documents"][0]["status"] == "uploaded"
    assert (await docs.upload(req, [first])).json()["changed"] is False  # idempotent
    r = await docs.reject(req, envelope(40))
    assert r.json()["documents"][0]["status"] == "rejected"
    seen = await docs.checklist("contact")
    assert seen[req]["reason"] and seen[req]["round"] == 1
    second = await docs.upload_file()
    r = await docs.upload(req, [second])
    assert r.json()["documents"][0]["status"] == "uploaded"
    assert r.json()["documents"][0]["round"] == 2
    r = await docs.accept(req)
    assert r.json()["documents"][0]["status"] == "accepted" and r.json()["changed"]
    assert not (await docs.accept(req)).json()["changed"]
    staff = (await docs.checklist())[req]
    assert staff["decided_by"] == f"s{kit.staff.id}" and staff["reason"] is None
    assert [(f["id"], f["round"]) for f in staff["files"]] == [(first, 1), (second, 2)]
    # An accepted document takes no more uploads.
    third = await docs.upload_file()
    expected = (422, "precondition_failed", "document_accepted")
    assert code(await docs.upload(req, [third])) == expected

    # The client downloads the files of their request.
    for file_id in (first, second):
        got = await http.get(
            f"/api/v1/matters/{kit.ref}/files/{file_id}", headers=kit.auth("contact")
        )
        assert got.status_code == 200


async def test_refusals_have_stable_codes(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    docs, passport, guide = await _world(http, kit)
    req, prov = (i["id"] for i in await docs.add([passport, guide]))
    cases: list[tuple[Any, tuple[int, str, str | None]]] = [
        (docs.accept(req), (422, "precondition_failed", "document_not_uploaded")),
        (docs.reject(req), (422, "precondition_failed", "document_not_uploaded")),
        (docs.request([prov]), (422, "precondition_failed", "not_a_request")),
        (docs.request([req], to=[other.contact.id]), (400, "bad_request", "document_recipients")),
        (docs.request(["x" * 22]), (404, "not_found", "no_such_document")),
        (docs.request([]), (400, "bad_request", "bad_items")),
        (docs.request([req], who="contact"), (404, "not_found", None)),
        (docs.request([req], who="bot"), (404, "not_found", None)),
        (docs.upload(req, [await docs.upload_file()]), (404, "not_found", "no_such_document")),
        (
            docs.share(req, [await docs.upload_file("staff")]),
            (422, "precondition_failed", "not_provided"),
        ),
        (docs.share(prov, ["A" * 22]), (404, "not_found", "no_such_file")),
        (docs.share(prov, []), (400, "bad_request", "bad_files")),
        (docs.accept("not-a-ref"), (404, "not_found", "no_such_document")),
    ]
    for call, expected in cases:
        assert code(await call) == expected
    # A file of someone else cannot be named; nor can a file another item holds.
    await docs.request([req])
    staff_file = await docs.upload_file("staff")
    assert code(await docs.upload(req, [staff_file])) == (404, "not_found", "no_such_file")
    mine = await docs.upload_file()
    assert (await docs.upload(req, [mine])).status_code == 200
    (other_req,) = (i["id"] for i in await docs.add([passport]))
    await docs.request([other_req])
    assert code(await docs.upload(other_req, [mine])) == (404, "not_found", "no_such_file")
    # Bodies: no envelope, unknown fields, over the limit, not JSON.
    path = f"{docs.path()}/{other_req}/upload"
    bad = [
        ({"files": [mine]}, (400, "bad_request", "blob_required")),
        ({"files": [mine], "blob": envelope(), "x": 1}, (400, "bad_request", "unknown_field")),
        ({"files": [mine], "blob": "A" * 40_000}, (413, "payload_too_large", None)),
    ]
    for body, expected in bad:
        r = await http.post(path, json=body, headers=kit.auth("contact"))
        assert code(r) == expected
    r = await http.post(
        path, content=b"[1]", headers={**kit.auth("contact"), "Content-Type": "application/json"}
    )
    assert code(r) == (400, "bad_request", None)
    # Types: duplicate labels, bad names, plain staff cannot configure.
    dup = await http.post(
        "/api/v1/firm/document-types", json={"label": "passport"}, headers=kit.auth("admin")
    )
    assert code(dup) == (400, "bad_request", "duplicate_label")
    blank = await http.post(
        "/api/v1/firm/document-types", json={"label": " "}, headers=kit.auth("admin")
    )
    assert code(blank) == (400, "bad_request", "invalid_name")
    staff = await http.post(
        "/api/v1/firm/document-types", json={"label": "X"}, headers=kit.auth("staff")
    )
    assert code(staff) == (403, "forbidden", None)


async def test_applicants_visibility_and_recipients(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    docs, passport, _ = await _world(http, kit)
    ann, ann_token = await add_applicant(kit, "Ann", sees=False)
    ann_auth = {"Authorization": f"Bearer {ann_token}"}
    to_cleo, to_ann, to_all = (i["id"] for i in await docs.add([passport, passport, passport]))
    await docs.request([to_cleo], to=[kit.contact.id])
    await docs.request([to_ann], to=[ann.id])
    await docs.request([to_all])
    assert set(await docs.checklist(ann_auth)) == {to_ann, to_all}
    assert set(await docs.checklist("contact")) == {to_cleo, to_ann, to_all}  # sees applicants
    staff = await docs.checklist()
    assert staff[to_all]["to"] == sorted([kit.contact.id, ann.id])
    # Ann cannot upload against Cleo's request, nor download its files.
    own = await docs.upload_file(ann_auth)
    assert code(await docs.upload(to_cleo, [own], ann_auth)) == (
        404,
        "not_found",
        "no_such_document",
    )
    cleo_file = await docs.upload_file()
    assert (await docs.upload(to_cleo, [cleo_file])).status_code == 200
    got = await http.get(f"/api/v1/matters/{kit.ref}/files/{cleo_file}", headers=ann_auth)
    assert got.status_code == 404
    # The stream: Ann's history holds no event of Cleo's request.
    async with kit.db.read() as session:
        events = await read_since(session, kit.matter.id, 0, 1000)
    documents = [e for e in events if e.kind == "document"]
    assert len(documents) == 4
    for event in documents:
        view = view_for(event, ann, False)
        named = ann.id in event.payload.get("to", [])
        assert (view is not None) == named
        if view is not None:
            assert "types" not in view["payload"]


async def test_provided_documents_and_the_disclosure_precondition(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    docs, _, guide = await _world(http, kit)
    privacy = await docs.new_type("Privacy disclosure", disclosure=True)
    r = await http.patch(
        "/api/v1/firm",
        json={"required_disclosures": ["Privacy disclosure", "Credit guide"]},
        headers=kit.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["firm"]["required_disclosures"] == [
        "Privacy disclosure",
        "Credit guide",
    ]
    bad = await http.patch(
        "/api/v1/firm", json={"required_disclosures": ["a", "A"]}, headers=kit.auth("admin")
    )
    assert code(bad) == (400, "bad_request", "invalid_disclosures")
    contact = (
        await http.post(
            "/api/v1/contacts",
            json={"name": "New Client", "emails": ["new@client.test"]},
            headers=kit.auth("admin"),
        )
    ).json()["contact"]["id"]
    invite = {"invites": [{"contact_id": contact, "method": "email"}]}
    path = f"/api/v1/matters/{kit.ref}/invites"

    async def refused() -> list[str]:
        answer = await http.post(path, json=invite, headers=kit.auth("admin"))
        assert code(answer) == (422, "precondition_failed", "disclosure_missing"), answer.text
        missing: list[str] = answer.json()["error"]["details"]["missing"]
        return missing

    assert await refused() == ["Privacy disclosure", "Credit guide"]
    g, p = (i["id"] for i in await docs.add([guide, privacy]))
    assert (await docs.share(g, [await docs.upload_file("staff")])).status_code == 200
    assert await refused() == ["Privacy disclosure"]
    # A shared document is every client's, before and after an invite.
    assert set(await docs.checklist("contact")) == {g}
    assert (await docs.share(p, [await docs.upload_file("staff")])).status_code == 200
    answer = await http.post(path, json=invite, headers=kit.auth("admin"))
    assert answer.status_code in (200, 201), answer.text


async def test_defaults_and_timeline_blockers(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    docs, passport, guide = await _world(http, kit)
    payslip = await docs.new_type("Payslip")
    r = await http.post(
        "/api/v1/firm/matter-types",
        json={
            "name": "Home loan",
            "steps": [{"name": "Documents"}, {"name": "Lodged"}],
            "phases": [{"name": "Collect", "step": 0}, {"name": "Submit", "step": 1}],
        },
        headers=kit.auth("admin"),
    )
    assert r.status_code == 201, r.text
    matter_type = r.json()["matter_type"]
    put = await http.put(
        f"/api/v1/firm/matter-types/{matter_type['id']}/documents",
        json={
            "documents": [
                {"type": passport, "blocks_step": 1},
                {"type": payslip, "blocks_step": None},
                {"type": guide},
            ]
        },
        headers=kit.auth("admin"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["documents"][0] == {"type": passport, "blocks_step": 1}
    bad = await http.put(
        f"/api/v1/firm/matter-types/{matter_type['id']}/documents",
        json={"documents": [{"type": passport, "blocks_step": 5}]},
        headers=kit.auth("admin"),
    )
    assert code(bad) == (400, "bad_request", "unknown_step")
    no_type = await http.post(docs.path(), json={"from_defaults": True}, headers=kit.auth("staff"))
    assert code(no_type) == (422, "precondition_failed", "no_matter_type")
    phase = matter_type["phases"][0]["id"]
    moved = await http.post(
        f"/api/v1/matters/{kit.ref}/phase", json={"phase": phase}, headers=kit.auth("staff")
    )
    assert moved.status_code == 200, moved.text
    added = await http.post(docs.path(), json={"from_defaults": True}, headers=kit.auth("staff"))
    assert [d["label"] for d in added.json()["documents"]] == [
        "Passport",
        "Payslip",
        "Credit guide",
    ]
    again = await http.post(docs.path(), json={"from_defaults": True}, headers=kit.auth("staff"))
    assert again.json()["documents"] == []  # the defaults are on the list already
    passport_item = added.json()["documents"][0]["id"]
    timeline = (
        await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    ).json()
    assert timeline["timeline"]["current"] == 0 and timeline["timeline"]["blocking"] == []
    await docs.request([passport_item])
    timeline = (
        await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    ).json()
    assert timeline["timeline"]["blocking"] == [
        {"id": passport_item, "label": "Passport", "status": "requested"}
    ]
    await docs.upload(passport_item, [await docs.upload_file()])
    await docs.accept(passport_item)
    timeline = (
        await http.get(f"/api/v1/matters/{kit.ref}/timeline", headers=kit.auth("contact"))
    ).json()
    assert timeline["timeline"]["blocking"] == []


async def test_concurrent_decisions_write_one_event(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    docs, passport, _ = await _world(http, kit)
    (item,) = (i["id"] for i in await docs.add([passport]))
    answers = await asyncio.gather(*(docs.request([item]) for _ in range(5)))
    assert sum(a.json()["changed"] for a in answers) == 1
    await docs.upload(item, [await docs.upload_file()])
    answers = await asyncio.gather(*(docs.accept(item) for _ in range(5)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(a.json()["changed"] for a in answers) == 1
    async with kit.db.read() as session:
        kinds = (
            await session.scalars(select(Event.kind).where(Event.matter_id == kit.matter.id))
        ).all()
        claimed = (
            await session.scalars(
                select(StoredFile.item).where(StoredFile.matter_id == kit.matter.id)
            )
        ).all()
    assert kinds.count("document") == 3
    assert claimed == [f"doc.{item}"]


async def test_concurrent_renames_to_one_label_never_fail_with_500(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Two admins rename two types to the same label at once: one wins, the
    other gets ``duplicate_label`` (the firm's row orders them), never the
    unique index's error as a 500."""
    kit = await make_firm()
    ids = []
    for label in ("Payslip", "Bank statement"):
        made = await http.post(
            "/api/v1/firm/document-types", json={"label": label}, headers=kit.auth("admin")
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["document_type"]["id"])
    answers = await asyncio.gather(
        *(
            http.patch(
                f"/api/v1/firm/document-types/{i}",
                json={"label": "Income proof"},
                headers=kit.auth("admin"),
            )
            for i in ids
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 400)
    assert refused.json()["error"]["details"]["reason"] == "duplicate_label"


async def test_a_checklist_is_bounded_and_archived_types_stay_out(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    docs, passport, _ = await _world(http, kit)
    for _ in range(4):
        assert len(await docs.add([passport] * 50)) == 50
    r = await http.post(docs.path(), json={"types": [passport]}, headers=kit.auth("staff"))
    assert code(r) == (400, "bad_request", "too_many")
    r = await http.post(docs.path(), json={"types": [passport] * 51}, headers=kit.auth("staff"))
    assert code(r) == (400, "bad_request", "unknown_type")
    other = await make_firm()
    foreign = await Docs(http, other).new_type("Theirs")
    r = await http.post(docs.path(), json={"types": [foreign]}, headers=kit.auth("staff"))
    assert code(r) == (400, "bad_request", "unknown_type")
    kind = await docs.new_type("Old form")
    archived = await http.patch(
        f"/api/v1/firm/document-types/{kind}", json={"archived": True}, headers=kit.auth("admin")
    )
    assert archived.status_code == 200 and archived.json()["document_type"]["archived"]
    r = await http.post(docs.path(), json={"types": [kind]}, headers=kit.auth("staff"))
    assert code(r) == (400, "bad_request", "unknown_type")
    r = await http.patch(
        f"/api/v1/firm/document-types/{foreign}", json={"label": "x"}, headers=kit.auth("admin")
    )
    assert code(r) == (404, "not_found", None)
    listed = await http.get("/api/v1/firm/document-types", headers=kit.auth("staff"))
    assert [t["label"] for t in listed.json()["document_types"]] == [
        "Credit guide",
        "Old form",
        "Passport",
    ]


async def test_envelopes_of_an_encrypted_matter_are_checked(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Once a matter has an epoch, an upload's, a share's and a rejection's
    envelope is checked as a message of the item's thread (docs/documents.md)."""
    kf = await key_firm(await make_firm(), http)
    await kf.post_epoch()
    docs, passport, guide = await _world(http, kf.kit)
    req, prov = (i["id"] for i in await docs.add([passport, guide]))
    thread = (await docs.checklist())[req]["thread"]
    await docs.request([req])
    path = f"{docs.path()}/{req}/upload"

    async def upload(blob: bytes) -> httpx.Response:
        body = {"files": [await docs.upload_file()], "blob": b64(blob)}
        return await http.post(path, json=body, headers=kf.kit.auth("contact"))

    assert code(await upload(secrets.token_bytes(64))) == (400, "bad_request", "crypto_encoding")
    other = kf.seal(kf.contact, thread="another-thread").encode()
    assert code(await upload(other)) == (400, "bad_request", "crypto_wrong_context")
    as_staff = kf.seal(kf.contact, thread=thread, key=kf.world.ids[kf.staff]).encode()
    assert (await upload(as_staff)).json()["error"]["code"] == "key_not_certified"
    assert (await upload(kf.seal(kf.contact, thread=thread).encode())).status_code == 200
    # Refused uploads wrote nothing: one round, one file.
    item = (await docs.checklist())[req]
    assert (item["status"], item["round"], len(item["files"])) == ("uploaded", 1, 1)
    reason = b64(kf.seal(kf.staff, thread=thread).encode())
    wrong = b64(kf.seal(kf.staff, thread="elsewhere").encode())
    refused = await docs.reject(req, wrong)
    assert code(refused) == (400, "bad_request", "crypto_wrong_context")
    assert (await docs.reject(req, reason)).json()["documents"][0]["reason"] == reason
    prov_thread = (await docs.checklist())[prov]["thread"]
    shared = await http.post(
        f"{docs.path()}/{prov}/share",
        json={
            "files": [await docs.upload_file("staff")],
            "blob": b64(kf.seal(kf.staff, thread=prov_thread).encode()),
        },
        headers=kf.kit.auth("staff"),
    )
    assert shared.status_code == 200, shared.text


async def test_an_items_current_envelopes_come_with_it(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Each item carries its current round's upload (or share) envelopes with their
    files, at the position its reader knows the event by: a page that never loaded
    an old upload's event still names and opens its files (docs/documents.md)."""
    kit = await make_firm()
    docs, passport, guide = await _world(http, kit)
    req, provided = (i["id"] for i in await docs.add([passport, guide]))
    await docs.request([req])
    assert (await docs.checklist("contact"))[req]["uploads"] == []
    first, second = await docs.upload_file(), await docs.upload_file()
    for file_id in (first, second):  # two uploads into one round
        assert (await docs.upload(req, [file_id])).json()["changed"]

    staff = (await docs.checklist())[req]["uploads"]
    assert [(u["kind"], u["files"]) for u in staff] == [
        ("document", [first]),
        ("document", [second]),
    ]
    assert all(isinstance(u["seq"], int) and "cursor" not in u for u in staff)
    history = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("staff"))
    uploaded = {e["seq"]: e for e in history.json()["events"] if e["kind"] == "document"}
    assert [uploaded[u["seq"]]["blob"] for u in staff] == [u["blob"] for u in staff]

    # The client gets the events' own cursors, never a seq.
    mine = (await docs.checklist("contact"))[req]["uploads"]
    theirs = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("contact"))
    by_cursor = {e["cursor"]: e for e in theirs.json()["events"] if e["kind"] == "document"}
    assert all("seq" not in u for u in mine)
    assert [(by_cursor[u["cursor"]]["blob"], u["files"]) for u in mine] == [
        (u["blob"], u["files"]) for u in staff
    ]

    # A rejection keeps the round; the next upload starts one, with its envelope alone.
    await docs.reject(req)
    assert len((await docs.checklist())[req]["uploads"]) == 2
    third = await docs.upload_file()
    await docs.upload(req, [third])
    assert [u["files"] for u in (await docs.checklist())[req]["uploads"]] == [[third]]

    # A firm-provided document's share, for staff and clients alike.
    shared = await docs.upload_file("staff")
    assert (await docs.share(provided, [shared])).status_code == 200
    for who in ("staff", "contact"):
        [share] = (await docs.checklist(who))[provided]["uploads"]
        assert share["kind"] == "document_shared" and share["files"] == [shared]


async def test_an_items_envelopes_are_bounded_in_bytes(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A client padding each upload's envelope to the limit does not make every read of
    the checklist carry MAX_UPLOADS of them per item (at 200 items, tens of MB): an
    item's envelopes are its newest within ``MAX_UPLOAD_BYTES``, the newest always."""
    kit = await make_firm()
    docs, passport, _guide = await _world(http, kit)
    [req] = [i["id"] for i in await docs.add([passport])]
    await docs.request([req])
    padded = envelope(MAX_BLOB)
    for _ in range(MAX_UPLOADS):
        file_id = await docs.upload_file()
        answer = await http.post(
            f"{docs.path()}/{req}/upload",
            json={"files": [file_id], "blob": padded},
            headers=kit.auth("contact"),
        )
        assert answer.status_code == 200, answer.text
    for who in ("staff", "contact"):
        uploads = (await docs.checklist(who))[req]["uploads"]
        sent = sum(len(base64url.decode(u["blob"], MAX_BLOB) or b"") for u in uploads)
        assert 1 <= len(uploads) < MAX_UPLOADS and sent <= MAX_UPLOAD_BYTES, (len(uploads), sent)
    files = (await docs.checklist())[req]["files"]
    newest = (await docs.checklist())[req]["uploads"][-1]["files"]
    assert newest == [files[-1]["id"]]


async def test_a_clients_item_envelopes_are_events_of_their_own_history(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """An item's envelopes follow the item's visibility, which for the upload and share
    events is their own (a request's recipients are fixed when it is requested; the
    upload event's ``to`` is them): whatever a client's checklist hands them, at a
    cursor, is an event of their history, never a seq."""
    kit = await make_firm()
    docs, passport, guide = await _world(http, kit)
    ann, ann_token = await add_applicant(kit, "Ann", sees=False)
    ann_auth = {"Authorization": f"Bearer {ann_token}"}
    to_cleo, to_ann, to_all, provided = (
        i["id"] for i in await docs.add([passport, passport, passport, guide])
    )
    await docs.request([to_cleo], to=[kit.contact.id])
    await docs.request([to_ann], to=[ann.id])
    await docs.request([to_all])
    for item, who in ((to_cleo, "contact"), (to_ann, ann_auth), (to_all, "contact")):
        assert (await docs.upload(item, [await docs.upload_file(who)], who)).status_code == 200
    assert (await docs.share(provided, [await docs.upload_file("staff")])).status_code == 200
    for who, expected in (
        ("contact", {to_cleo, to_ann, to_all, provided}),
        (ann_auth, {to_ann, to_all, provided}),
    ):
        items = await docs.checklist(who)
        assert set(items) == expected
        history = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=docs.headers(who))
        mine = {e["cursor"]: e for e in history.json()["events"]}
        for item in items.values():
            [upload] = item["uploads"]
            assert "seq" not in upload
            event = mine[upload["cursor"]]
            assert (event["blob"], event["payload"]["files"]) == (upload["blob"], upload["files"])
