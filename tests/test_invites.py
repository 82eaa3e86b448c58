"""The portal invite lifecycle over HTTP (docs/access.md, docs/api.md "Portal invites").

Invite rounds and their preconditions, the welcome email and stream items,
acceptance (passcode, password, session), resend, removal (which closes the
contact's live websocket), regenerated login details, access expiry, rate
limits, concurrent accepts, and a code for every bad input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select, update
from websockets.asyncio.client import connect

from rtportal import base64url
from rtportal.access import invites, templates
from rtportal.access.ratelimit_redis import limiter_for
from rtportal.app import create_app
from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.db.models import (
    AuditEntry,
    Credential,
    Firm,
    Invite,
    MatterMember,
    OutboxMessage,
    utcnow,
)
from rtportal.http import invites as invite_http
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.invites import acceptance, login_secret, received
from tests.support.mailsink import http_sink, mail_sink
from tests.support.wsjson import HELLO
from tests.test_removal import frames_until_closed, workers

TIMEOUT = 20.0


_ADDRESS_COUNTS = (
    ("invite_link", "127.0.0.1"),
    ("invite", "addr:127.0.0.1"),
    ("signin", "addr|127.0.0.1"),
)


async def _reset_address_counts(settings: Settings) -> None:
    limiter = limiter_for(settings)
    try:
        for scope, key in _ADDRESS_COUNTS:
            await limiter.reset(scope, key)
    finally:
        await limiter.close()


@pytest.fixture(autouse=True)
async def _fresh_address_limits(settings: Settings) -> AsyncIterator[None]:
    """Every test here comes from 127.0.0.1: it starts, and leaves the next test,
    with fresh per-address counts (on Redis the counts outlive a test)."""
    await _reset_address_counts(settings)
    yield
    await _reset_address_counts(settings)


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def _reason(response: httpx.Response) -> str:
    reason: str = response.json()["error"]["details"]["reason"]
    return reason


async def _new_contact(
    http: httpx.AsyncClient,
    kit: FirmKit,
    name: str = "Mei Chen",
    *,
    email: bool = True,
    mobile: bool | None = True,
) -> int:
    body: dict[str, Any] = {"name": name, "emails": [], "phones": []}
    if email:
        body["emails"] = [f"{name.split()[0].lower()}.{kit.firm_id}@client.test"]
    if mobile is not None:
        body["phones"] = [{"number": "+61400000123", "personal_mobile": mobile}]
    response = await http.post("/api/v1/contacts", json=body, headers=kit.auth("staff"))
    assert response.status_code == 201, response.text
    contact_id: int = response.json()["contact"]["id"]
    return contact_id


async def _invite(
    http: httpx.AsyncClient,
    kit: FirmKit,
    contact_id: int,
    method: str = "email",
    *,
    who: str = "staff",
    ref: str | None = None,
    see_applicants: bool = True,
) -> int:
    response = await http.post(
        f"/api/v1/matters/{ref or kit.ref}/invites",
        json={
            "invites": [
                {"contact_id": contact_id, "method": method, "see_applicants": see_applicants}
            ]
        },
        headers=kit.auth(who),
    )
    assert response.status_code == 201, response.text
    (invite_id,) = response.json()["invites"]
    assert isinstance(invite_id, int)
    return invite_id


async def _accept(
    http: httpx.AsyncClient, token: str, secret: str | None = None, **kw: Any
) -> httpx.Response:
    return await http.post(
        "/api/v1/invites/accept", json=acceptance(token, secret or login_secret(), **kw)
    )


async def _listing(http: httpx.AsyncClient, kit: FirmKit, ref: str | None = None) -> Any:
    response = await http.get(
        f"/api/v1/matters/{ref or kit.ref}/invites", headers=kit.auth("staff")
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _events(http: httpx.AsyncClient, kit: FirmKit, headers: dict[str, str]) -> list[Any]:
    response = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=headers)
    assert response.status_code == 200, response.text
    events: list[Any] = response.json()["events"]
    return events


async def test_an_email_invite_is_sent_opened_and_accepted(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm(name="Harbour & Co")
    contact_id = await _new_contact(http, kit)
    assert (await _listing(http, kit))["portal"] == "off"
    invite_id = await _invite(http, kit, contact_id)
    listing = await _listing(http, kit)
    assert listing["portal"] == "on"
    (row,) = listing["invites"]
    assert row["status"] == "pending" and row["method"] == "email" and row["resends"] == 0
    assert row["contact"] == {"id": contact_id, "name": "Mei Chen"}
    assert row["delivery"] == [{"channel": "email", "status": "held", "error": None}]
    got = await received(kit.db, invite_id)
    (email,) = got.messages
    assert email.subject == f"Welcome to the Harbour & Co Secure Client Portal (Our Ref: {kit.ref})"
    assert email.body is not None and "Dear Mei Chen," in email.body
    assert got.link is not None and "?firm=" in email.body and f"#invite={got.link}" in email.body
    # The contact became an applicant of the matter.
    matter = (await http.get(f"/api/v1/matters/{kit.ref}", headers=kit.auth("staff"))).json()
    assert {"contact_id": contact_id, "name": "Mei Chen"} in matter["matter"]["applicants"]
    assert matter["matter"]["portal"] == "on"

    opened = await http.post("/api/v1/invites/open", json={"token": got.link})
    assert opened.status_code == 200, opened.text
    async with kit.db.read() as session:
        firm = await session.get(Firm, kit.firm_id)
        assert firm is not None
    assert opened.json() == {
        "firm": {"name": "Harbour & Co", "slug": firm.slug},
        "matter": {"ref": kit.ref, "title": kit.matter.title},
        "contact": {"name": "Mei Chen", "id": contact_id},
        "delivery": "portal",
        "email": f"mei.{kit.firm_id}@client.test",
        "needs_passcode": False,
        "has_password": False,
        "kdf": opened.json()["kdf"],  # a fresh salt with the parameters for new passwords
    }
    fresh = opened.json()["kdf"]
    assert fresh["alg"] == "argon2id" and len(base64url.decode(fresh["salt"], 16) or b"") == 16
    accepted = await _accept(http, got.link)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["principal"]["kind"] == "contact"
    assert accepted.json()["principal"]["id"] == contact_id
    assert isinstance(accepted.json()["csrf_token"], str)  # for the cookie's writes
    assert "rtp_session" in accepted.headers["set-cookie"]
    assert "HttpOnly" in accepted.headers["set-cookie"]
    # The cookie is a session: the contact now sees the matter, and the welcome item.
    me = await http.get("/api/v1/me")
    assert me.json()["principal"]["id"] == contact_id
    client_events = await _events(http, kit, {})
    http.cookies.clear()
    welcome = [e for e in client_events if e["kind"] == "welcome"]
    assert [e["payload"]["thread"] for e in welcome] == [f"welcome-{invite_id}"]
    assert welcome[0]["payload"]["to"] == [contact_id]
    assert "Dear Mei Chen" in welcome[0]["payload"]["text"]
    assert got.link not in json.dumps(client_events)  # the secret never enters the stream
    assert all(e["kind"] != "access" for e in client_events)
    staff_events = await _events(http, kit, kit.auth("staff"))
    actions = [e["payload"]["action"] for e in staff_events if e["kind"] == "access"]
    assert actions == ["invited", "accepted"]
    assert got.link not in json.dumps(staff_events)
    (row,) = (await _listing(http, kit))["invites"]
    assert row["status"] == "active" and row["accepted_at"] is not None
    # The link was used: opening or accepting it again is invalid_link.
    again = await http.post("/api/v1/invites/open", json={"token": got.link})
    assert again.status_code == 400 and _code(again) == "invalid_link"
    assert _code(await _accept(http, got.link)) == "invalid_link"
    async with kit.db.read() as session:
        actions_logged = (
            await session.execute(
                select(AuditEntry.action)
                .where(AuditEntry.firm_id == kit.firm_id)
                .order_by(AuditEntry.firm_seq)
            )
        ).scalars()
        assert list(actions_logged) == ["invite.sent", "invite.accepted"]
        credential = (
            await session.execute(
                select(Credential).where(
                    Credential.principal_kind == "contact", Credential.principal_id == contact_id
                )
            )
        ).scalar_one()
        assert credential.verifier is not None and credential.principal_kind == "contact"


async def test_invite_preconditions_each_have_their_code_and_nothing_is_half_done(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    good = await _new_contact(http, kit, "Good One")
    no_email = await _new_contact(http, kit, "Nomail Person", email=False)
    landline = await _new_contact(http, kit, "Landline Person", mobile=False)
    foreign = await _new_contact(http, other, "Foreign Person")
    url = f"/api/v1/matters/{kit.ref}/invites"

    async def round_(*items: tuple[int, str], who: str = "staff") -> httpx.Response:
        body = {"invites": [{"contact_id": c, "method": m} for c, m in items]}
        return await http.post(url, json=body, headers=kit.auth(who))

    cases: list[tuple[httpx.Response, int, str, str | None, int]] = [
        (await round_((good, "email"), (no_email, "email")), 422, "precondition_failed",
         "contact_no_email", no_email),
        (await round_((no_email, "email_sms")), 422, "precondition_failed", "contact_no_email",
         no_email),
        (await round_((good, "sms"), (landline, "sms")), 422, "precondition_failed",
         "contact_no_mobile", landline),
        (await round_((good, "email"), (foreign, "email")), 404, "not_found", None, foreign),
        (await round_((good, "email"), (999_999_999, "email")), 404, "not_found", None,
         999_999_999),
    ]  # fmt: skip
    for response, status, code, reason, contact_id in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["details"]["contact_id"] == contact_id
        if reason:
            assert error["details"]["reason"] == reason
    # All or nothing: none of those rounds invited the good contact.
    assert (await _listing(http, kit))["invites"] == []
    assert (await _listing(http, kit))["portal"] == "off"
    assert (await round_((good, "email"), (no_email, "sms"))).status_code == 201
    again = await round_((good, "sms"))
    assert again.status_code == 422 and _reason(again) == "already_invited"
    # Roles: a plain staff member only on matters they are responsible for.
    made = await http.post(
        "/api/v1/matters",
        json={"title": "Not mine", "responsible_staff_id": kit.admin.id},
        headers=kit.auth("admin"),
    )
    other_ref = made.json()["matter"]["ref"]
    response = await http.post(
        f"/api/v1/matters/{other_ref}/invites",
        json={"invites": [{"contact_id": landline, "method": "email"}]},
        headers=kit.auth("staff"),
    )
    assert response.status_code == 403 and _code(response) == "forbidden"
    # Clients and bots: staff actions do not exist for them (never a 403 hint).
    assert _code(await round_((landline, "email"), who="contact")) == "not_found"
    assert _code(await round_((landline, "email"), who="bot")) == "not_found"
    response = await http.post(
        url,
        json={"invites": [{"contact_id": foreign, "method": "email"}]},
        headers=other.auth("admin"),
    )
    assert response.status_code == 404 and _code(response) == "not_found"
    response = await http.post(
        f"/api/v1/matters/{other_ref}/invites",
        json={"invites": [{"contact_id": landline, "method": "email"}]},
        headers=kit.auth("admin"),
    )
    assert response.status_code == 201


async def test_every_bad_input_gets_its_code(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm(name="Long Firm Name " * 4)  # 60 characters
    contact_id = await _new_contact(http, kit)
    url = f"/api/v1/matters/{kit.ref}/invites"
    bad_rounds: list[Any] = [
        {},
        {"invites": []},
        {"invites": "x"},
        {"invites": [{"contact_id": contact_id, "method": "fax"}]},
        {"invites": [{"contact_id": "1", "method": "email"}]},
        {"invites": [{"contact_id": contact_id, "method": "email", "see_applicants": "no"}]},
        {"invites": [{"contact_id": contact_id, "method": "email", "extra": 1}]},
        {"invites": [{"contact_id": contact_id, "method": "email"}] * 2},
        {"invites": [{"contact_id": n, "method": "email"} for n in range(1, 22)]},
        {"invites": [{"contact_id": contact_id, "method": "email"}], "subject": ""},
        {"invites": [{"contact_id": contact_id, "method": "email"}], "body": "x" * 10_001},
        {"invites": [{"contact_id": contact_id, "method": "email"}], "cc": "x"},
        [1],
    ]
    for body in bad_rounds:
        response = await http.post(url, json=body, headers=kit.auth("staff"))
        assert response.status_code == 400 and _code(response) == "bad_request", body
    merged_too_big = {
        "invites": [{"contact_id": contact_id, "method": "email"}],
        "body": "{company}" * 1100,
    }
    response = await http.post(url, json=merged_too_big, headers=kit.auth("staff"))
    assert _code(response) == "bad_request"
    assert (await _listing(http, kit))["invites"] == []
    for token in (None, 5, "", "x" * 43, "!" * 43, "a" * 10_000):
        opened = await http.post("/api/v1/invites/open", json={"token": token})
        assert opened.status_code in (400, 413), (token, opened.text)
        assert _code(opened) in ("invalid_link", "payload_too_large")
    foreign = await http.post(
        "/api/v1/invites/accept",
        json={"token": "x" * 43, "login_secret": login_secret()},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and _code(foreign) == "forbidden_origin"
    good = {"token": "x" * 43, "kdf": None, "login_secret": login_secret()}
    bad_accepts: list[tuple[dict[str, Any], str]] = [
        ({**good, "login_secret": "abc"}, "bad_request"),
        ({**good, "login_secret": None}, "bad_request"),
        ({**good, "kdf": {"alg": "scrypt"}}, "bad_request"),
        ({**good, "passcode": 123456}, "bad_request"),
        ({**good, "extra": 1}, "bad_request"),
        (good, "invalid_link"),
    ]
    for body, code in bad_accepts:
        response = await http.post("/api/v1/invites/accept", json=body)
        assert _code(response) == code, (body, response.text)
    for path in ("resend", "remove", "regenerate"):
        for invite_id in (999_999_999, 99_999_999_999):
            response = await http.post(
                f"/api/v1/invites/{invite_id}/{path}", headers=kit.auth("admin")
            )
            assert response.status_code == 404 and _code(response) == "not_found"
    invite_id = await _invite(http, kit, contact_id)
    for body in ({"method": "fax"}, {"method": 1}, {"other": 1}):
        response = await http.post(
            f"/api/v1/invites/{invite_id}/resend", json=body, headers=kit.auth("staff")
        )
        assert _code(response) == "bad_request", body
    for query in ("", "?contact_id=abc", "?contact_id=99999999999999999999", "?contact_id=0"):
        response = await http.get(f"{url}/draft{query}", headers=kit.auth("staff"))
        assert response.status_code == 404 and _code(response) == "not_found", query


async def test_a_passcode_is_needed_and_locked_after_five_tries(
    http: httpx.AsyncClient, make_firm: MakeFirm, app: Any
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id, "email_sms")
    got = await received(kit.db, invite_id)
    assert got.link is not None and got.passcode is not None
    assert [m.channel for m in got.messages] == ["sms", "email"]
    opened = await http.post("/api/v1/invites/open", json={"token": got.link})
    assert opened.json()["needs_passcode"] is True
    missing = await _accept(http, got.link)
    assert missing.status_code == 400 and _code(missing) == "invalid_passcode"
    wrong = f"{(int(got.passcode) + 1) % 10**6:06d}"
    codes: list[str] = []
    for guess in range(10_000):
        candidate = wrong if guess % 2 == 0 else f"{guess:06d}"
        if candidate == got.passcode:
            candidate = wrong
        response = await http.post(
            "/api/v1/invites/accept",
            json=acceptance(got.link, login_secret(), passcode=candidate),
        )
        assert response.status_code in (400, 429), response.text
        codes.append(_code(response))
    assert set(codes) <= {"invalid_passcode", "rate_limited"}
    assert codes[:4] == ["invalid_passcode"] * 4
    # Five tries were spent (the missing one counted too): the right passcode is refused now.
    await app.state.runtime.limiter.reset("invite_link", "127.0.0.1")
    locked = await _accept(http, got.link, passcode=got.passcode)
    assert locked.status_code == 400 and _code(locked) == "invalid_passcode"
    async with kit.db.read() as session:
        invite = await session.get(Invite, invite_id)
        assert invite is not None and invite.passcode_tries == 5 and invite.status == "pending"
    # A resend makes a new passcode (and link); the old link is dead.
    resent = await http.post(f"/api/v1/invites/{invite_id}/resend", headers=kit.auth("staff"))
    assert resent.status_code == 200, resent.text
    fresh = await received(kit.db, invite_id)
    assert fresh.link != got.link and fresh.passcode is not None
    assert _code(await _accept(http, got.link, passcode=fresh.passcode)) == "invalid_link"
    accepted = await _accept(http, fresh.link or "", passcode=fresh.passcode)
    assert accepted.status_code == 201, accepted.text
    http.cookies.clear()


async def test_resend_by_another_method_and_only_while_pending(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    no_mobile = await _new_contact(http, kit, "Nomobile Person", mobile=None)
    invite_id = await _invite(http, kit, contact_id)
    first = await received(kit.db, invite_id)
    resent = await http.post(
        f"/api/v1/invites/{invite_id}/resend", json={"method": "sms"}, headers=kit.auth("staff")
    )
    assert resent.status_code == 200, resent.text
    second = await received(kit.db, invite_id)
    assert second.messages[0].channel == "sms" and second.link not in (None, first.link)
    (row,) = (await _listing(http, kit))["invites"]
    assert row["method"] == "sms" and row["resends"] == 1
    assert row["delivery"] == [{"channel": "sms", "status": "held", "error": None}]
    assert _code(await http.post("/api/v1/invites/open", json={"token": first.link})) == (
        "invalid_link"
    )
    other = await _invite(http, kit, no_mobile)
    refused = await http.post(
        f"/api/v1/invites/{other}/resend", json={"method": "sms"}, headers=kit.auth("staff")
    )
    assert refused.status_code == 422 and _reason(refused) == "contact_no_mobile"
    assert (await _accept(http, second.link or "")).status_code == 201
    http.cookies.clear()
    active = await http.post(f"/api/v1/invites/{invite_id}/resend", headers=kit.auth("staff"))
    assert active.status_code == 422 and _reason(active) == "invite_not_pending"
    staff_events = await _events(http, kit, kit.auth("staff"))
    actions = [e["payload"]["action"] for e in staff_events if e["kind"] == "access"]
    assert actions == ["invited", "resent", "invited", "accepted"]


async def test_removal_closes_the_contacts_live_websocket_on_another_worker(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with (
        workers(settings, 2) as (first, second),
        httpx.AsyncClient(base_url=first.base_url) as http,
    ):
        contact_id = await _new_contact(http, kit)
        invite_id = await _invite(http, kit, contact_id)
        got = await received(kit.db, invite_id)
        accepted = await _accept(http, got.link or "")
        assert accepted.status_code == 201
        session_token = accepted.cookies["rtp_session"]
        http.cookies.clear()
        ws = await connect(
            second.ws_url,
            additional_headers={"Authorization": f"Bearer {session_token}"},
            proxy=None,
            open_timeout=TIMEOUT,
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "hello"
        await ws.send(HELLO)
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]}))
        while json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)).get("type") != "subscribed":
            pass
        removed = await http.post(f"/api/v1/invites/{invite_id}/remove", headers=kit.auth("staff"))
        assert removed.status_code == 200, removed.text
        answered = time.monotonic()
        _, code = await frames_until_closed(ws)
        assert time.monotonic() - answered < 1.0  # closed on the other worker within 1 s
        assert code in (CLOSE_ACCESS_REMOVED, CLOSE_REVOKED)
        bearer = {"Authorization": f"Bearer {session_token}"}
        assert (await http.get("/api/v1/me", headers=bearer)).status_code == 401
        listing = await _listing(http, kit)
        assert listing["portal"] == "off" and listing["invites"][0]["status"] == "removed"
        again = await http.post(f"/api/v1/invites/{invite_id}/remove", headers=kit.auth("staff"))
        assert again.status_code == 422 and _reason(again) == "invite_ended"
        async with kit.db.read() as session:
            member = (
                await session.execute(
                    select(MatterMember).where(
                        MatterMember.principal_kind == "contact",
                        MatterMember.principal_id == contact_id,
                    )
                )
            ).scalar_one()
            assert member.removed_at is not None
        # Invited again later: a new invite, a new acceptance (the password is kept).
        invite2 = await _invite(http, kit, contact_id)
        assert invite2 != invite_id
        opened = await http.post(
            "/api/v1/invites/open", json={"token": (await received(kit.db, invite2)).link}
        )
        assert opened.json()["has_password"] is True


async def test_regenerated_login_details_reset_the_password(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id)
    first = await received(kit.db, invite_id)
    accepted = await _accept(http, first.link or "")
    session_token = accepted.cookies["rtp_session"]
    http.cookies.clear()
    # A second matter: the contact already has a password, which must match.
    other = await kit.add_matter(title="Second", members=())
    invite2 = await _invite(http, kit, contact_id, ref=other.reference, who="admin")
    link2 = (await received(kit.db, invite2)).link or ""
    opened = (await http.post("/api/v1/invites/open", json={"token": link2})).json()
    assert opened["has_password"] is True and opened["kdf"]["alg"] == "argon2id"
    wrong = await _accept(http, link2, kdf=False)
    assert wrong.status_code == 401 and _code(wrong) == "invalid_credentials"

    regenerated = await http.post(
        f"/api/v1/invites/{invite_id}/regenerate", headers=kit.auth("staff")
    )
    assert regenerated.status_code == 200, regenerated.text
    bearer = {"Authorization": f"Bearer {session_token}"}
    assert (await http.get("/api/v1/me", headers=bearer)).status_code == 401
    async with kit.db.read() as session:
        credential = (
            await session.execute(
                select(Credential).where(
                    Credential.principal_kind == "contact", Credential.principal_id == contact_id
                )
            )
        ).scalar_one()
        assert credential.verifier is None
    fresh = await received(kit.db, invite_id)
    assert fresh.link != first.link
    opened = (await http.post("/api/v1/invites/open", json={"token": fresh.link})).json()
    assert opened["has_password"] is False
    new_secret = login_secret()
    again = await _accept(http, fresh.link or "", new_secret)
    assert again.status_code == 201, again.text
    http.cookies.clear()
    (row,) = [r for r in (await _listing(http, kit))["invites"] if r["id"] == invite_id]
    assert row["status"] == "active"
    # The second matter's link now takes the new password.
    assert (await _accept(http, link2, new_secret, kdf=False)).status_code == 201
    http.cookies.clear()
    staff_events = await _events(http, kit, kit.auth("staff"))
    actions = [e["payload"]["action"] for e in staff_events if e["kind"] == "access"]
    assert actions == ["invited", "accepted", "regenerated", "accepted"]


async def test_access_expires_with_the_firm_setting(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with kit.db.write() as session:
        await session.execute(
            update(Firm).where(Firm.id == kit.firm_id).values(invite_expiry_days=30)
        )
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id)
    link = (await received(kit.db, invite_id)).link or ""
    slug = (await http.post("/api/v1/invites/open", json={"token": link})).json()["firm"]["slug"]
    secret = login_secret()
    accepted = await _accept(http, link, secret)
    token = accepted.cookies["rtp_session"]
    http.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    signin = {"firm": slug, "email": f"mei.{kit.firm_id}@client.test", "login_secret": secret}
    signed_in = await http.post("/api/v1/signin", json=signin)
    assert signed_in.status_code == 201, signed_in.text
    http.cookies.clear()
    (row,) = (await _listing(http, kit))["invites"]
    assert row["access_expires_at"] is not None
    assert (await http.get(f"/api/v1/matters/{kit.ref}", headers=bearer)).status_code == 200
    async with kit.db.read() as session:
        assert await invites.has_active_invite(session, contact_id)
    past = utcnow() - timedelta(seconds=1)
    async with kit.db.write() as session:
        await session.execute(
            update(Invite).where(Invite.id == invite_id).values(access_expires_at=past)
        )
        await session.execute(
            update(MatterMember)
            .where(
                MatterMember.principal_kind == "contact", MatterMember.principal_id == contact_id
            )
            .values(expires_at=past)
        )
    response = await http.get(f"/api/v1/matters/{kit.ref}", headers=bearer)
    assert response.status_code == 404 and _code(response) == "not_found"
    async with kit.db.read() as session:
        assert not await invites.has_active_invite(session, contact_id)
    # Expired access: signing in is refused as a wrong password is.
    refused = await http.post("/api/v1/signin", json=signin)
    assert refused.status_code == 401 and _code(refused) == "invalid_credentials"
    assert kit.ref not in [
        m["ref"] for m in (await http.get("/api/v1/matters", headers=bearer)).json()["matters"]
    ]
    listing = await _listing(http, kit)
    assert listing["portal"] == "off" and listing["invites"][0]["status"] == "expired"
    # An expired invite does not block a new one.
    assert await _invite(http, kit, contact_id) != invite_id
    staff_events = await _events(http, kit, kit.auth("staff"))
    actions = [e["payload"]["action"] for e in staff_events if e["kind"] == "access"]
    assert actions == ["invited", "accepted", "expired", "invited"]


async def test_twenty_concurrent_accepts_of_one_link_make_one_session(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id)
    link = (await received(kit.db, invite_id)).link or ""
    responses = await asyncio.gather(*(_accept(http, link) for _ in range(20)))
    http.cookies.clear()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 19, [r.text for r in responses]
    assert {_code(r) for r in responses if r.status_code == 400} == {"invalid_link"}
    async with kit.db.read() as session:
        members = (
            await session.execute(
                select(MatterMember).where(
                    MatterMember.principal_kind == "contact",
                    MatterMember.principal_id == contact_id,
                )
            )
        ).all()
        assert len(members) == 1


async def test_rate_limits_on_invites_and_links(
    http: httpx.AsyncClient, make_firm: MakeFirm, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    monkeypatch.setattr(invite_http, "INVITE_LIMIT", 2)
    invite_id = await _invite(http, kit, contact_id)
    resend = f"/api/v1/invites/{invite_id}/resend"
    assert (await http.post(resend, headers=kit.auth("staff"))).status_code == 200
    limited = await http.post(resend, headers=kit.auth("staff"))
    assert limited.status_code == 429 and _code(limited) == "rate_limited"
    assert "retry_after" in limited.json()["error"]["details"]
    monkeypatch.setattr(invite_http, "LINK_LIMIT", 3)
    codes = [
        _code(await http.post("/api/v1/invites/open", json={"token": "y" * 43})) for _ in range(4)
    ]
    assert codes == ["invalid_link"] * 3 + ["rate_limited"]


async def test_templates_merge_only_their_four_fields(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm(name="Finch {company} Legal")
    listed = await http.get("/api/v1/templates", headers=kit.auth("staff"))
    assert listed.status_code == 200
    (default,) = listed.json()["templates"]
    assert default["is_default"] and default["subject"] == templates.DEFAULT_SUBJECT
    body = {
        "name": "Short",
        "subject": "Hi {client_name} {0} {__class__} {company.__dict__} {{company}}",
        "body": "Ref {matter_ref}: {portal_link} {unknown}",
        "is_default": True,
    }
    refused = await http.post("/api/v1/templates", json=body, headers=kit.auth("staff"))
    assert refused.status_code == 403 and _code(refused) == "forbidden"
    made = await http.post("/api/v1/templates", json=body, headers=kit.auth("admin"))
    assert made.status_code == 201, made.text
    template_id = made.json()["template"]["id"]
    dup = await http.post("/api/v1/templates", json=body, headers=kit.auth("admin"))
    assert dup.status_code == 409 and _code(dup) == "conflict"
    contact_id = await _new_contact(http, kit)
    draft = await http.get(
        f"/api/v1/matters/{kit.ref}/invites/draft?contact_id={contact_id}",
        headers=kit.auth("staff"),
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["subject"] == (
        "Hi Mei Chen {0} {__class__} {company.__dict__} {Finch {company} Legal}"
    )
    assert draft.json()["body"] == f"Ref {kit.ref}: {{portal_link}} {{unknown}}"
    patched = await http.patch(
        f"/api/v1/templates/{template_id}", json={"body": "x"}, headers=kit.auth("admin")
    )
    assert patched.json()["template"]["body"] == "x"
    other = await make_firm()
    response = await http.patch(
        f"/api/v1/templates/{template_id}", json={"body": "y"}, headers=other.auth("admin")
    )
    assert response.status_code == 404 and _code(response) == "not_found"
    assert (await http.get("/api/v1/templates", headers=kit.auth("contact"))).status_code == 404
    for bad in ({"name": "n"}, {"name": "n", "subject": "s", "body": "b", "is_default": 1}):
        response = await http.post("/api/v1/templates", json=bad, headers=kit.auth("admin"))
        assert _code(response) == "bad_request"
    assert templates.merge("{portal_link}{company}", {"company": "{portal_link}"}) == (
        "{portal_link}{portal_link}"
    )


_DOCUMENTED = {
    "bad_request",
    "payload_too_large",
    "not_found",
    "forbidden",
    "conflict",
    "precondition_failed",
    "invalid_link",
    "invalid_passcode",
    "invalid_credentials",
    "rate_limited",
}


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: the shapes a careless or hostile client sends."""
    choices: list[Any] = [
        None,
        True,
        0,
        -1,
        2**31,
        2**63,
        1.5,
        "",
        "x" * rng.randint(1, 400),
        "+61400000000",
        "a@b.co",
        "email_sms",
        "\ud800",
        "{company}{portal_link}",
    ]
    if depth < 3:
        choices += [
            [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))],
            {k: _junk(rng, depth + 1) for k in rng.sample(_KEYS, rng.randint(0, 4))},
        ]
    return rng.choice(choices)


