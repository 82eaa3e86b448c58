"""The staff browser's key administration in a real Chromium, at desktop and phone size.

docs/keys.md through the staff screens (static/staff/keysetup.js, approvals.js,
roundkeys.js): the org admin signs in (their browser registers an identity)
and sets up the firm keys: the firm root key is made in the page, its
fingerprint shown in the human format and its key file downloaded; the
server stores only the public record, the admin's certificate, the escrow
record and the first revocation list. A staff member signs in and waits; the
admin sees them in the approval queue with their key's fingerprint and
approves. The staff member then invites a client from their own mail client:
the prepared mailto: message carries the link with ``#t=…&r=…&frk=…``, and
the server never saw ``r`` (nothing in the outbox, the events or the invite
rows holds it). A second client is invited "by the portal": the portal's
email carries the secret (as documented) and the access list says so. The
first client opens the link from the mailto: message, chooses a password and
reads the encrypted welcome. Screenshots go to docs/screenshots/keys-*.png.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from rtportal import base64url
from rtportal.crypto.certs import Certificate, Reason, RevocationList
from rtportal.crypto.keys import fingerprint_text
from rtportal.crypto.manifest import Manifest
from rtportal.db.models import Credential, OutboxMessage
from rtportal.keys import records
from tests.conftest import MakeFirm
from tests.support.browserfirm import (
    accept_link,
    add_contact,
    admin_signs_in,
    own_mail_link,
    set_up_firm_keys,
    sign_in,
)
from tests.support.logins import give_password
from tests.support.logins import staff_email as staff_email_of
from tests.support.server import RunningServer
from tests.test_browser_access import (  # noqa: F401 - fixtures of the SMTP-backed portal
    ADMIN_PASSWORD,
    LAYOUTS,
    SHOTS,
    Mailbox,
    browser,
    browser_page,
    firm_slug,
    mailbox,
    no_sideways_scroll,
    portal,
    portal_port,
    settings,
    totp_code,
)
from tests.test_browser_feed import WAIT_MS

pytestmark = pytest.mark.timeout(300)

STAFF_PASSWORD = "quiet copper meadow 77"
CLIENT_PASSWORD = "seven quiet harbours"


async def shot(page: Any, name: str, layout: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"keys-{name}-{layout}.png"), full_page=True)


async def everything_stored(kit: Any) -> str:
    """Every text the server keeps about invites and messages, for a canary search."""
    async with kit.db.read() as session:
        out: list[str] = []
        for table in ("outbox", "invites", "events"):
            rows = await session.execute(text(f"SELECT * FROM {table}"))
            out.extend(repr(tuple(r)) for r in rows.all())
        return "\n".join(out)


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_key_administration_journey(
    browser: Any,  # noqa: F811
    portal: RunningServer,  # noqa: F811
    make_firm: MakeFirm,
    mailbox: Mailbox,  # noqa: F811
    layout: str,
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name=f"Keys & Co {layout}")
    slug = await firm_slug(kit)
    base = portal.base_url
    admin_email = f"ada.keys.{layout}@harbour.test"
    staff_email = await staff_email_of(kit.db, kit.staff.id)
    await give_password(kit.db, kit.settings, kit.admin, admin_email, ADMIN_PASSWORD)
    await give_password(kit.db, kit.settings, kit.staff, staff_email, STAFF_PASSWORD)

    async with (
        browser_page(browser, layout) as (admin, admin_watch),
        browser_page(browser, layout) as (staff, staff_watch),
        browser_page(browser, layout) as (client, client_watch),
    ):
        # --- The org admin signs in (authenticator enrolment by email) and sets up the firm keys.
        await admin_signs_in(admin, base, slug, admin_email, ADMIN_PASSWORD, mailbox)

        async def at_key_file() -> None:
            await no_sideways_scroll(admin)
            await shot(admin, "firm-setup", layout)

        root = await set_up_firm_keys(admin, at_key_file)
        shown, key_file = root.fingerprint_text, root.key_file
        assert f"fingerprint: {shown}" in key_file and f"firm: {slug}" in key_file
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            firm_keys = (await http.get("/api/v1/keys/firm", headers=kit.auth("admin"))).json()
        frk = records.root(b64d(firm_keys["frk"]))
        assert frk.fingerprint_text == shown  # the server holds the public record the page showed
        assert firm_keys["revocations"]["list"] and len(firm_keys["escrow"]) == 1
        assert root.seed_text not in await everything_stored(kit)
        # the pin went into the admin's backup at set-up: a new device takes it from there
        assert await backup_pin(kit, kit.admin.id, ADMIN_PASSWORD) == frk.fingerprint

        # --- A staff member signs in: their browser registers a key and waits for approval.
        await sign_in(staff, base, slug, staff_email, STAFF_PASSWORD)
        await expect(staff.locator("nav.staff-nav")).to_be_visible(timeout=WAIT_MS)
        async with kit.db.read() as session:
            cred = (
                await session.execute(
                    select(Credential).where(
                        Credential.principal_kind == "staff",
                        Credential.principal_id == kit.staff.id,
                    )
                )
            ).scalar_one()
        assert cred.public_keys is not None and cred.key_backup is not None
        registered = fingerprint_text(records.identity(cred.public_keys).fingerprint)

        await admin.reload()
        queue = admin.locator("#staff-approvals")
        row = queue.locator(f".pending-row[data-pending='{kit.staff.id}']")
        await expect(row).to_contain_text(staff_email, timeout=WAIT_MS)
        await expect(row).to_contain_text(
            registered
        )  # the admin can compare it with the staff page
        await no_sideways_scroll(admin)
        await shot(admin, "approval-queue", layout)
        await row.get_by_role("button", name="Approve").click()
        await expect(row).to_contain_text("Approved.", timeout=WAIT_MS)
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            pending = (await http.get("/api/v1/keys/pending", headers=kit.auth("admin"))).json()
            certs = (await http.get("/api/v1/keys/firm", headers=kit.auth("admin"))).json()["certs"]
        assert pending["pending"] == []
        users = {Certificate.decode(b64d(c)).body.user for c in certs}
        assert {f"s{kit.admin.id}", f"s{kit.staff.id}"} <= users

        # The staff page, still holding the sign-in's KEK, pins the root at its first certified
        # sync (the live keys event of the approval) and seals the pin into the backup.
        await wait_for_backup_pin(kit, kit.staff.id, STAFF_PASSWORD, frk.fingerprint)

        # --- The staff member invites a client from their own mail client.
        await staff.reload()
        await staff.goto(f"{base}/?firm={slug}#/matter/{kit.ref}")
        await staff.locator("#portal-control").click(timeout=WAIT_MS)
        flyout = staff.locator("#invite-flyout")
        own_email = f"olive.{layout}@client.test"
        pick = await add_contact(flyout, "Olive Own", own_email)
        await pick.get_by_label("Delivery").select_option("own_mail")
        await expect(pick.locator(".portal-note")).to_be_hidden()
        await expect(flyout.get_by_label("Subject")).to_have_value(
            re.compile(kit.ref), timeout=WAIT_MS
        )
        await shot(staff, "invite-own-mail", layout)
        await flyout.get_by_role("button", name="Send invitation").click()
        mail = await own_mail_link(staff)
        assert mail.href.startswith(f"mailto:{own_email.replace('@', '%40')}?subject=")
        link, secret = mail.link, mail.secret
        # on this page's origin and firm (never a server-supplied url), with the pinned root
        assert link.startswith(f"{base}/?firm={slug}#t="), link
        assert link.endswith(f"&frk={base64url.encode(frk.fingerprint)}"), link
        assert await staff.locator("#own-mail input.link-text").input_value() == link
        await no_sideways_scroll(staff)
        await shot(staff, "invite-own-mail-sent", layout)
        stored = await everything_stored(kit)
        assert secret not in stored  # the server never saw r
        async with kit.db.read() as session:
            sent_to = (
                (
                    await session.execute(
                        select(OutboxMessage).where(OutboxMessage.recipient == own_email)
                    )
                )
                .scalars()
                .all()
            )
        assert sent_to == []  # own mail: the portal sent nothing
        await staff.locator("#own-mail").get_by_role("button", name="Done").click()

        # --- A second client, sent by the portal: the email carries the secret (documented).
        await staff.locator("#portal-control").click(timeout=WAIT_MS)
        flyout = staff.locator("#invite-flyout")
        portal_email = f"pat.{layout}@client.test"
        # Olive, the only applicant so far, comes ticked: she is invited already
        await (
            flyout.locator(".pick-row")
            .filter(has_text="Olive Own")
            .get_by_role("checkbox")
            .uncheck()
        )
        pick = await add_contact(flyout, "Pat Portal", portal_email)
        await pick.get_by_label("Delivery").select_option("portal")
        await expect(pick.locator(".portal-note")).to_be_visible()
        await flyout.get_by_role("button", name="Send invitation").click()
        await expect(flyout).to_have_count(0, timeout=WAIT_MS)
        await mailbox.link(portal_email, 1, kind="t")
        part = mailbox.to(portal_email)[0].get_body(preferencelist=("plain",))
        assert part is not None
        assert re.search(r"#t=[\w-]+&r=[\w-]{43}&frk=[\w-]{43}", str(part.get_content()))
        await shot(staff, "invite-portal-sent", layout)

        # --- The first client opens the link from the mailto: message and reads the welcome.
        await accept_link(client, link, CLIENT_PASSWORD)
        welcome = client.locator(f"#matter-{kit.ref} .message-body[data-crypto='ok']")
        await expect(welcome.first).to_be_visible(timeout=WAIT_MS)
        await shot(client, "client-welcome", layout)

        # --- Staff remove the client: their browser posts the next epoch without her.
        await staff.reload()
        olive = staff.locator(".invite-row").filter(has_text="Olive Own")
        await expect(olive).to_have_attribute("data-status", "active", timeout=WAIT_MS)
        await olive.locator("[data-action='remove']").click()
        await olive.get_by_role("button", name="Yes, remove").click()
        await expect(staff.locator(".invite-row").filter(has_text="Olive Own")).to_have_attribute(
            "data-status", "removed", timeout=WAIT_MS
        )
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            listed = (
                await http.get(f"/api/v1/matters/{kit.ref}/invites", headers=kit.auth("admin"))
            ).json()["invites"]
            olive_id = next(
                i["contact"]["id"] for i in listed if i["contact"]["name"] == "Olive Own"
            )
            await wait_until_epochs(http, kit, 3)  # invite own mail, invite portal, removal
            chain = (
                await http.get(f"/api/v1/keys/matters/{kit.ref}", headers=kit.auth("admin"))
            ).json()
        last = Manifest.decode(b64d(chain["manifests"][-1])).body
        assert last.epoch == 3
        assert [m.user for m in last.members] == [f"c{pat_id(listed)}"]
        assert f"c{olive_id}" not in {m.user for m in last.members}

        # --- The staff member leaves: the admin disables them; the admin's browser revokes
        # their key (reason left), makes escrow version 2 and re-keys the matter under it.
        await admin.goto(f"{base}/?firm={slug}#/staff")
        sam = admin.locator(f".staff-row[data-staff='{kit.staff.id}']")
        await sam.get_by_role("button", name="Disable").click(timeout=WAIT_MS)
        sam = admin.locator(f".staff-row[data-staff='{kit.staff.id}']")
        await expect(sam.locator(".leaving")).to_have_text(
            "Re-keyed: the staff member reads nothing new.", timeout=WAIT_MS
        )
        await no_sideways_scroll(admin)
        await shot(admin, "staff-left", layout)
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            firm_keys = (await http.get("/api/v1/keys/firm", headers=kit.auth("admin"))).json()
            chain = (
                await http.get(f"/api/v1/keys/matters/{kit.ref}", headers=kit.auth("admin"))
            ).json()
        signed = RevocationList.decode(b64d(firm_keys["revocations"]["list"]))
        signed.verify(frk)  # signed by the firm root key the page made
        revoked = signed.body
        assert revoked.version == 2
        assert [(e.user, e.reason) for e in revoked.entries] == [(f"s{kit.staff.id}", Reason.LEFT)]
        assert len(firm_keys["escrow"]) == 2
        rekeyed = Manifest.decode(b64d(chain["manifests"][-1])).body
        assert (rekeyed.epoch, rekeyed.fek_version) == (4, 2)
        assert [m.user for m in rekeyed.members] == [f"c{pat_id(listed)}"]

        for watch in (admin_watch, staff_watch, client_watch):
            # a 409 on /epochs is the designed re-base: a page re-syncing its keyring (a
            # reload replays the keys events) can leave a flow one epoch behind; it retries
            expected = ("/api/v1/me", "/api/v1/signin")
            left = [p for p in watch.problems if not p.endswith(expected)]
            assert [
                p for p in left if not (p.startswith("HTTP 409") and p.endswith("/epochs"))
            ] == []


def pat_id(listed: list[dict[str, Any]]) -> int:
    return int(next(i["contact"]["id"] for i in listed if i["contact"]["name"] == "Pat Portal"))


async def wait_until_epochs(http: httpx.AsyncClient, kit: Any, n: int) -> None:
    async def count() -> int:
        answer = await http.get(f"/api/v1/keys/matters/{kit.ref}", headers=kit.auth("admin"))
        return len(answer.json()["manifests"])

    deadline = asyncio.get_running_loop().time() + 15
    while await count() < n:
        assert asyncio.get_running_loop().time() < deadline, f"no epoch {n}"
        await asyncio.sleep(0.1)  # reason: the staff page posts the epoch after the server's answer


def b64d(value: str) -> bytes:
    data = base64url.decode(value, 1 << 16)
    assert data is not None
    return data


async def backup_pin(kit: Any, staff_id: int, password: str) -> bytes:
    """The root fingerprint sealed in a staff member's server-held key backup."""
    from rtportal.crypto.backup import open_backup

    async with kit.db.read() as session:
        cred = (
            await session.execute(
                select(Credential).where(
                    Credential.principal_kind == "staff", Credential.principal_id == staff_id
                )
            )
        ).scalar_one()
    assert cred.key_backup is not None
    _, _, contents = await asyncio.to_thread(open_backup, cred.key_backup, password)
    return contents.frk_fingerprint


async def wait_for_backup_pin(kit: Any, staff_id: int, password: str, fingerprint: bytes) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while await backup_pin(kit, staff_id, password) != fingerprint:
        assert asyncio.get_running_loop().time() < deadline, "the pin never reached the backup"
        await asyncio.sleep(0.2)  # reason: polling the database for the browser's PUT /keys/me
