"""A portal-delivered invite verified by phone, in a real Chromium (docs/keys.md).

The org admin sets up the firm keys in their browser and invites Pat "by the
portal" (the email carries ``R``). Pat opens the link, chooses a password:
her browser registers a fresh key with a handover signed by the invite key
(``PUT /api/v1/keys/me``, stored by the real directory) and shows its
6-digit code on the account page. The admin's invite row says "not
verified"; a wrong code certifies nothing; the code Pat reads out makes the
admin's browser certify the fresh key, post the next epoch with it and
revoke the invite key; the directory then lists Pat as verified, derived
from the certificates, and her page stops showing the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rtportal import base64url
from rtportal.crypto.manifest import Manifest
from rtportal.crypto.recovery import sas_code
from rtportal.sdk.client import identity_public
from tests.conftest import MakeFirm
from tests.support.browserfirm import accept_link, add_contact, admin_signs_in, set_up_firm_keys
from tests.support.logins import give_password
from tests.support.server import RunningServer
from tests.test_browser_access import (  # noqa: F401 - fixtures of the SMTP-backed portal
    ADMIN_PASSWORD,
    Mailbox,
    browser,
    browser_page,
    firm_slug,
    mailbox,
    portal,
    portal_port,
    settings,
)
from tests.test_browser_feed import WAIT_MS
from tests.test_browser_keys_admin import shot

pytestmark = pytest.mark.timeout(300)

CLIENT_PASSWORD = "seven quiet harbours"


def b64d(value: str) -> bytes:
    data = base64url.decode(value, 1 << 20)
    assert data is not None
    return data


def is_post(suffix: str) -> Callable[[Any], bool]:
    return lambda r: r.request.method == "POST" and r.url.endswith(suffix)


async def pat_row(http: httpx.AsyncClient, kit: Any) -> dict[str, Any]:
    listed = await http.get(f"/api/v1/matters/{kit.ref}/invites", headers=kit.auth("admin"))
    assert listed.status_code == 200, listed.text
    [row] = [r for r in listed.json()["invites"] if r["contact"]["name"] == "Pat Portal"]
    assert isinstance(row, dict)
    return row


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_portal_invite_verified_by_the_code(
    browser: Any,  # noqa: F811
    portal: RunningServer,  # noqa: F811
    make_firm: MakeFirm,
    mailbox: Mailbox,  # noqa: F811
    layout: str,
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name=f"Handover & Co {layout}")
    slug = await firm_slug(kit)
    base = portal.base_url
    admin_email = f"ada.handover.{layout}@harbour.test"
    await give_password(kit.db, kit.settings, kit.admin, admin_email, ADMIN_PASSWORD)

    async with (
        browser_page(browser, layout) as (admin, admin_watch),
        browser_page(browser, layout) as (client, client_watch),
    ):
        # --- The org admin signs in and sets up the firm keys in the browser.
        await admin_signs_in(admin, base, slug, admin_email, ADMIN_PASSWORD, mailbox)
        await set_up_firm_keys(admin)

        # --- Pat is invited by the portal: the email carries R.
        await admin.goto(f"{base}/?firm={slug}#/matter/{kit.ref}")
        await admin.locator("#portal-control").click(timeout=WAIT_MS)
        flyout = admin.locator("#invite-flyout")
        pat_email = f"pat.{layout}@client.test"
        pick = await add_contact(flyout, "Pat Portal", pat_email)
        await pick.get_by_label("Delivery").select_option("portal")
        await expect(flyout.get_by_label("Subject")).to_have_value(
            re.compile(kit.ref), timeout=WAIT_MS
        )
        await flyout.get_by_role("button", name="Send invitation").click()
        await expect(flyout).to_have_count(0, timeout=WAIT_MS)
        await mailbox.link(pat_email, 1, kind="t")  # waits for the email
        part = mailbox.to(pat_email)[0].get_body(preferencelist=("plain",))
        assert part is not None
        found = re.search(
            r"https?://\S+#t=[\w-]+&r=[\w-]{43}&frk=[\w-]{43}", str(part.get_content())
        )
        assert found is not None
        link = found.group(0)

        # --- Pat accepts: a fresh key, registered with a handover; her code on the account page.
        await accept_link(client, link, CLIENT_PASSWORD)
        welcome = client.locator(f"#matter-{kit.ref} .message-body[data-crypto='ok']")
        await expect(welcome.first).to_be_visible(timeout=WAIT_MS)
        await client.locator("#account").click()
        code_shown = client.locator("#verification-code")
        await expect(code_shown).to_have_text(re.compile(r"^[0-9]{3} [0-9]{3}$"), timeout=WAIT_MS)
        code = (await code_shown.text_content() or "").strip()

        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            row = await pat_row(http, kit)
        user = f"c{row['contact']['id']}"
        assert row["sent_by"] == "portal" and row["verified"] is False
        fresh = identity_public(b64d(row["handover"]["public_keys"]))
        assert sas_code(slug, user, fresh) == code  # what staff compute is what Pat reads

        # --- The admin's invite row: not verified; a wrong code is refused, the right one taken.
        await admin.reload()
        invite = admin.locator(".invite-row").filter(has_text="Pat Portal")
        await expect(invite.locator(".status-unverified")).to_be_visible(timeout=WAIT_MS)
        box = invite.locator("form.verify-code")
        wrong = f"{(int(code.replace(' ', '')) + 1) % 1_000_000:06d}"
        await box.locator("input").fill(wrong)
        await box.get_by_role("button", name="Confirm the code").click()
        await expect(box).to_contain_text("does not match", timeout=WAIT_MS)
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            assert (await pat_row(http, kit))["verified"] is False
        await shot(admin, "handover-not-verified", layout)
        await box.locator("input").fill(code)
        # The page posts the fresh key's certificate, the invite key's revocation, then the
        # epoch (never an epoch naming an unrevoked invite key) and last the history
        # re-wrapped to the fresh key: its answer ends the flow.
        posted: list[str] = []
        admin.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        async with admin.expect_response(is_post("/wraps"), timeout=WAIT_MS):
            await box.get_by_role("button", name="Confirm the code").click()
        keys_posts = [u.rsplit("/", 1)[-1] for u in posted if "/api/v1/keys/" in u]
        assert keys_posts == ["certs", "client-revocations", "epochs", "wraps"]
        # the list is read again: the row no longer says "not verified" (nor asks for a code)
        await expect(invite.locator(".status-unverified")).to_have_count(0, timeout=WAIT_MS)
        await expect(invite.locator("form.verify-code")).to_have_count(0)

        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            row = await pat_row(http, kit)
            chain = (
                await http.get(f"/api/v1/keys/matters/{kit.ref}", headers=kit.auth("admin"))
            ).json()
        assert row["verified"] is True
        last = Manifest.decode(b64d(chain["manifests"][-1])).body
        assert [(m.user, m.kid) for m in last.members] == [(user, fresh.kid)]
        assert len(chain["revocations"]) == 1  # the invite key

        # --- Pat's page took the fresh key: the code is gone, the welcome still reads.
        await client.reload()
        await expect(client.locator("#conn")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        await expect(welcome.first).to_be_visible(timeout=WAIT_MS)
        await client.locator("#account").click()
        await expect(client.locator("#keys-panel")).to_be_visible(timeout=WAIT_MS)
        await expect(client.locator("#verification-code")).to_have_count(0)
        # the admin's first sign-in asks for the authenticator code (401 on signin and me);
        # the wrong code is refused in the page before anything is posted
        expected = ("/api/v1/me", "/api/v1/signin")
        assert [p for p in admin_watch.problems if not p.endswith(expected)] == []
        assert client_watch.problems == []
