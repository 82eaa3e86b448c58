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

Every key record goes through the real key directory (``/api/v1/keys/…``,
docs/keys.md): the org admin's firm set-up, the invite round's ``crypto``
object, the approval of a second staff member. Screenshots go to
docs/screenshots/e2ee-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rtportal import base64url
from rtportal.access.removal import end_membership
from rtportal.base64url import decode as b64decode
from rtportal.crypto.backup import Argon2Params, derive_password_keys
from rtportal.crypto.envelope import Envelope
from rtportal.crypto.keys import fingerprint_text
from rtportal.crypto.manifest import Manifest
from rtportal.db.models import Credential, Event, OutboxMessage
from rtportal.settings import Settings
from tests import test_browser_feed as feed_test
from tests.conftest import FirmKit, MakeFirm
from tests.support.browserfirm import accept_link
from tests.support.keyfirm import KeyFirm, b64, key_firm, real_now_ms, tamper
from tests.support.logins import firm_slug, give_password, staff_email
from tests.support.server import RunningServer
from tests.support.threadpage import client_at, item_body
from tests.test_invites import _new_contact

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
NEW_CLIENT_PASSWORD = "eight loud lighthouses"
STAFF_PASSWORD = "staple orbit lantern 42"
WELCOME = "Welcome to your matter. Reply here with any question."


def api_client(portal: RunningServer) -> httpx.AsyncClient:
    """The test's own HTTP client; no kept-alive connections: the server closes idle ones
    while the browser works, and a reused closed one fails the next call."""
    return httpx.AsyncClient(
        base_url=portal.base_url, timeout=20, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def shot(page: Any, name: str, layout: str) -> None:
    await page.screenshot(path=str(SHOTS / f"e2ee-{name}-{layout}.png"), full_page=True)


async def alter_blob(kit: FirmKit, seq: int) -> None:
    """Flip one bit of a stored envelope, as a malicious server (or its database) could."""
    async with kit.db.write() as session:
        event = (
            await session.execute(
                select(Event).where(Event.matter_id == kit.matter.id, Event.seq == seq)
            )
        ).scalar_one()
        assert event.blob is not None
        event.blob = tamper(event.blob)


async def events_of(
    http: httpx.AsyncClient, kit: FirmKit, kind: str | None = None
) -> list[dict[str, Any]]:
    page = await http.get(f"/api/v1/matters/{kit.ref}/events", headers=kit.auth("staff"))
    assert page.status_code == 200, page.text
    events: list[dict[str, Any]] = page.json()["events"]
    return [e for e in events if kind is None or e["kind"] == kind]


async def portal_link(kit: FirmKit) -> str:
    """The end-to-end invite link of the newest email in the outbox (portal delivery)."""
    async with kit.db.read() as session:
        bodies = (
            await session.execute(
                select(OutboxMessage.body)
                .where(OutboxMessage.firm_id == kit.firm_id)
                .order_by(OutboxMessage.id.desc())
            )
        ).scalars()
        for body in bodies:
            found = re.search(r"https?://\S+#t=[A-Za-z0-9_=&-]+", body or "")
            if found:
                return found.group(0)
    raise AssertionError("no end-to-end invite link in the outbox")


async def post_blob(
    http: httpx.AsyncClient, kit: FirmKit, thread: str, blob: bytes, *, who: str = "staff"
) -> dict[str, Any]:
    # the item id's client part is the envelope's msg_id, as a page sends it (readers
    # check an item's id against its envelope: docs/threads.md "Ids")
    msg_id = base64url.encode(Envelope.decode(blob).header.msg_id)
    body = {
        "kind": "message",
        "payload": {"thread": thread},
        "blob": b64(blob),
        "client_id": msg_id,
    }
    answer = await http.post(f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who))
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


async def e2ee_firm(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings
) -> tuple[KeyFirm, str]:
    """A firm set up for end-to-end encryption by its org admin (``kit.admin``)."""
    slug = await firm_slug(kit.db, kit.firm_id)
    admin_email = await staff_email(kit.db, kit.admin.id)
    kdf = await give_password(kit.db, settings, kit.admin, admin_email, STAFF_PASSWORD)
    params = Argon2Params(kdf.m_kib, kdf.t, kdf.p)
    secret = derive_password_keys(STAFF_PASSWORD, kdf.salt, params).login_secret
    keys = await key_firm(kit, http, set_up=False, now_ms=real_now_ms())
    await keys.set_up_by_admin(secret)
    return keys, slug


