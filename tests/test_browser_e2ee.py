"""The end-to-end encrypted conversation in a real Chromium, at desktop and phone size.

The journey of docs/keys.md with no staff online: staff (here: the test, with
the library, as a staff browser would) certify the identity an invite secret
R determines, open the matter's first epoch and post the encrypted welcome;
the client opens the link ``#t=<token>&r=<R>&frk=<root fingerprint>``, sets a
password (login secret + key backup + public keys in one request), lands on
the matter, reads the decrypted welcome and replies at once. The reply is
read back with the library as staff would, and a staff member signing in
with a password sees it decrypted in the matter page. A second browser
profile signs in as the same client (the backup from the sign-in answer,
opened with the same Argon2id output) and reads everything. A message
altered on the server shows a warning instead of its content. Signing out
deletes the keys from the profile's IndexedDB.

The key directory's answers (``GET /api/v1/keys/firm`` and
``/matters/{ref}``, docs/keys.md) come from the same library-built keys.
Screenshots go to docs/screenshots/e2ee-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rtportal.db.models import Credential
from rtportal.settings import Settings
from tests import test_browser_feed as feed_test
from tests.conftest import FirmKit, MakeFirm
from tests.support.e2ee import KeyWorld, b64, tamper
from tests.support.invites import received
from tests.support.logins import firm_slug, give_password, staff_email
from tests.support.server import RunningServer
from tests.test_invites import _invite, _new_contact

pytestmark = pytest.mark.timeout(240)

browser = feed_test.browser
portal = feed_test.portal
PageWatch = feed_test.PageWatch
WAIT_MS = feed_test.WAIT_MS

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
LAYOUTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
CLIENT_PASSWORD = "seven quiet harbours"
STAFF_PASSWORD = "staple orbit lantern 42"
WELCOME = "Welcome to your matter. Reply here with any question."


async def shot(page: Any, name: str, layout: str) -> None:
    await page.screenshot(path=str(SHOTS / f"e2ee-{name}-{layout}.png"), full_page=True)


async def serve_directory(context: Any, keys: KeyWorld, user: str, ref: str) -> None:
    """The key directory's answers for ``user`` (docs/keys.md), from the library-built keys."""

    async def handle(route: Any) -> None:
        url = route.request.url.split("?")[0]
        if route.request.method != "GET":
            await route.fulfill(status=404, json={"error": {"code": "not_found", "message": "x"}})
        elif url.endswith("/api/v1/keys/firm"):
            await route.fulfill(json=keys.firm_json(user))
        elif url.endswith(f"/api/v1/keys/matters/{ref}"):
            await route.fulfill(json=keys.matter_json(user, ref))
        else:
            await route.fulfill(status=404, json={"error": {"code": "not_found", "message": "x"}})

    await context.route("**/api/v1/keys/**", handle)


async def set_backup(kit: FirmKit, kind: str, principal_id: int, backup: bytes) -> None:
    async with kit.db.write() as session:
        row = (
            await session.execute(
                select(Credential).where(
                    Credential.principal_kind == kind, Credential.principal_id == principal_id
                )
            )
        ).scalar_one()
        row.key_backup = backup


async def events_of(http: httpx.AsyncClient, kit: FirmKit) -> list[dict[str, Any]]:
    page = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("staff"))
    assert page.status_code == 200, page.text
    events: list[dict[str, Any]] = page.json()["events"]
    return events


async def post_blob(
    http: httpx.AsyncClient, kit: FirmKit, thread: str, blob: bytes, kind: str = "message"
) -> dict[str, Any]:
    body = {"kind": kind, "payload": {"thread": thread}, "blob": b64(blob)}
    if kind == "note":
        body["audience"] = "staff"
    answer = await http.post(f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth("staff"))
    assert answer.status_code == 201, answer.text
    event: dict[str, Any] = answer.json()["event"]
    return event