_KEYS = [
    "name", "emails", "phones", "number", "personal_mobile", "title", "reference",
    "matter_type", "responsible_staff_id", "invites", "contact_id", "method",
    "see_applicants", "subject", "body", "token", "passcode", "kdf", "login_secret",
    "key_backup", "public_keys", "alg", "salt", "m_kib", "is_default", "x",
]  # fmt: skip


async def test_random_bodies_get_documented_codes_never_a_500(
    http: httpx.AsyncClient, make_firm: MakeFirm, app: Any
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id)
    rng = random.Random(20261206)
    contact_keys = ["name", "emails", "phones"]
    matter_keys = ["title", "reference", "matter_type", "responsible_staff_id"]
    targets = [
        ("POST", "/api/v1/contacts", contact_keys),
        ("PATCH", f"/api/v1/contacts/{contact_id}", contact_keys),
        ("POST", "/api/v1/matters", matter_keys),
        ("PATCH", f"/api/v1/matters/{kit.ref}", matter_keys),
        ("POST", f"/api/v1/matters/{kit.ref}/invites", ["invites", "subject", "body"]),
        ("POST", f"/api/v1/invites/{invite_id}/resend", ["method"]),
        ("POST", f"/api/v1/invites/{invite_id}/regenerate", ["method"]),
        ("POST", "/api/v1/templates", ["name", "subject", "body", "is_default"]),
        ("POST", "/api/v1/invites/open", ["token"]),
        (
            "POST",
            "/api/v1/invites/accept",
            ["token", "passcode", "kdf", "login_secret", "key_backup", "public_keys"],
        ),
    ]
    seen = 0
    for _ in range(60):
        for method, url, keys in targets:
            # Mostly the endpoint's own fields (so the values are what gets tested).
            pool = keys if rng.random() < 0.8 else _KEYS
            body = {k: _junk(rng) for k in rng.sample(pool, rng.randint(0, len(pool)))}
            content = json.dumps(body)
            await app.state.runtime.limiter.reset("invite_link", "127.0.0.1")
            response = await http.request(
                method,
                url,
                content=content,
                headers={**kit.auth("admin"), "Content-Type": "application/json"},
            )
            assert response.status_code < 500, (url, content, response.text)
            if response.status_code >= 400:
                assert _code(response) in _DOCUMENTED, (url, response.text)
            seen += 1
    assert seen == 600


