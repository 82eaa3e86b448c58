"""Password sign-in: prelogin, signin, /me, change password (docs/access.md)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import extract_parameters
from sqlalchemy import select
from starlette.applications import Starlette

from rtportal import base64url
from rtportal.access import passwords
from rtportal.access.credentials import credential_of
from rtportal.app import create_app
from rtportal.db.models import AuditEntry, Firm, Invite, StaffUser
from rtportal.demo import format_demo, seed_demo
from rtportal.settings import Settings
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.logins import give_password, secret_for, signin_body

PASSWORD = "correct horse battery staple"


async def slug_of(kit: FirmKit) -> str:
    async with kit.db.read() as session:
        firm = await session.get(Firm, kit.firm_id)
        assert firm is not None
        return firm.slug


async def staff_email(kit: FirmKit, user_id: int) -> str:
    async with kit.db.read() as session:
        user = await session.get(StaffUser, user_id)
        assert user is not None
        return user.email


async def actions(kit: FirmKit) -> list[tuple[str, dict[str, object]]]:
    async with kit.db.read() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.firm_id == kit.firm_id)
            .order_by(AuditEntry.firm_seq)
        )
        return [(action, json.loads(detail)) for action, detail in rows]


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    return await make_firm()


async def test_prelogin_has_the_same_shape_for_known_and_unknown_emails(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings
) -> None:
    slug = await slug_of(kit)
    email = await staff_email(kit, kit.staff.id)
    kdf = await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    known = await http.post("/api/v1/prelogin", json={"firm": slug, "email": email.upper()})
    assert known.status_code == 200, known.text
    assert known.json() == {"kdf": kdf.to_json()}
    for firm, who in ((slug, "nobody@firm.test"), ("no-such-firm", email)):
        first = await http.post("/api/v1/prelogin", json={"firm": firm, "email": who})
        again = await http.post("/api/v1/prelogin", json={"firm": firm, "email": who})
        assert first.status_code == 200
        assert first.json() == again.json()  # stable: a repeat tells nothing
        fake = first.json()["kdf"]
        assert set(fake) == set(known.json()["kdf"])
        assert {k: fake[k] for k in ("alg", "m_kib", "t", "p")} == {
            k: known.json()["kdf"][k] for k in ("alg", "m_kib", "t", "p")
        }
        assert len(base64url.decode(fake["salt"], 16) or b"") == 16
        assert fake["salt"] != known.json()["kdf"]["salt"]
    bad = await http.post("/api/v1/prelogin", json={"firm": slug})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


async def test_staff_sign_in_gives_a_session_with_a_csrf_token(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings
) -> None:
    slug = await slug_of(kit)
    email = await staff_email(kit, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD, key_backup=b"sealed")
    kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()
    r = await http.post("/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf["kdf"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["principal"]["id"] == kit.staff.id and body["principal"]["role"] == "staff"
    assert body["key_backup"] == base64url.encode(b"sealed") and body["public_keys"] is None
    assert "recovery_codes" not in body
    assert "rtp_session=" in r.headers["set-cookie"]
    me = await http.get("/api/v1/me")
    assert me.json()["csrf_token"] == body["csrf_token"]
    assert me.json()["firm"] == {"name": kit.name, "slug": slug}
    # The cookie writes only with the token.
    url = f"/api/v1/matters/{kit.ref}/events"
    no_token = await http.post(url, json={"kind": "message"}, headers={"Origin": TEST_ORIGIN})
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_failed"
    written = await http.post(
        url,
        json={
            "kind": "message",
            "client_id": "w",
            "payload": {"thread": "w", "to": [kit.contact.id]},
        },
        headers={"Origin": TEST_ORIGIN, "X-CSRF-Token": body["csrf_token"]},
    )
    assert written.status_code == 201, written.text
    assert ("signin.ok", {}) in await actions(kit)


async def test_every_refusal_is_the_same_answer(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings, make_firm: MakeFirm
) -> None:
    await make_firm()  # a second firm: a sign-in must name its firm
    slug = await slug_of(kit)
    staff = await staff_email(kit, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, staff, PASSWORD)
    contact_email = "cleo@client.test"
    await give_password(kit.db, settings, kit.contact, contact_email, PASSWORD)
    kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": staff})).json()["kdf"]

    async def attempt(email: str, password: str = PASSWORD) -> httpx.Response:
        prelogin = await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})
        return await http.post(
            "/api/v1/signin", json=signin_body(slug, email, password, prelogin.json()["kdf"])
        )

    answers = {
        "wrong password": await attempt(staff, "not the password"),
        "unknown email": await attempt("nobody@firm.test"),
        # A contact signs in only with an active invite; this one has none.
        "contact without an active invite": await attempt(contact_email),
        "unknown firm": await http.post(
            "/api/v1/signin", json=signin_body("no-such-firm", staff, PASSWORD, kdf)
        ),
        "no firm named": await http.post(
            "/api/v1/signin", json={**signin_body("", staff, PASSWORD, kdf), "firm": None}
        ),
    }
    async with kit.db.write() as session:
        user = await session.get(StaffUser, kit.staff.id)
        assert user is not None
        user.status = "disabled"
    answers["disabled staff"] = await attempt(staff)
    first = answers["wrong password"]
    assert first.status_code == 401 and first.json()["error"]["code"] == "invalid_credentials"
    for why, answer in answers.items():
        assert answer.status_code == 401, why
        assert answer.content == first.content, why
        assert "set-cookie" not in answer.headers, why
    failed = [d for a, d in await actions(kit) if a == "signin.failed"]
    assert {d["email"] for d in failed} == {staff, "nobody@firm.test", contact_email}
    # The contact with an active invite gets in.
    async with kit.db.write() as session:
        session.add(
            Invite(
                firm_id=kit.firm_id,
                matter_id=kit.matter.id,
                contact_id=kit.contact.id,
                method="email",
                status="active",
                subject="Welcome",
                body="Welcome",
            )
        )
    admitted = await attempt(contact_email)
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["principal"]["kind"] == "contact"


async def test_sign_in_is_rate_limited_per_account(settings: Settings, make_firm: MakeFirm) -> None:
    limited = dataclasses.replace(settings, signin_account_limit=3)
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        kit = await make_firm()
        slug = await slug_of(kit)
        email = await staff_email(kit, kit.staff.id)
        await give_password(kit.db, settings, kit.staff, email, PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()
            wrong = signin_body(slug, email, "guess", kdf["kdf"])
            codes = [(await http.post("/api/v1/signin", json=wrong)).status_code for _ in range(3)]
            assert codes == [401, 401, 401]
            refused = await http.post(
                "/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf["kdf"])
            )
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1


async def test_a_changed_hash_cost_rehashes_at_sign_in(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    slug = await slug_of(kit)
    email = await staff_email(kit, kit.staff.id)
    passwords.configure(settings)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    stronger = dataclasses.replace(settings, login_hash_time_cost=settings.login_hash_time_cost + 1)
    app = create_app(stronger)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()
            body = signin_body(slug, email, PASSWORD, kdf["kdf"])
            assert (await http.post("/api/v1/signin", json=body)).status_code == 201
    async with kit.db.read() as session:
        row = await credential_of(session, "staff", kit.staff.id)
        assert row is not None and row.verifier is not None
        assert extract_parameters(row.verifier).time_cost == stronger.login_hash_time_cost
    passwords.configure(settings)


@pytest.fixture
async def signed_in(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings
) -> AsyncIterator[tuple[str, str, dict[str, object]]]:
    """The staff member signed in: (email, csrf token, prelogin kdf)."""
    slug = await slug_of(kit)
    email = await staff_email(kit, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()["kdf"]
    r = await http.post("/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf))
    assert r.status_code == 201, r.text
    yield email, r.json()["csrf_token"], kdf


async def test_change_password_ends_the_other_sessions(
    app: Starlette,
    http: httpx.AsyncClient,
    kit: FirmKit,
    settings: Settings,
    signed_in: tuple[str, str, dict[str, object]],
) -> None:
    email, csrf, kdf = signed_in
    slug = await slug_of(kit)
    new_kdf = {**kdf, "salt": base64url.encode(b"n" * 16)}
    headers = {"Origin": TEST_ORIGIN, "X-CSRF-Token": csrf}
    change = {
        "current_login_secret": secret_for("not it", kdf),
        "kdf": new_kdf,
        "login_secret": secret_for("a new password", new_kdf),
    }
    wrong = await http.post("/api/v1/me/password", json=change, headers=headers)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    weak = {**change, "kdf": {**new_kdf, "m_kib": settings.login_kdf_min_m_kib - 1}}
    weak["current_login_secret"] = secret_for(PASSWORD, kdf)
    refused = await http.post("/api/v1/me/password", json=weak, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["reason"] == "weak_kdf_params"
    huge = {**weak, "kdf": {**new_kdf, "m_kib": 10**7}}
    assert (await http.post("/api/v1/me/password", json=huge, headers=headers)).status_code == 400
    change["current_login_secret"] = secret_for(PASSWORD, kdf)
    done = await http.post("/api/v1/me/password", json=change, headers=headers)
    assert done.status_code == 200, done.text
    # The kit's API token of this staff member is another session: ended.
    assert done.json()["sessions_revoked"] >= 1
    assert (await http.get("/api/v1/me", headers=kit.auth("staff"))).status_code == 401
    assert (await http.get("/api/v1/me")).status_code == 200  # this session stays
    old = await http.post("/api/v1/signin", json=signin_body(slug, email, PASSWORD, kdf))
    assert old.status_code == 401
    prelogin = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()
    assert prelogin["kdf"] == new_kdf
    new = await http.post(
        "/api/v1/signin", json=signin_body(slug, email, "a new password", new_kdf)
    )
    assert new.status_code == 201, new.text
    assert "password.changed" in [a for a, _ in await actions(kit)]


async def test_the_demo_staff_sign_in_with_the_printed_password(
    app: Starlette, http: httpx.AsyncClient, settings: Settings
) -> None:
    users = await seed_demo(app.state.db, settings)
    again = await seed_demo(app.state.db, settings)  # idempotent: the same password
    text = format_demo(again, settings.public_url)
    lines = re.findall(r"staff sign-in: \S+/\?firm=([\w-]+) (\S+) / (\S+)", text)
    assert {email for _, email, _ in lines} == {
        "olivia@harbourfinch.example",
        "sam@harbourfinch.example",
    }
    assert len(users) == len(again)
    slug, email, password = next(line for line in lines if line[1].startswith("sam@"))
    kdf = (await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})).json()
    r = await http.post("/api/v1/signin", json=signin_body(slug, email, password, kdf["kdf"]))
    assert r.status_code == 201, r.text
    assert r.json()["principal"]["name"] == "Sam Finch"


async def test_sign_in_is_rate_limited_per_address(settings: Settings, make_firm: MakeFirm) -> None:
    limited = dataclasses.replace(settings, signin_address_limit=4)
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        kit = await make_firm()
        slug = await slug_of(kit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            kdf = await http.post("/api/v1/prelogin", json={"firm": slug, "email": "a@x.test"})
            answers = [
                await http.post(
                    "/api/v1/signin",
                    json=signin_body(slug, f"guess{i}@x.test", "pw", kdf.json()["kdf"]),
                )
                for i in range(6)
            ]
            assert [a.status_code for a in answers] == [401] * 4 + [429] * 2


async def test_sign_in_and_setup_refuse_a_foreign_origin(http: httpx.AsyncClient) -> None:
    """Login CSRF: a foreign page cannot sign a visitor in to an account of its choosing
    (before anything is looked up: the same answer for any body)."""
    evil = {"Origin": "https://evil.example"}
    for path in ("/api/v1/signin", "/api/v1/setup/accept", "/api/v1/invites/accept"):
        r = await http.post(path, json={}, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_origin", path
