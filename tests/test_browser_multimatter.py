"""A client with a password invited to a second matter, in a real Chromium (docs/keys.md
"A second matter"), at desktop and phone size, for both deliveries of the second invite.

Ines accepted her visa matter's invite in the browser (a password, the key
backup of her identity). The firm then invites her to her mortgage matter.
She opens that link on her phone and signs in with her existing password: the
page keeps her identity, has the link's invite key sign a binding to it, and
shows the mortgage welcome and history at once; she replies; no staff member
is online (the staff side here is the Python client, as a staff browser). The
visa matter keeps working. Then a staff member opens the mortgage matter in
their browser: it certifies Ines's identity for the mortgage too (no code to
compare) and moves the matter to an epoch with it. A new device signing in
with the password reads both matters' history; removal from the mortgage
leaves the visa readable. Screenshots go to docs/screenshots/multimatter-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rtportal.access.directory import primary_email
from rtportal.crypto.certs import Certificate
from rtportal.crypto.manifest import Manifest
from rtportal.sdk import sync
from rtportal.sdk.client import Client, Invited
from tests.conftest import MakeFirm
from tests.support.logins import staff_email
from tests.support.sdkworld import SdkWorld, sdk_world
from tests.support.server import RunningServer
from tests.test_browser_e2ee import LAYOUTS, WAIT_MS, PageWatch, browser, portal, sign_in
from tests.test_sdk_multimatter import handed_over, invited_with_old_password

pytestmark = pytest.mark.timeout(300)

__all__ = ["browser", "portal"]  # the fixtures, imported

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "seven quiet harbours"


async def shot(page: Any, name: str, layout: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"multimatter-{name}-{layout}.png"), full_page=True)


async def link_of(w: SdkWorld, invited: Invited) -> str:
    """own_mail: the link the staff client built; portal: the one the portal mailed (made
    on the settings' public URL: the same page on this test server's port)."""
    if invited.link is not None:
        return invited.link
    outbox = await w.admin.http.call("GET", "/api/v1/outbox")
    bodies = [m["body"] or "" for m in outbox["messages"] if m["invite_id"] == invited.invite_id]
    [link] = [x for b in bodies for x in re.findall(r"\S+#t=\S+", b)]
    return re.sub(r"^https?://[^/?#]+", w.server.base_url, str(link))


async def texts(client: Client, ref: str) -> list[str]:
    return [i.body.text for i in await client.read(ref)]


async def shows(page: Any, ref: str, text: str) -> None:
    from playwright.async_api import expect

    item = page.locator(f"#matter-{ref} .message-body[data-crypto='ok'] .message-text")
    await expect(item.filter(has_text=text).first).to_be_visible(timeout=WAIT_MS)


async def accept(page: Any, link: str, *, new: bool) -> None:
    from playwright.async_api import expect

    await page.goto(link)
    form = page.locator("#accept form")
    await form.locator("input[name=password]").fill(PASSWORD)
    if new:
        await form.locator("input[name=confirm]").fill(PASSWORD)
    else:
        await expect(form.locator("input[name=confirm]")).to_have_count(0)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


async def reply(page: Any, ref: str, text: str) -> None:
    from playwright.async_api import expect

    # typed once the page can write: its thread loaded, its keys ready (typing
    # into a composer that is drawn again as the keys arrive raced the redraw)
    await expect(page.locator(f"#thread-{ref}")).to_have_attribute(
        "data-loaded", "1", timeout=WAIT_MS
    )
    await expect(page.locator(f"#write-state-{ref}")).to_be_hidden(timeout=WAIT_MS)
    await page.locator(f"#thread-text-{ref}").fill(text)
    await page.locator(f"#matter-{ref} .composer button[type=submit]").click()
    await shows(page, ref, text)


@pytest.mark.parametrize(("layout", "delivery"), [("desktop", "own_mail"), ("mobile", "portal")])
async def test_second_matter_in_the_browser(
    browser: Any,
    portal: RunningServer,
    make_firm: MakeFirm,
    tmp_path: Path,
    layout: str,
    delivery: str,
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name=f"Two Matters {layout}")
    async with sdk_world(portal, kit, tmp_path) as w:
        visa_matter = await w.matter("Visa")
        visa = visa_matter.reference
        contact = await w.contact("Ines", visa_matter)
        cid, user = contact.id, f"c{contact.id}"
        async with kit.db.read() as session:
            email = await primary_email(session, cid)
        assert email is not None
        [first] = await w.staff.invite(visa, [(cid, "Welcome", "hello visa")])
        contexts = []
        try:
            laptop_ctx = await browser.new_context(**LAYOUTS[layout])
            contexts.append(laptop_ctx)
            laptop = await laptop_ctx.new_page()
            laptop_watch = PageWatch(laptop)
            await accept(laptop, await link_of(w, first), new=True)
            await shows(laptop, visa, "hello visa")

            # --- The second matter: invited (both deliveries), staff go offline.
            mortgage = (await w.matter("Mortgage")).reference
            [second] = await w.staff.invite(
                mortgage, [(cid, "Welcome", "hello mortgage")], delivery=delivery
            )
            await w.staff.send(mortgage, thread=f"welcome-{cid}", text="history one")

            # --- Ines accepts on her phone with her existing password.
            phone_ctx = await browser.new_context(**LAYOUTS[layout])
            contexts.append(phone_ctx)
            phone = await phone_ctx.new_page()
            phone_watch = PageWatch(phone)
            await accept(phone, await link_of(w, second), new=False)
            await shows(phone, mortgage, "hello mortgage")
            await shows(phone, mortgage, "history one")
            await shot(phone, "client-second-welcome", layout)
            await reply(phone, mortgage, "a mortgage question")
            assert (await texts(w.staff, mortgage))[-1] == "a mortgage question"
            # the first matter keeps working, here and on the laptop
            await shows(phone, visa, "hello visa")
            await reply(laptop, visa, "a visa question")
            assert (await texts(w.staff, visa))[-1] == "a visa question"
            # her account keeps its one identity and backup (the binding changed neither)
            mine = await w.staff.http.call("GET", f"/api/v1/matters/{mortgage}/invites")
            [row] = [r for r in mine["invites"] if r["contact"]["id"] == cid]
            assert row["handover"] is not None and row["handover"]["certified_in"] == [visa]

            # --- A staff member opens the mortgage matter: their browser certifies her
            # identity there too and moves the matter on (no code to compare).
            staff_ctx = await browser.new_context(**LAYOUTS[layout])
            contexts.append(staff_ctx)
            staff = await staff_ctx.new_page()
            staff_watch = PageWatch(staff)
            address = await staff_email(kit.db, kit.staff.id)
            await sign_in(
                staff, staff_watch, portal.base_url, w.slug, address, w.passwords["staff"]
            )
            await staff.goto(f"{portal.base_url}/?firm={w.slug}#/matter/{mortgage}")
            invite_row = staff.locator(".invite-row").filter(has_text="Ines")
            await expect(invite_row).to_be_visible(timeout=WAIT_MS)
            await expect(invite_row.locator(".status-unverified")).to_have_count(0, timeout=WAIT_MS)
            visa_certs = (await w.staff.http.call("GET", f"/api/v1/keys/matters/{visa}"))["certs"]
            identity = {
                c.body.kid
                for c in (Certificate.decode(sync.decode(x)) for x in visa_certs)
                if c.body.user == user
            }
            assert len(identity) == 1  # her one identity, certified in the visa matter

            async def bound() -> bool:
                chain = await w.staff.http.call("GET", f"/api/v1/keys/matters/{mortgage}")
                last = Manifest.decode(sync.decode(chain["manifests"][-1])).body
                return {m.kid for m in last.members if m.user == user} == identity

            for _ in range(WAIT_MS // 100):
                if await bound():
                    break
                await staff.wait_for_timeout(100)  # reason: bounded poll of the page's posts
            assert await bound()
            await shot(staff, "staff-bound", layout)

            # --- A new device: the password unlocks one identity that reads both matters.
            tablet_ctx = await browser.new_context(**LAYOUTS[layout])
            contexts.append(tablet_ctx)
            tablet = await tablet_ctx.new_page()
            tablet_watch = PageWatch(tablet)
            await sign_in(tablet, tablet_watch, portal.base_url, w.slug, email, PASSWORD)
            for text in ("hello mortgage", "history one", "a mortgage question"):
                await shows(tablet, mortgage, text)
            await shows(tablet, visa, "a visa question")
            await reply(tablet, mortgage, "from the tablet")
            assert (await texts(w.staff, mortgage))[-1] == "from the tablet"
            await shot(tablet, "client-new-device", layout)

            # --- Removed from the mortgage: the visa still reads and writes.
            await w.staff.remove(mortgage, invite_id=second.invite_id, contact_id=cid)
            await tablet.reload()
            await expect(tablet.locator("#conn")).to_have_attribute(
                "data-state", "live", timeout=WAIT_MS
            )
            await expect(tablet.locator(f"#matter-{mortgage}")).to_have_count(0, timeout=WAIT_MS)
            await reply(tablet, visa, "still on the visa")
            assert (await texts(w.staff, visa))[-1] == "still on the visa"
            await shot(tablet, "client-after-removal", layout)

            for watch in (laptop_watch, phone_watch, tablet_watch):
                assert [p for p in watch.problems if not p.endswith("/api/v1/me")] == []
            assert [p for p in staff_watch.problems if not p.endswith("/api/v1/me")] == []
        finally:
            for ctx in contexts:
                await ctx.close()


async def test_a_password_from_before_the_keys_hands_a_portal_invite_key_over_in_the_browser(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """A contact whose password predates the firm's keys accepts a portal-delivered invite
    in the page: the invite key (the server mailed its ``R``) is handed over to a fresh
    identity with a code, never kept as the identity itself."""
    kit = await make_firm(name="Old Password")
    async with sdk_world(portal, kit, tmp_path) as w:
        ref, cid, invited = await invited_with_old_password(w, PASSWORD)
        link = await link_of(w, invited)
        ctx = await browser.new_context(**LAYOUTS["desktop"])
        try:
            page = await ctx.new_page()
            await accept(page, link, new=False)
            await shows(page, ref, "hello visa")
        finally:
            await ctx.close()
        await handed_over(w, ref, cid, link)