async def test_the_welcome_email_and_passcode_sms_arrive_through_real_providers(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """SMTP (aiosmtpd on loopback) and the SMS webhook: the merged welcome with its
    link, the passcode by SMS, both rows ``sent`` in the invite list, and the
    link and passcode from the mailbox and the gateway accept the invite."""
    kit = await make_firm(name="Harbour Mail")
    async with http_sink() as sms:
        with mail_sink() as (mailbox, port):
            configured = dataclasses.replace(
                settings,
                smtp_url=f"smtp://127.0.0.1:{port}",
                sms_url=f"http://127.0.0.1:{sms.port}/sms",
            )
            app = create_app(configured)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                ) as http,
            ):
                contact_id = await _new_contact(http, kit)
                await _invite(http, kit, contact_id, "email_sms")
                await app.state.runtime.notifier.idle()
                (mail,) = mailbox.messages
                assert mail["Subject"] == (
                    f"Welcome to the Harbour Mail Secure Client Portal (Our Ref: {kit.ref})"
                )
                assert mail["To"] == f"mei.{kit.firm_id}@client.test"
                content = mail.get_content()
                assert "Dear Mei Chen," in content
                link = re.search(r"#invite=([A-Za-z0-9_-]{43})", content)
                ((path, _, raw),) = sms.requests
                text = json.loads(raw)["body"]
                passcode = re.search(r"passcode is ([0-9]{6})", text)
                assert path == "/sms" and link is not None and passcode is not None
                assert link.group(1) not in text  # the SMS carries the passcode only
                (row,) = (await _listing(http, kit))["invites"]
                assert row["delivery"] == [
                    {"channel": "email", "status": "sent", "error": None},
                    {"channel": "sms", "status": "sent", "error": None},
                ]
                accepted = await _accept(http, link.group(1), passcode=passcode.group(1))
                assert accepted.status_code == 201, accepted.text


