"""Staff management by org admins, and the setup link (docs/access.md "Roles")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import timedelta

import httpx
import pyotp
from sqlalchemy import select, update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtportal import base64url
from rtportal.db.models import AuditEntry, AuthToken, Firm, OutboxMessage, StaffUser, utcnow
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.logins import give_password, secret_for, signin_body
from tests.support.server import RunningServer
from tests.support.wsjson import HELLO

TIMEOUT = 10.0


def error_code(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


async def setup_token(kit: FirmKit, email: str) -> str:
    """The token of the latest setup email sent to ``email`` (from the outbox)."""
    async with kit.db.read() as session:
        body = (
            await session.execute(
                select(OutboxMessage.body)
                .where(OutboxMessage.firm_id == kit.firm_id, OutboxMessage.recipient == email)
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()
    assert body is not None
    found = re.search(r"/\?firm=[\w-]+#setup=([A-Za-z0-9_-]{43})", body)
    assert found, body
    return found.group(1)


async def audit_actions(kit: FirmKit) -> list[str]:
    async with kit.db.read() as session:
        rows = await session.execute(
            select(AuditEntry.action)
            .where(AuditEntry.firm_id == kit.firm_id)
            .order_by(AuditEntry.firm_seq)
        )
        return list(rows.scalars())


async def test_only_org_admins_manage_staff_and_only_their_own(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit, other = await make_firm(), await make_firm()
    calls = [
        ("GET", "/api/v1/staff", None),
        ("POST", "/api/v1/staff", {"email": "x@firm.test", "name": "X", "role": "staff"}),
        ("PATCH", f"/api/v1/staff/{kit.staff.id}", {"role": "matter_admin"}),
        ("POST", f"/api/v1/staff/{kit.staff.id}/resend-setup", None),
    ]
    for who in ("staff", "contact", "bot"):
        for method, url, body in calls:
            r = await http.request(method, url, json=body, headers=kit.auth(who))
            expected = (403, "forbidden") if who == "staff" else (404, "not_found")
            assert (r.status_code, error_code(r)) == expected, (who, url, r.text)
    # Another firm's admin: the member does not exist for them.
    for method, url, body in calls[2:]:
        r = await http.request(method, url, json=body, headers=other.auth("admin"))
        assert r.status_code == 404 and error_code(r) == "not_found", (url, r.text)
    listed = (await http.get("/api/v1/staff", headers=other.auth("admin"))).json()["staff"]
    assert kit.staff.id not in {s["id"] for s in listed}
    mine = (await http.get("/api/v1/staff", headers=kit.auth("admin"))).json()["staff"]
    assert {s["id"] for s in mine} == {kit.admin.id, kit.staff.id}  # no bots
    for bad in ("abc", "99999999999", kit.bot.id):
        r = await http.patch(f"/api/v1/staff/{bad}", json={}, headers=kit.auth("admin"))
        assert r.status_code == 404, r.text


async def test_a_setup_link_works_once(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    email = "new.person@firm.test"
    invited = await http.post(
        "/api/v1/staff",
        json={"email": email, "name": "New Person", "role": "matter_admin"},
        headers=kit.auth("admin"),
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["staff"]["status"] == "invited"
    again = await http.post(
        "/api/v1/staff",
        json={"email": email.upper(), "name": "Twice", "role": "staff"},
        headers=kit.auth("admin"),
    )
    assert again.status_code == 409 and error_code(again) == "conflict"
    bad_role = await http.post(
        "/api/v1/staff",
        json={"email": "b@firm.test", "name": "B", "role": "bot"},
        headers=kit.auth("admin"),
    )
    assert bad_role.status_code == 400
    token = await setup_token(kit, email)
    opened = await http.post("/api/v1/setup/open", json={"token": token})
    assert opened.status_code == 200, opened.text
    page = opened.json()
    assert page["email"] == email and page["name"] == "New Person"
    assert page["firm"]["name"] == kit.name
    kdf = page["kdf"]
    weak = {**kdf, "t": 0}
    body = {"token": token, "kdf": weak, "login_secret": secret_for("pw one", kdf)}
    assert (await http.post("/api/v1/setup/accept", json=body)).status_code == 400
    body["kdf"] = kdf
    accepted = await http.post("/api/v1/setup/accept", json=body)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["principal"]["role"] == "matter_admin"
    assert "csrf_token" in accepted.json()
    http.cookies.clear()
    for path in ("/api/v1/setup/accept", "/api/v1/setup/open"):
        used = await http.post(path, json=body)
        assert used.status_code == 400 and error_code(used) == "invalid_link", used.text
    # The password works for sign-in.
    slug = page["firm"]["slug"]
    prelogin = await http.post("/api/v1/prelogin", json={"firm": slug, "email": email})
    assert prelogin.json()["kdf"] == kdf
    signin = await http.post(
        "/api/v1/signin",
        json={"firm": slug, "email": email, "login_secret": secret_for("pw one", kdf)},
    )
    assert signin.status_code == 201, signin.text
    # Not invited any more: no resend.
    user_id = invited.json()["staff"]["id"]
    resend = await http.post(f"/api/v1/staff/{user_id}/resend-setup", headers=kit.auth("admin"))
    assert (
        resend.status_code == 422 and resend.json()["error"]["details"]["reason"] == "not_invited"
    )
    assert "staff.invited" in await audit_actions(kit)


async def test_resent_and_expired_setup_links_fail(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    email = "late@firm.test"
    invited = await http.post(
        "/api/v1/staff",
        json={"email": email, "name": "Late", "role": "staff"},
        headers=kit.auth("admin"),
    )
    user_id = invited.json()["staff"]["id"]
    first = await setup_token(kit, email)
    resent = await http.post(f"/api/v1/staff/{user_id}/resend-setup", headers=kit.auth("admin"))
    assert resent.status_code == 200, resent.text
    second = await setup_token(kit, email)
    assert second != first
    old = await http.post("/api/v1/setup/open", json={"token": first})
    assert old.status_code == 400 and error_code(old) == "invalid_link"
    # A setup link is not a bearer token, nor exchangeable for a session.
    assert (
        await http.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    ).status_code == 401
    assert (await http.post("/api/v1/session", json={"token": second})).status_code == 401
    async with kit.db.write() as session:
        await session.execute(
            update(AuthToken)
            .where(AuthToken.kind == "setup", AuthToken.principal_id == user_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await http.post("/api/v1/setup/open", json={"token": second})
    assert expired.status_code == 400 and error_code(expired) == "invalid_link"
    for junk in (None, 5, "", "x" * 1000):
        r = await http.post("/api/v1/setup/open", json={"token": junk})
        assert r.status_code == 400 and error_code(r) == "invalid_link"


async def test_the_last_org_admin_stays(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    admin = kit.auth("admin")
    for change in ({"role": "staff"}, {"status": "disabled"}):
        r = await http.patch(f"/api/v1/staff/{kit.admin.id}", json=change, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["reason"] == "last_org_admin"
    for junk in ({"role": "emperor"}, {"status": "invited"}, {"name": "x"}, {"role": 5}):
        r = await http.patch(f"/api/v1/staff/{kit.staff.id}", json=junk, headers=admin)
        assert r.status_code == 400, (junk, r.text)
    promoted = await http.patch(
        f"/api/v1/staff/{kit.staff.id}", json={"role": "org_admin"}, headers=admin
    )
    assert promoted.status_code == 200 and promoted.json()["staff"]["role"] == "org_admin"
    demoted = await http.patch(
        f"/api/v1/staff/{kit.admin.id}", json={"role": "staff"}, headers=admin
    )
    assert demoted.status_code == 200, demoted.text
    # The demoted admin's next request is a plain staff member's.
    r = await http.get("/api/v1/staff", headers=admin)
    assert r.status_code == 403
    assert (await audit_actions(kit)).count("role.changed") == 2


async def open_socket(server: RunningServer, token: str) -> ClientConnection:
    ws = await connect(
        server.ws_url,
        additional_headers=[("Authorization", f"Bearer {token}")],
        proxy=None,
        open_timeout=TIMEOUT,
    )
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert hello["type"] == "hello", hello
    await ws.send(HELLO)
    return ws


async def closed_with(ws: ClientConnection) -> int | None:
    async def drain() -> int | None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
        return ws.close_code

    return await asyncio.wait_for(drain(), TIMEOUT)


async def test_disabling_closes_their_live_websocket(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    ws = await open_socket(uvicorn_server, kit.tokens["staff"])
    other = await open_socket(uvicorn_server, kit.tokens["admin"])
    try:
        async with httpx.AsyncClient(base_url=uvicorn_server.base_url, trust_env=False) as http:
            r = await http.patch(
                f"/api/v1/staff/{kit.staff.id}",
                json={"status": "disabled"},
                headers=kit.auth("admin"),
            )
            assert r.status_code == 200 and r.json()["staff"]["status"] == "disabled"
            assert await closed_with(ws) == 4010
            assert (await http.get("/api/v1/me", headers=kit.auth("staff"))).status_code == 401
            await other.send(json.dumps({"type": "ping", "id": "p"}))
            assert json.loads(await asyncio.wait_for(other.recv(), TIMEOUT))["type"] == "pong"
            enabled = await http.patch(
                f"/api/v1/staff/{kit.staff.id}",
                json={"status": "active"},
                headers=kit.auth("admin"),
            )
            assert enabled.json()["staff"]["status"] == "active"
            # Their old tokens stay revoked.
            assert (await http.get("/api/v1/me", headers=kit.auth("staff"))).status_code == 401
    finally:
        await ws.close()
        await other.close()
    async with kit.db.read() as session:
        user = await session.get(StaffUser, kit.staff.id)
        assert user is not None and user.status == "active"
    actions = await audit_actions(kit)
    assert "staff.disabled" in actions and "sessions.revoked" in actions


async def test_concurrent_accepts_of_one_setup_link_make_one_session(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    email = "racer@firm.test"
    invited = await http.post(
        "/api/v1/staff",
        json={"email": email, "name": "Racer", "role": "staff"},
        headers=kit.auth("admin"),
    )
    assert invited.status_code == 201, invited.text
    token = await setup_token(kit, email)
    kdf = (await http.post("/api/v1/setup/open", json={"token": token})).json()["kdf"]
    body = {"token": token, "kdf": kdf, "login_secret": secret_for("racing pw", kdf)}
    answers = await asyncio.gather(
        *(http.post("/api/v1/setup/accept", json=body) for _ in range(10))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [400] * 9, [a.text for a in answers]
    assert all(error_code(a) == "invalid_link" for a in answers if a.status_code == 400)
    async with kit.db.read() as session:
        sessions = await session.execute(
            select(AuthToken.id).where(
                AuthToken.kind == "session",
                AuthToken.principal_id == invited.json()["staff"]["id"],
                AuthToken.principal_kind == "staff",
            )
        )
        assert len(sessions.all()) == 1


async def test_a_password_change_closes_the_other_sessions_websockets(
    uvicorn_server: RunningServer, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    async with kit.db.read() as session:
        user = await session.get(StaffUser, kit.staff.id)
        assert user is not None
        email = user.email
    kdf = (await give_password(kit.db, settings, kit.staff, email, "first password")).to_json()
    other_device = await open_socket(uvicorn_server, kit.tokens["staff"])
    try:
        async with httpx.AsyncClient(base_url=uvicorn_server.base_url, trust_env=False) as http:
            slug = (await http.get("/api/v1/me", headers=kit.auth("staff"))).json()["firm"]["slug"]
            signed = await http.post(
                "/api/v1/signin", json=signin_body(slug, email, "first password", kdf)
            )
            assert signed.status_code == 201, signed.text
            new_kdf = {**kdf, "salt": base64url.encode(b"k" * 16)}
            changed = await http.post(
                "/api/v1/me/password",
                json={
                    "current_login_secret": secret_for("first password", kdf),
                    "kdf": new_kdf,
                    "login_secret": secret_for("second password", new_kdf),
                },
                headers={"X-CSRF-Token": signed.json()["csrf_token"]},
            )
            assert changed.status_code == 200, changed.text
            assert await closed_with(other_device) == 4010
            assert (await http.get("/api/v1/me")).status_code == 200  # this session stays
    finally:
        await other_device.close()


async def test_an_invited_org_admin_enrols_an_authenticator_before_any_session(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """Setup sets the password but makes no session for a role that needs a second
    factor; the first sign-in enrols it, and only a sign-in with a code gets in."""
    kit = await make_firm()
    email = "second.admin@firm.test"
    invited = await http.post(
        "/api/v1/staff",
        json={"email": email, "name": "Second Admin", "role": "org_admin"},
        headers=kit.auth("admin"),
    )
    assert invited.status_code == 201, invited.text
    token = await setup_token(kit, email)
    page = (await http.post("/api/v1/setup/open", json={"token": token})).json()
    kdf, slug = page["kdf"], page["firm"]["slug"]
    accepted = await http.post(
        "/api/v1/setup/accept",
        json={"token": token, "kdf": kdf, "login_secret": secret_for("pw admin", kdf)},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"password_set": True, "second_factor_required": True}
    assert not http.cookies  # no session
    body = signin_body(slug, email, "pw admin", kdf)
    refused = await http.post("/api/v1/signin", json=body)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "second_factor_required"
    assert refused.json()["error"]["details"]["enrol"] is True
    setup = await http.post("/api/v1/signin", json={**body, "totp_setup": True})
    assert setup.status_code == 200 and not http.cookies, setup.text
    # The key is emailed (the mailbox proves the person), never in the answer.
    assert setup.json() == {"totp_setup": {"emailed": True}}
    async with kit.db.read() as session:
        mail = (
            await session.execute(
                select(OutboxMessage.body)
                .where(OutboxMessage.recipient == email)
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()
    found = re.search(r"Key: ([A-Z2-7]+)", mail or "")
    assert found, mail
    secret = found.group(1)
    signed = await http.post("/api/v1/signin", json={**body, "totp": pyotp.TOTP(secret).now()})
    assert signed.status_code == 201, signed.text
    assert signed.json()["principal"]["role"] == "org_admin"
    assert len(signed.json()["recovery_codes"]) == 10


async def test_org_admins_set_the_firms_second_factor_and_access_expiry(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    got = await http.get("/api/v1/firm", headers=kit.auth("admin"))
    assert got.status_code == 200 and got.json()["firm"]["require_totp"] is False
    patched = await http.patch(
        "/api/v1/firm",
        json={"require_totp": True, "invite_expiry_days": 90},
        headers=kit.auth("admin"),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["firm"]["invite_expiry_days"] == 90
    for bad in ({"require_totp": "yes"}, {"invite_expiry_days": 0}, {"colour": "red"}):
        r = await http.patch("/api/v1/firm", json=bad, headers=kit.auth("admin"))
        assert r.status_code == 400 and error_code(r) == "bad_request", bad
    # The plain staff member has no second factor: requiring one revoked their token.
    for who, expected in (("staff", 401), ("contact", 404), ("bot", 404)):
        r = await http.patch("/api/v1/firm", json={"require_totp": False}, headers=kit.auth(who))
        assert r.status_code == expected, (who, r.text)
    assert "firm.settings_changed" in await audit_actions(kit)
    # Now every staff member needs a second factor: a plain staff member's sign-in asks for it.
    async with kit.db.read() as session:
        slug = (await session.execute(select(Firm.slug).where(Firm.id == kit.firm_id))).scalar()
    assert slug is not None
    email = "plain.staff@firm.test"
    async with kit.db.write() as session:
        await session.execute(
            update(StaffUser).where(StaffUser.id == kit.staff.id).values(email=email)
        )
    kdf = await give_password(kit.db, settings, kit.staff, email, "pw staff")
    r = await http.post("/api/v1/signin", json=signin_body(slug, email, "pw staff", kdf.to_json()))
    assert r.status_code == 401 and error_code(r) == "second_factor_required", r.text


async def test_a_staff_invitation_goes_to_one_mailbox(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A list of addresses, a display name or a bare word is refused: the setup
    link (a credential) never goes to two people, and nothing is written."""
    kit = await make_firm()
    for address in ("a@x.test, b@y.test", "Eve <eve@x.test>", "a@x.test;b@y.test", "nobody"):
        r = await http.post(
            "/api/v1/staff",
            json={"email": address, "name": "Two", "role": "staff"},
            headers=kit.auth("admin"),
        )
        assert r.status_code == 400 and error_code(r) == "bad_request", (address, r.text)
    async with kit.db.read() as session:
        sent = await session.execute(
            select(OutboxMessage.id).where(OutboxMessage.firm_id == kit.firm_id)
        )
        assert sent.first() is None