async def invite_round(
    http: httpx.AsyncClient, kit: FirmKit, keys: KeyFirm, contact_id: int, delivery: str
) -> tuple[bytes, str]:
    """The staff browser's invite round (docs/keys.md): R, the client's certificate, the
    first epoch and the encrypted welcome. Returns R and (own mail) the link token."""
    secret = keys.invite_client(f"c{contact_id}")
    body = {
        "invites": [{"contact_id": contact_id, "method": "email", "see_applicants": True}],
        "crypto": keys.round_crypto(contact_id, WELCOME, delivery),
    }
    answer = await http.post(
        f"/api/v1/matters/{kit.ref}/invites", json=body, headers=kit.auth("admin")
    )
    assert answer.status_code == 201, answer.text
    if delivery != "own_mail":
        return secret, ""  # the portal sent the link (see portal_link)
    (link,) = answer.json()["links"]
    token: str = link["token"]
    return secret, token


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
    async with api_client(portal) as http:
        keys, slug = await e2ee_firm(http, kit, settings)
        admin = keys.admin
        contact_id = await _new_contact(http, kit)
        client = f"c{contact_id}"
        thread = f"welcome-{contact_id}"
        # The staff browser's part (docs/keys.md "Portal on / client invited"): own mail.
        secret, token = await invite_round(http, kit, keys, contact_id, "own_mail")
        welcome = next(e for e in await events_of(http, kit) if e["kind"] == "welcome")
        # A message the server altered after it was stored (a malicious server).
        altered = await post_blob(
            http, kit, thread, keys.seal_body(admin, thread, "ALTERED-SECRET"), who="admin"
        )
        await alter_blob(kit, altered["seq"])

        # The client opens the link: nobody from the firm is online.
        context = await browser.new_context(**LAYOUTS[layout])
        page = await context.new_page()
        watch = PageWatch(page)
        frk = keys.world.frk.public.link
        link = f"{portal.base_url}/?firm={slug}#t={token}&r={b64(secret)}&frk={frk}"
        await accept_link(page, link, CLIENT_PASSWORD)
        # The link's secrets left the address bar before anything else.
        assert "#" not in page.url

        shown = item_body(page, ref, client_at(portal, kit.matter.id, welcome["seq"]))
        await expect(shown).to_have_attribute("data-crypto", "ok", timeout=WAIT_MS)
        await expect(shown.locator(".message-text")).to_have_text(WELCOME)
        await expect(shown.locator(".message-subject")).to_have_text("Welcome")
        # The altered message: a warning, never its content.
        bad = item_body(page, ref, client_at(portal, kit.matter.id, altered["seq"]))
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
        await page.locator(f"#thread-text-{ref}").fill(reply_text)
        await page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        reply_item = page.locator(f"#matter-{ref} .message-body[data-sender={client}]")
        await expect(reply_item.locator(".message-text")).to_have_text(reply_text, timeout=WAIT_MS)
        stored = [
            e
            for e in await events_of(http, kit)
            if e["actor"]["kind"] == "contact" and e["kind"] == "message"
        ]
        assert len(stored) == 1 and stored[0]["payload"]["thread"] == thread
        assert reply_text not in str(stored[0])
        from rtportal import base64url

        blob = base64url.decode(stored[0]["blob"], 1 << 20)
        assert blob is not None
        sender, body = keys.open(admin, thread, blob)
        assert (sender, body.text) == (client, reply_text)
        await shot(page, "client-reply", layout)
        assert watch.problems == []

        # A staff member's first sign-in: the page makes their identity and backup and
        # registers it (PUT /keys/me); they wait for approval, the admin approves, and
        # the matter page shows the client's reply decrypted.
        email = await staff_email(kit.db, kit.staff.id)
        await give_password(kit.db, settings, kit.staff, email, STAFF_PASSWORD)
        staff_context = await browser.new_context(**LAYOUTS[layout])
        staff_page = await staff_context.new_page()
        staff_watch = PageWatch(staff_page)
        await sign_in(staff_page, staff_watch, portal.base_url, slug, email, STAFF_PASSWORD)
        await staff_page.goto(f"{portal.base_url}/?firm={slug}#/matter/{ref}")
        await expect(staff_page.locator(f"#write-state-{ref}")).to_contain_text(
            "waiting for approval", timeout=WAIT_MS
        )
        await expect(staff_page.locator(f"#matter-{ref} li.item").first).to_be_visible()
        await shot(staff_page, "staff-waiting", layout)
        assert await keys.approve_pending() == [f"s{kit.staff.id}"]
        await staff_page.reload()
        staff_reply = staff_page.locator(f"#matter-{ref} .message-body[data-sender={client}]")
        await expect(staff_reply.locator(".message-text")).to_have_text(reply_text, timeout=WAIT_MS)
        await expect(
            item_body(staff_page, ref, welcome["seq"]).locator(".message-text")
        ).to_have_text(WELCOME)
        # Staff write an internal note (vis 1, under the firm internal key) and a reply.
        await staff_page.locator(f"#thread-text-{ref}").fill("NOTE: check the visa dates")
        await staff_page.locator(f"#thread-note-{ref}").check()
        await staff_page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        note = staff_page.locator(f"#matter-{ref} .message-body.internal .message-text")
        await expect(note).to_have_text("NOTE: check the visa dates", timeout=WAIT_MS)
        await shot(staff_page, "staff-matter", layout)
        assert staff_watch.problems == []
        await staff_context.close()

        # The client changes the password: the key backup is encrypted again under the
        # new one (the server could not do that: it never sees either password).
        await page.locator("#account").click()
        change = page.locator("#change-password")
        await change.locator("input[name=current]").fill(CLIENT_PASSWORD)
        await change.locator("input[name=new]").fill(NEW_CLIENT_PASSWORD)
        await change.locator("input[name=again]").fill(NEW_CLIENT_PASSWORD)
        await change.locator("button[type=submit]").click()
        await expect(change).to_contain_text("Your password was changed.", timeout=WAIT_MS)
        await expect(page.locator("#keys-panel .my-fingerprint")).to_have_text(
            fingerprint_text(keys.world.ids[client].public.fingerprint)
        )
        await shot(page, "client-account", layout)

        # A second profile signs in as the same client (new password) and reads everything.
        second = await browser.new_context(**LAYOUTS[layout])
        other = await second.new_page()
        other_watch = PageWatch(other)
        await sign_in(
            other,
            other_watch,
            portal.base_url,
            slug,
            f"mei.{kit.firm_id}@client.test",
            NEW_CLIENT_PASSWORD,
        )
        await expect(
            item_body(other, ref, client_at(portal, kit.matter.id, welcome["seq"])).locator(
                ".message-text"
            )
        ).to_have_text(WELCOME, timeout=WAIT_MS)
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

        # The client leaves without the next epoch (no staff browser was there, or an
        # access expiry): the server refuses writes under the old epoch (409 stale_epoch,
        # rekey_required) and the staff page posts the next epoch without them, then
        # its message.
        async with kit.db.write() as session:
            await end_membership(session, kit.matter.id, "contact", contact_id)
        before = (await http.get(f"/api/v1/keys/matters/{ref}", headers=kit.auth("admin"))).json()
        again = await browser.new_context(**LAYOUTS[layout])
        staff_page = await again.new_page()
        staff_watch = PageWatch(staff_page)
        await sign_in(staff_page, staff_watch, portal.base_url, slug, email, STAFF_PASSWORD)
        await staff_page.goto(f"{portal.base_url}/?firm={slug}#/matter/{ref}")
        await staff_page.locator(f"#thread-text-{ref}").fill("After the removal")
        await staff_page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        mine = staff_page.locator(
            f"#matter-{ref} .message-body[data-sender=s{kit.staff.id}] .message-text"
        )
        await expect(mine.last).to_have_text("After the removal", timeout=WAIT_MS)
        after = (await http.get(f"/api/v1/keys/matters/{ref}", headers=kit.auth("admin"))).json()
        assert len(after["manifests"]) == len(before["manifests"]) + 1
        newest = Manifest.decode(b64decode(after["manifests"][-1], 1 << 17) or b"")
        assert client not in {m.user for m in newest.body.members}
        # The one refusal the page recovered from (the browser logs it too).
        assert staff_watch.problems and all("409" in p for p in staff_watch.problems)
        await again.close()
        await context.close()


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_portal_delivered_invite_hands_over_to_a_fresh_key(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, settings: Settings, layout: str
) -> None:
    """An invite the portal delivered: its server could have read R, so the page
    registers a fresh key with a handover the invite key signed, and shows the 6-digit
    code of the fresh key on the account page for the adviser's call."""
    from playwright.async_api import expect

    from rtportal import base64url
    from rtportal.crypto.recovery import sas_code, verify_handover

    kit = await make_firm(name="Harbour & Co")
    ref = kit.ref
    async with api_client(portal) as http:
        keys, slug = await e2ee_firm(http, kit, settings)
        contact_id = await _new_contact(http, kit)
        client = f"c{contact_id}"
        await invite_round(http, kit, keys, contact_id, "portal")
        (invite,) = await events_of(http, kit, kind="welcome")
        link = await portal_link(kit)
        assert "&r=" in link and f"frk={keys.world.frk.public.link}" in link

        context = await browser.new_context(**LAYOUTS[layout])
        page = await context.new_page()
        watch = PageWatch(page)
        await accept_link(
            page, link.replace("http://127.0.0.1:8000", portal.base_url), CLIENT_PASSWORD
        )
        # It still reads with the invite key until the adviser confirms the fresh one.
        await expect(
            item_body(page, ref, client_at(portal, kit.matter.id, invite["seq"])).locator(
                ".message-text"
            )
        ).to_have_text(WELCOME, timeout=WAIT_MS)
        # The directory took the handover (PUT /keys/me); staff see it, not verified yet.
        listed = await http.get(f"/api/v1/matters/{ref}/invites", headers=kit.auth("admin"))
        assert listed.status_code == 200, listed.text
        (row,) = [r for r in listed.json()["invites"] if r["contact"]["id"] == contact_id]
        assert row["sent_by"] == "portal" and row["verified"] is False
        shown = row["handover"]
        invite_key = keys.world.ids[client].public
        assert shown["public_keys"] != b64(invite_key.record())
        handover = base64url.decode(shown["record"], 4096)
        assert handover is not None
        body = verify_handover(handover, invite_key, firm=slug, user=client)
        assert b64(body.new.record()) == shown["public_keys"]
        await page.locator("#account").click()
        await expect(page.locator("#verification-code")).to_have_text(
            sas_code(slug, client, body.new), timeout=WAIT_MS
        )
        await expect(page.locator("#keys-panel .firm-fingerprint")).to_have_text(
            keys.world.frk.public.fingerprint_text
        )
        await shot(page, "client-verification-code", layout)
        assert watch.problems == []
        await context.close()


