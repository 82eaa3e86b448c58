"""Matters, contacts and applicants over HTTP: each refusal its documented code."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from rtportal.access.membership import valid_matter_ref
from rtportal.db.models import MatterMember
from tests.conftest import FirmKit, MakeFirm


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def _contact(http: httpx.AsyncClient, kit: FirmKit, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/contacts", json=body, headers=kit.auth("staff"))
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()["contact"]
    return contact


async def test_contacts_are_created_read_edited_and_searched(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    made = await _contact(
        http,
        kit,
        name=" Mei Chen ",
        emails=["Mei@Example.com", "mei@example.com", "mei.work@example.org"],
        phones=[{"number": "+61400000001", "personal_mobile": True}, {"number": "+6129999000"}],
    )
    assert made["name"] == "Mei Chen"
    assert made["emails"] == ["mei@example.com", "mei.work@example.org"]  # lower-cased, unique
    assert made["phones"] == [
        {"number": "+61400000001", "personal_mobile": True},
        {"number": "+6129999000", "personal_mobile": False},
    ]
    url = f"/api/v1/contacts/{made['id']}"
    got = await http.get(url, headers=kit.auth("staff"))
    assert got.json()["contact"] == made
    patched = await http.patch(url, json={"phones": []}, headers=kit.auth("staff"))
    assert patched.status_code == 200
    assert patched.json()["contact"]["phones"] == []
    assert patched.json()["contact"]["emails"] == made["emails"]  # not named: kept
    await _contact(http, kit, name="Zed Other")
    found = await http.get("/api/v1/contacts?q=MEI.WORK", headers=kit.auth("staff"))
    assert [c["id"] for c in found.json()["contacts"]] == [made["id"]]
    found = await http.get("/api/v1/contacts?q=zed", headers=kit.auth("admin"))
    assert [c["name"] for c in found.json()["contacts"]] == ["Zed Other"]
    # Wildcards in q are literal.
    found = await http.get("/api/v1/contacts?q=%25", headers=kit.auth("staff"))
    assert found.json()["contacts"] == []
    # Pages: limit and after.
    first = await http.get("/api/v1/contacts?limit=1", headers=kit.auth("staff"))
    page = first.json()
    assert len(page["contacts"]) == 1 and page["next"] == page["contacts"][0]["id"]
    rest = await http.get(
        f"/api/v1/contacts?limit=100&after={page['next']}", headers=kit.auth("staff")
    )
    ids = [c["id"] for c in rest.json()["contacts"]]
    assert page["next"] not in ids and made["id"] in ids and rest.json()["next"] is None


async def test_bad_contact_input_gets_bad_request_naming_the_field(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "A", "emails": "a@b.co"}, "emails"),
        ({"name": "A", "emails": ["not-an-email"]}, "emails[0]"),
        ({"name": "A", "emails": ["a@b.co", "x@y"]}, "emails[1]"),
        ({"name": "A", "emails": [f"a{i}@b.co" for i in range(11)]}, "emails"),
        ({"name": "A", "phones": [{"number": "0400 000 000"}]}, "phones[0].number"),
        ({"name": "A", "phones": [{"number": "+0123456789"}]}, "phones[0].number"),
        ({"name": "A", "phones": [{"number": "+61400000000", "personal_mobile": 1}]}, None),
        ({"name": "A", "phones": [{"number": "+61400000000", "extra": 1}]}, "phones[0]"),
        ({"name": "A", "phones": [{"number": "+614000000"}] * 11}, "phones"),
    ]
    for body, field in cases:
        response = await http.post("/api/v1/contacts", json=body, headers=kit.auth("staff"))
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "bad_request"
        if field is not None:
            assert error["details"]["field"] == field, (body, error)
    unknown = await http.post(
        "/api/v1/contacts", json={"name": "A", "role": "x"}, headers=kit.auth("staff")
    )
    assert _code(unknown) == "bad_request"


async def test_contacts_are_invisible_to_clients_bots_and_other_firms(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    made = await _contact(http, kit, name="Mei")
    for who in ("contact", "bot"):
        for response in (
            await http.get("/api/v1/contacts", headers=kit.auth(who)),
            await http.get(f"/api/v1/contacts/{made['id']}", headers=kit.auth(who)),
            await http.post("/api/v1/contacts", json={"name": "x"}, headers=kit.auth(who)),
        ):
            assert response.status_code == 404 and _code(response) == "not_found"
    for url in (f"/api/v1/contacts/{made['id']}", "/api/v1/contacts/99999999999"):
        response = await http.get(url, headers=other.auth("staff"))
        assert response.status_code == 404 and _code(response) == "not_found"
        patched = await http.patch(url, json={"name": "x"}, headers=other.auth("admin"))
        assert _code(patched) == "not_found"
    listed = await http.get("/api/v1/contacts", headers=other.auth("staff"))
    assert made["id"] not in [c["id"] for c in listed.json()["contacts"]]
    assert (await http.get("/api/v1/contacts")).status_code == 401


async def test_matters_are_created_by_admins_with_unique_references(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    made = await http.post(
        "/api/v1/matters",
        json={"title": "Partner visa", "matter_type": "visa", "responsible_staff_id": kit.staff.id},
        headers=kit.auth("admin"),
    )
    assert made.status_code == 201, made.text
    matter = made.json()["matter"]
    assert valid_matter_ref(matter["ref"]) and matter["portal"] == "off"
    assert matter["responsible_staff_id"] == kit.staff.id and matter["matter_type"] == "visa"
    again = await http.post(
        "/api/v1/matters",
        json={"title": "x", "reference": matter["ref"]},
        headers=kit.auth("admin"),
    )
    assert again.status_code == 409 and _code(again) == "conflict"
    # A plain staff member may not create matters; clients and bots neither.
    for who in ("staff", "contact", "bot"):
        refused = await http.post("/api/v1/matters", json={"title": "x"}, headers=kit.auth(who))
        expected = (403, "forbidden") if who == "staff" else (404, "not_found")
        assert (refused.status_code, _code(refused)) == expected, who
    other = await make_firm()
    for body in (
        {"title": ""},
        {"title": "x", "reference": "abc12345"},
        {"title": "x", "responsible_staff_id": other.staff.id},
        {"title": "x", "responsible_staff_id": kit.bot.id},
        {"title": "x", "responsible_staff_id": True},
        {"title": "x", "responsible_staff_id": 2**40},
        {"title": "x", "colour": "red"},
    ):
        response = await http.post("/api/v1/matters", json=body, headers=kit.auth("admin"))
        assert response.status_code == 400 and _code(response) == "bad_request", body
    listed = await http.get("/api/v1/matters", headers=kit.auth("staff"))
    assert {m["ref"]: m["portal"] for m in listed.json()["matters"]}[matter["ref"]] == "off"
    mine = await http.get("/api/v1/matters", headers=kit.auth("contact"))
    assert all("portal" not in m for m in mine.json()["matters"])


async def test_matter_details_edit_and_applicants(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    url = f"/api/v1/matters/{kit.ref}"
    applicant = await _contact(http, kit, name="Second Applicant")
    put = await http.put(f"{url}/applicants/{applicant['id']}", headers=kit.auth("staff"))
    assert put.status_code == 200 and put.json()["changed"] is True
    again = await http.put(f"{url}/applicants/{applicant['id']}", headers=kit.auth("staff"))
    assert again.json()["changed"] is False
    staff_view = (await http.get(url, headers=kit.auth("staff"))).json()["matter"]
    assert staff_view["applicants"] == [{"contact_id": applicant["id"], "name": "Second Applicant"}]
    assert staff_view["portal"] == "off"
    client_view = (await http.get(url, headers=kit.auth("contact"))).json()["matter"]
    assert client_view == {
        "ref": kit.ref,
        "title": kit.matter.title,
        "applicants": [{"name": "Second Applicant"}],
    }  # no ``head``: a client never sees a seq
    # A client whose invite does not allow it sees no other applicants.
    async with kit.db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(
                MatterMember.principal_kind == "contact",
                MatterMember.principal_id == kit.contact.id,
            )
            .values(see_applicants=False)
        )
    client_view = (await http.get(url, headers=kit.auth("contact"))).json()["matter"]
    assert "applicants" not in client_view
    # Edits: matter admins and org admins; a plain staff member is forbidden.
    refused = await http.patch(url, json={"title": "New"}, headers=kit.auth("staff"))
    assert refused.status_code == 403 and _code(refused) == "forbidden"
    patched = await http.patch(
        url, json={"title": "New", "matter_type": None}, headers=kit.auth("admin")
    )
    assert patched.json()["matter"]["title"] == "New"
    bad = await http.patch(url, json={"reference": "ZZZZ9999"}, headers=kit.auth("admin"))
    assert _code(bad) == "bad_request"
    # Other firms: not_found for the matter, and for a contact of another firm.
    assert _code(await http.get(url, headers=other.auth("admin"))) == "not_found"
    assert _code(await http.patch(url, json={"title": "x"}, headers=other.auth("admin"))) == (
        "not_found"
    )
    foreign = await _contact(http, other, name="Foreign")
    response = await http.put(f"{url}/applicants/{foreign['id']}", headers=kit.auth("admin"))
    assert response.status_code == 404 and _code(response) == "not_found"
    response = await http.put(f"{url}/applicants/{applicant['id']}", headers=kit.auth("contact"))
    assert _code(response) == "not_found"
    deleted = await http.delete(f"{url}/applicants/{applicant['id']}", headers=kit.auth("staff"))
    assert deleted.json()["changed"] is True
    assert (await http.get(url, headers=kit.auth("staff"))).json()["matter"]["applicants"] == []