async def test_regenerated_login_details_close_the_contacts_websockets(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    async with (
        workers(settings, 2) as (first, second),
        httpx.AsyncClient(base_url=first.base_url) as http,
    ):
        contact_id = await _new_contact(http, kit)
        invite_id = await _invite(http, kit, contact_id)
        accepted = await _accept(http, (await received(kit.db, invite_id)).link or "")
        token = accepted.cookies["rtp_session"]
        http.cookies.clear()
        ws = await connect(
            second.ws_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            proxy=None,
            open_timeout=TIMEOUT,
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "hello"
        await ws.send(HELLO)
        # Subscribed: the socket holds the matter, which the client keeps (4010, not 4011).
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref}]}))
        while json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)).get("type") != "subscribed":
            pass
        regenerated = await http.post(
            f"/api/v1/invites/{invite_id}/regenerate", json={}, headers=kit.auth("staff")
        )
        assert regenerated.status_code == 200, regenerated.text
        answered = time.monotonic()
        _, code = await frames_until_closed(ws)
        assert code == CLOSE_REVOKED and time.monotonic() - answered < 1.0


async def test_each_client_sees_only_their_own_welcome(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    first = await _new_contact(http, kit, "Mei Chen")
    second = await _new_contact(http, kit, "Ola Berg")
    tokens = {}
    for contact_id in (first, second):
        invite_id = await _invite(http, kit, contact_id)
        accepted = await _accept(http, (await received(kit.db, invite_id)).link or "")
        tokens[contact_id] = accepted.cookies["rtp_session"]
        http.cookies.clear()
    for contact_id, name in ((first, "Mei Chen"), (second, "Ola Berg")):
        bearer = {"Authorization": f"Bearer {tokens[contact_id]}"}
        welcomes = [e for e in await _events(http, kit, bearer) if e["kind"] == "welcome"]
        assert [e["payload"]["to"] for e in welcomes] == [[contact_id]]
        assert f"Dear {name}," in welcomes[0]["payload"]["text"]
    staff = [e for e in await _events(http, kit, kit.auth("staff")) if e["kind"] == "welcome"]
    assert [e["payload"]["to"] for e in staff] == [[first], [second]]


async def test_two_contacts_of_a_firm_cannot_share_one_sign_in_address(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A couple sharing an email: the second invite by that address is refused
    (``login_in_use``), before sending and again at acceptance, and never a 500."""
    kit = await make_firm()
    first = await _new_contact(http, kit, "Mei Chen")
    second = await _new_contact(http, kit, "Mei Lee")  # the same address (and mobile)
    both_pending = await _invite(http, kit, second)  # before anyone signs in with it
    accepted = await _accept(
        http, (await received(kit.db, await _invite(http, kit, first))).link or ""
    )
    assert accepted.status_code == 201, accepted.text
    http.cookies.clear()
    late = await _accept(http, (await received(kit.db, both_pending)).link or "")
    assert late.status_code == 422 and _reason(late) == "login_in_use", late.text
    assert late.json()["error"]["details"]["contact_id"] == second
    listing = await _listing(http, kit)
    assert {i["id"]: i["status"] for i in listing["invites"]}[both_pending] == "pending"
    other = await kit.add_matter(title="Second matter", members=())
    again = await http.post(
        f"/api/v1/matters/{other.reference}/invites",
        json={"invites": [{"contact_id": second, "method": "email", "see_applicants": True}]},
        headers=kit.auth("staff"),
    )
    assert again.status_code == 422 and _reason(again) == "login_in_use", again.text


async def test_an_invite_link_is_no_way_around_a_clients_second_factor(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    secret = login_secret()
    first = await _accept(
        http, (await received(kit.db, await _invite(http, kit, contact_id))).link or "", secret
    )
    assert first.status_code == 201, first.text
    bearer = {"Authorization": f"Bearer {first.cookies['rtp_session']}"}
    http.cookies.clear()
    started = await http.post("/api/v1/me/totp", headers=bearer)
    assert started.status_code == 200, started.text
    totp_secret = started.json()["secret"]
    now = time.time()
    confirmed = await http.post(
        "/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(totp_secret).at(now)}, headers=bearer
    )
    assert confirmed.status_code == 200, confirmed.text
    other = await kit.add_matter(title="Second matter", members=())
    link = (await received(kit.db, await _invite(http, kit, contact_id, ref=other.reference))).link
    without = await http.post(
        "/api/v1/invites/accept", json={"token": link, "login_secret": secret}
    )
    assert without.status_code == 401 and _code(without) == "second_factor_required"
    assert not http.cookies
    with_code = await http.post(
        "/api/v1/invites/accept",
        json={
            "token": link,
            "login_secret": secret,
            "totp": pyotp.TOTP(totp_secret).at(now + 30),
        },
    )
    assert with_code.status_code == 201, with_code.text


async def test_the_outbox_keeps_no_link_that_is_not_the_live_one(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Held email/SMS (no provider) are read by org admins: once a resend replaces a
    link, or the link is used, the earlier messages' bodies are gone."""
    kit = await make_firm()
    contact_id = await _new_contact(http, kit)
    invite_id = await _invite(http, kit, contact_id, "email_sms")
    first = await received(kit.db, invite_id)
    resent = await http.post(
        f"/api/v1/invites/{invite_id}/resend", json={}, headers=kit.auth("staff")
    )
    assert resent.status_code == 200, resent.text

    async def bodies() -> list[str | None]:
        async with kit.db.read() as session:
            rows = await session.execute(
                select(OutboxMessage.body)
                .where(OutboxMessage.invite_id == invite_id)
                .order_by(OutboxMessage.id)
            )
            return list(rows.scalars())

    held = await bodies()
    assert len(held) == 4 and held[:2] == [None, None] and all(held[2:])
    assert not any(first.link and b and first.link in b for b in held)
    latest = await received(kit.db, invite_id)
    accepted = await _accept(http, latest.link or "", passcode=latest.passcode)
    assert accepted.status_code == 201, accepted.text
    assert await bodies() == [None] * 4