async def test_a_substituted_firm_root_is_refused(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, settings: Settings
) -> None:
    """The server holds another root key than the one the invite link pins (a server
    that replaced the firm's keys): the page says so and shows no message content."""
    from playwright.async_api import expect

    from rtportal.crypto.keys import FirmRootKey

    kit = await make_firm(name="Harbour & Co")
    ref = kit.ref
    async with api_client(portal) as http:
        keys, slug = await e2ee_firm(http, kit, settings)
        contact_id = await _new_contact(http, kit)
        secret, token = await invite_round(http, kit, keys, contact_id, "own_mail")
        (welcome,) = await events_of(http, kit, kind="welcome")
        other_root = FirmRootKey.generate().public.link
        context = await browser.new_context(**LAYOUTS["desktop"])
        page = await context.new_page()
        watch = PageWatch(page)
        forged = f"{portal.base_url}/?firm={slug}#t={token}&r={b64(secret)}&frk={other_root}"
        await accept_link(page, forged, CLIENT_PASSWORD)
        notice = page.locator(f"#matter-{ref} .key-notices [role=alert]", has_text="do not match")
        await expect(notice).to_be_visible(timeout=WAIT_MS)
        shown = item_body(page, ref, client_at(portal, kit.matter.id, welcome["seq"]))
        await expect(shown).to_have_attribute("role", "alert", timeout=WAIT_MS)
        assert WELCOME not in await page.content()
        assert await page.locator(f"#thread-text-{ref}").count() == 0
        await shot(page, "client-root-mismatch", "desktop")
        assert watch.problems == []
        await context.close()
