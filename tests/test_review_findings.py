"""Findings of the security review of the access lifecycle (issue 10).

Each test shows one weakness found by attacking a running app; it fails
while the weakness is there.
"""

from __future__ import annotations

import time

import httpx
import pyotp
from starlette.applications import Starlette

from rtportal.http import invites as invite_http
from rtportal.settings import Settings
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.invites import acceptance, login_secret, received
from tests.support.logins import (
    firm_slug,
    give_password,
    prelogin_kdf,
    signin_body,
    staff_email,
)

PASSWORD = "correct horse battery staple"


async def _contact(http: httpx.AsyncClient, kit: FirmKit, name: str, email: str) -> int:
    response = await http.post(
        "/api/v1/contacts",
        json={"name": name, "emails": [email], "phones": []},
        headers=kit.auth("staff"),
    )
    assert response.status_code == 201, response.text
    contact_id: int = response.json()["contact"]["id"]
    return contact_id


async def _invite(http: httpx.AsyncClient, kit: FirmKit, contact_id: int) -> int:
    response = await http.post(
        f"/api/v1/matters/{kit.ref}/invites",
        json={"invites": [{"contact_id": contact_id, "method": "email"}]},
        headers=kit.auth("staff"),
    )
    assert response.status_code == 201, response.text
    (invite_id,) = response.json()["invites"]
    assert isinstance(invite_id, int)
    return invite_id