async def sign_in(
    page: Any, watch: PageWatch, base_url: str, slug: str, email: str, password: str
) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/?firm={slug}")
    await expect(page.locator("#signin")).to_be_visible(timeout=WAIT_MS)
    # a signed-out page first asks who it is (401): that is how it knows to show sign-in
    watch.problems[:] = [p for p in watch.problems if not p.endswith("/api/v1/me")]
    await page.locator("#signin input[name=email]").fill(email)
    await page.locator("#signin input[name=password]").fill(password)
    await page.locator("#signin button[type=submit]").click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def body_of(page: Any, seq: int, ref: str) -> Any:
    return page.locator(f"#ev-{ref}-{seq} .message-body")


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_encrypted_conversation_journey(
    browser: Any,
    portal: RunningServer,
    make_firm: MakeFirm,
    settings: Settings,
    layout: str,
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Harbour & Co")
    ref = kit.ref
    slug = await firm_slug(kit.db, kit.firm_id)
    staff = f"s{kit.staff.id}"
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=20) as http:
        contact_id = await _new_contact(http, kit)
        client = f"c{contact_id}"
        thread = f"welcome-{contact_id}"
        invite_id = await _invite(http, kit, contact_id)
        token = (await received(kit.db, invite_id)).link
        assert token is not None

        # The staff browser's part (docs/keys.md "Portal on / client invited").
        keys = KeyWorld(slug, staff)
        secret = keys.invite_client(client)
        keys.new_epoch(ref, (client,))
        welcome = await post_blob(
            http, kit, thread, keys.seal(staff, ref, thread, WELCOME, subject="Welcome")
        )
        altered = await post_blob(
            http, kit, thread, tamper(keys.seal(staff, ref, thread, "ALTERED-SECRET"))
        )

        # The client opens the link: nobody from the firm is online.
        context = await browser.new_context(**LAYOUTS[layout])
        await serve_directory(context, keys, client, ref)
        page = await context.new_page()
        watch = PageWatch(page)
        link = f"{portal.base_url}/?firm={slug}#t={token}&r={b64(secret)}&frk={keys.frk_link}"
        await page.goto(link)
        form = page.locator("#accept form")
        await form.locator("input[name=password]").fill(CLIENT_PASSWORD)
        await form.locator("input[name=confirm]").fill(CLIENT_PASSWORD)
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        # The link's secrets left the address bar before anything else.
        assert "#" not in page.url

        shown = body_of(page, welcome["seq"], ref)
        await expect(shown).to_have_attribute("data-crypto", "ok", timeout=WAIT_MS)
        await expect(shown.locator(".message-text")).to_have_text(WELCOME)
        await expect(shown.locator(".message-subject")).to_have_text("Welcome")
        # The altered message: a warning, never its content.
        bad = body_of(page, altered["seq"], ref)
        await expect(bad).to_have_attribute("data-crypto", "crypto_signature", timeout=WAIT_MS)
        await expect(bad).to_have_attribute("role", "alert")
        assert "ALTERED-SECRET" not in await page.content()
        await shot(page, "client-welcome", layout)

        # The acceptance stored the login, the key backup and the public keys.
        async with kit.db.read() as session:
            cred = (
                await session.execute(
                    select(Credential).where(
                        Credential.principal_kind == "contact",
                        Credential.principal_id == contact_id,
                    )
                )
            ).scalar_one()
        assert cred.public_keys == keys.world.ids[client].public.record()
        assert cred.key_backup is not None and b"seven" not in cred.key_backup

        # Reply at once: encrypted in the page, read back with the library as staff.
        reply_text = f"Thanks! A question from the {layout} page."
        await page.locator(f"#reply-{ref}").fill(reply_text)
        await page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        reply_item = page.locator(f"#matter-{ref} .message-body[data-sender={client}]")
        await expect(reply_item.locator(".message-text")).to_have_text(reply_text, timeout=WAIT_MS)
        stored = [e for e in await events_of(http, kit) if e["actor"]["kind"] == "contact" and e["kind"] == "message"]
        assert len(stored) == 1 and stored[0]["payload"] == {"thread": thread}
        assert reply_text not in str(stored[0])
        from rtportal import base64url

        blob = base64url.decode(stored[0]["blob"], 1 << 20)
        assert blob is not None
        sender, body = keys.open(staff, ref, thread, blob)
        assert (sender, body.text) == (client, reply_text)
        await shot(page, "client-reply", layout)
        assert watch.problems == []

        # Staff sign in with a password; the backup of the answer unlocks their keys.
        email = await staff_email(kit.db, kit.staff.id)
        kdf = await give_password(kit.db, settings, kit.staff, email, STAFF_PASSWORD)
        kdf_json = {"salt": b64(kdf.salt), "m_kib": kdf.m_kib, "t": kdf.t, "p": kdf.p}
        await set_backup(kit, "staff", kit.staff.id, keys.backup(staff, STAFF_PASSWORD, kdf_json))
        staff_context = await browser.new_context(**LAYOUTS[layout])
        await serve_directory(staff_context, keys, staff, ref)
        staff_page = await staff_context.new_page()
        staff_watch = PageWatch(staff_page)
        await sign_in(staff_page, staff_watch, portal.base_url, slug, email, STAFF_PASSWORD)
        await staff_page.goto(f"{portal.base_url}/?firm={slug}#/matter/{ref}")
        staff_reply = staff_page.locator(f"#matter-{ref} .message-body[data-sender={client}]")
        await expect(staff_reply.locator(".message-text")).to_have_text(reply_text, timeout=WAIT_MS)
        await shot(staff_page, "staff-matter", layout)
        assert staff_watch.problems == []
        await staff_context.close()

        # A second profile signs in as the same client and reads everything.
        second = await browser.new_context(**LAYOUTS[layout])
        await serve_directory(second, keys, client, ref)
        other = await second.new_page()
        other_watch = PageWatch(other)
        await sign_in(other, other_watch, portal.base_url, slug, f"mei.{kit.firm_id}@client.test", CLIENT_PASSWORD)
        await expect(body_of(other, welcome["seq"], ref).locator(".message-text")).to_have_text(
            WELCOME, timeout=WAIT_MS
        )
        await expect(
            other.locator(f"#matter-{ref} .message-body[data-sender={client}] .message-text")
        ).to_have_text(reply_text, timeout=WAIT_MS)
        await shot(other, "client-second-device", layout)

        # Signing out forgets the keys on this profile.
        await other.locator("#logout").click()
        await expect(other.locator("#signin")).to_be_visible(timeout=WAIT_MS)
        held = await other.evaluate(
            """async (who) => {
                const k = await import('/shared/keyring.js');
                return (await k.openKeyring(who)) !== null;
            }""",
            {"firm": slug, "user": client},
        )
        assert held is False
        assert other_watch.problems == []
        await second.close()
        await context.close()