async def test_two_contacts_sharing_an_email_can_both_accept(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Families share an address; the second acceptance must not be a 500."""
    kit = await make_firm()
    first = await _contact(http, kit, "Ana Silva", "family@client.test")
    second = await _contact(http, kit, "Rui Silva", "family@client.test")
    # Both invited while neither has a password; the first acceptance takes the address.
    links = []
    for contact_id in (first, second):
        link = (await received(kit.db, await _invite(http, kit, contact_id))).link
        assert link is not None
        links.append(link)
    statuses = []
    for link in links:
        response = await http.post("/api/v1/invites/accept", json=acceptance(link, login_secret()))
        http.cookies.clear()
        assert response.status_code != 500, response.text
        statuses.append((response.status_code, response.json().get("error", {}).get("code")))
    assert statuses == [(201, None), (422, "precondition_failed")]


async def test_a_contact_with_a_staff_members_email_is_refused_cleanly(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    contact_id = await _contact(http, kit, "Eve Imposter", email)
    response = await http.post(
        f"/api/v1/matters/{kit.ref}/invites",
        json={"invites": [{"contact_id": contact_id, "method": "email"}]},
        headers=kit.auth("staff"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["reason"] == "login_in_use"


async def test_sign_in_refuses_a_foreign_origin_like_invite_accept(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    kdf = await prelogin_kdf(http, {"firm": slug, "email": email})
    response = await http.post(
        "/api/v1/signin",
        json=signin_body(slug, email, PASSWORD, kdf),
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden_origin"
    for url, body in (
        ("/api/v1/setup/open", {"token": "x" * 43}),
        ("/api/v1/setup/accept", {"token": "x" * 43}),
        ("/api/v1/session", {"token": "x" * 43}),
    ):
        refused = await http.post(url, json=body, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403, (url, refused.text)


async def test_invite_acceptance_is_no_password_oracle_beyond_the_account_limit(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    """A client with a password who is invited to a second matter must give that
    password to accept; guesses there count like sign-in guesses (the account
    limit), not only against the caller's address."""
    kit = await make_firm()
    contact_id = await _contact(http, kit, "Ana Silva", "ana@client.test")
    first = (await received(kit.db, await _invite(http, kit, contact_id))).link
    assert first is not None
    accepted = await http.post("/api/v1/invites/accept", json=acceptance(first, login_secret()))
    assert accepted.status_code == 201, accepted.text
    http.cookies.clear()
    made = await http.post(
        "/api/v1/matters", json={"title": "Second visa"}, headers=kit.auth("admin")
    )
    assert made.status_code == 201, made.text
    ref = made.json()["matter"]["ref"]
    response = await http.post(
        f"/api/v1/matters/{ref}/invites",
        json={"invites": [{"contact_id": contact_id, "method": "email"}]},
        headers=kit.auth("admin"),
    )
    assert response.status_code == 201, response.text
    (invite_id,) = response.json()["invites"]
    link = (await received(kit.db, invite_id)).link
    assert link is not None
    codes = []
    for _ in range(settings.signin_account_limit + 5):
        guess = await http.post(
            "/api/v1/invites/accept", json=acceptance(link, login_secret(), kdf=False)
        )
        codes.append(guess.json()["error"]["code"])
    assert "rate_limited" in codes, codes


async def test_address_limits_count_an_ipv6_host_by_its_64(app: Starlette) -> None:
    """One host holds a whole /64: stepping through its addresses must not reset
    the per-address limits of invite links (nor sign-in, which shares the key)."""
    codes = []
    for i in range(invite_http.LINK_LIMIT + 1):
        transport = httpx.ASGITransport(app=app, client=(f"2001:db8:1:2::{i + 1:x}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.post("/api/v1/invites/open", json={"token": "x" * 43})
            codes.append(response.json()["error"]["code"])
    assert codes[-1] == "rate_limited", codes[-3:]


async def test_a_client_with_a_second_factor_needs_it_to_accept_another_invite(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A client who enrolled TOTP signs in with password and code; accepting an
    invite to another matter with the password alone must not give a session."""
    kit = await make_firm()
    contact_id = await _contact(http, kit, "Ana Silva", "ana@client.test")
    first = (await received(kit.db, await _invite(http, kit, contact_id))).link
    assert first is not None
    secret = login_secret()
    accepted = await http.post("/api/v1/invites/accept", json=acceptance(first, secret))
    assert accepted.status_code == 201, accepted.text
    cookie = {"Origin": TEST_ORIGIN, "X-CSRF-Token": accepted.json()["csrf_token"]}
    started = await http.post("/api/v1/me/totp", headers=cookie)
    assert started.status_code == 200, started.text
    code = pyotp.TOTP(started.json()["secret"]).now()
    confirmed = await http.post("/api/v1/me/totp/confirm", json={"code": code}, headers=cookie)
    assert confirmed.status_code == 200, confirmed.text
    http.cookies.clear()
    made = await http.post(
        "/api/v1/matters", json={"title": "Second visa"}, headers=kit.auth("admin")
    )
    ref = made.json()["matter"]["ref"]
    response = await http.post(
        f"/api/v1/matters/{ref}/invites",
        json={"invites": [{"contact_id": contact_id, "method": "email"}]},
        headers=kit.auth("admin"),
    )
    assert response.status_code == 201, response.text
    (invite_id,) = response.json()["invites"]
    link = (await received(kit.db, invite_id)).link
    assert link is not None
    again = await http.post("/api/v1/invites/accept", json=acceptance(link, secret, kdf=False))
    assert again.status_code == 401, again.text
    assert again.json()["error"]["code"] == "second_factor_required"
    body = acceptance(link, secret, kdf=False)
    body["totp"] = pyotp.TOTP(started.json()["secret"]).at(time.time() + 30)
    with_code = await http.post("/api/v1/invites/accept", json=body)
    assert with_code.status_code == 201, with_code.text


async def test_promotion_to_org_admin_ends_sessions_that_never_saw_a_second_factor(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    """Org admins must sign in with a second factor: a plain staff member's
    password-only session must not become an org admin's session on promotion."""
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    kdf = await prelogin_kdf(http, {"firm": slug, "email": email})
    signed = await http.post("/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf))
    assert signed.status_code == 201, signed.text
    promoted = await http.patch(
        f"/api/v1/staff/{kit.staff.id}", json={"role": "org_admin"}, headers=kit.auth("admin")
    )
    assert promoted.status_code == 200, promoted.text
    as_admin = await http.get("/api/v1/staff")  # the password-only session's cookie
    assert as_admin.status_code == 401, as_admin.text


async def test_setup_links_are_rate_limited_per_address_like_invite_links(
    http: httpx.AsyncClient,
) -> None:
    codes = []
    for _ in range(invite_http.LINK_LIMIT + 1):
        response = await http.post("/api/v1/setup/open", json={"token": "x" * 43})
        codes.append(response.json()["error"]["code"])
    assert codes[-1] == "rate_limited", codes[-3:]


async def test_requiring_a_second_factor_ends_staff_sessions_that_never_saw_one(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    kdf = await prelogin_kdf(http, {"firm": slug, "email": email})
    signed = await http.post("/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf))
    assert signed.status_code == 201, signed.text
    required = await http.patch(
        "/api/v1/firm", json={"require_totp": True}, headers=kit.auth("admin")
    )
    assert required.status_code == 200, required.text
    after = await http.get("/api/v1/matters")  # the password-only session's cookie
    assert after.status_code == 401, after.text
