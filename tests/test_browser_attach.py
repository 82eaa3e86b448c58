"""Attachments in threads, both ways, in a real Chromium at desktop and phone size (390 × 844).

The org admin (the staff member here) sets up the firm keys in the page and
invites a client from their own mail client; the client accepts. Then:

- staff attach three files to a reply in the client's thread, chosen
  through the visible "Attach files" button: a 4 MiB file, sent through the
  browser's own upload throttling (1 MB/s) until the test has seen the
  upload's progress bar part-way (no sleeps), an SVG named
  ``<img src=x onerror=alert(1)>.svg`` and an HTML file, both with scripts;
- the client's page shows the reply live with the attachments listed by
  name and size, the markup in the name as text (no element made of it);
- the client downloads them: the bytes equal what staff attached, each a
  download from a ``blob:`` URL (never a navigation: the page stays where
  it was, no page opens, no dialog, the scripts never run);
- the client replies with an attachment of her own; staff see it live and
  download it (bytes equal); she edits her reply, and its file stays;
- an upload cancelled mid-way sends nothing, and a file over the firm's file
  limit, then over the matter's quota, is refused in the limit's own words,
  the composer keeping its text.

Screenshots: docs/screenshots/staff-attach-{desktop,mobile}.png (the upload's
progress bar) and client-attachment-{desktop,mobile}.png (the attachments as
the client sees them, the big one's download bar part-way: her downloads
throttled as the upload was).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest

from tests.conftest import MakeFirm
from tests.support.attachpage import Upload, attachment, choose_files, download
from tests.support.browserfirm import (
    accept_link,
    admin_signs_in,
    invite_by_own_mail,
    set_up_firm_keys,
)
from tests.support.logins import give_password
from tests.support.server import RunningServer
from tests.test_browser_access import (  # noqa: F401 - fixtures of the SMTP-backed portal
    Mailbox,
    browser,
    browser_page,
    firm_slug,
    mailbox,
    portal,
    portal_port,
    settings,
)
from tests.test_browser_e2ee import SHOTS, api_client
from tests.test_browser_feed import WAIT_MS
from tests.test_browser_timeline import fits

pytestmark = pytest.mark.timeout(400)

XSS_NAME = "<img src=x onerror=alert(1)>.svg"
HTML = b"<!doctype html><script>alert('html');opener.xssRan=1;parent.xssRan=1</script>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(\'svg\')">'
    b"<script>alert(document.domain);parent.xssRan=1</script></svg>"
)


async def held_upload(page: Any) -> tuple[asyncio.Event, asyncio.Event]:
    """Uploads of files wait at the network until ``release`` is set; ``arrived`` says one did."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(route: Any) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        arrived.set()
        await release.wait()
        try:
            await route.continue_()
        except Exception:  # the page cancelled it meanwhile: nothing to forward
            pass

    await page.route("**/api/v1/matters/*/files", hold)
    return arrived, release


# an upload's or a download's bar shows some of the file moved, not all of it
PART_WAY = """() => {
  const bar = document.querySelector('progress.attach-progress[data-phase=upload],'
    + ' li.attachment[data-state=busy] progress.attachment-progress');
  return bar !== null && bar.value > 0 && bar.value < bar.max;
}"""


async def throttle(network: Any, upload: int, download: int = -1) -> None:
    """The page's uploads and downloads limited to so many bytes a second (-1: no limit)."""
    conditions = {"offline": False, "latency": 0}
    await network.send(
        "Network.emulateNetworkConditions",
        {**conditions, "uploadThroughput": upload, "downloadThroughput": download},
    )


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_attachments_both_ways_with_progress_and_no_script_in_the_portal(
    browser: Any,  # noqa: F811
    portal: RunningServer,  # noqa: F811
    make_firm: MakeFirm,
    mailbox: Mailbox,  # noqa: F811
    layout: str,
) -> None:
    from playwright.async_api import Error, expect

    kit = await make_firm(name="Attach & Co")
    slug = await firm_slug(kit)
    base, ref = portal.base_url, kit.ref
    email, password = "ada.attach@harbour.test", "staple orbit lantern 42"
    await give_password(kit.db, kit.settings, kit.admin, email, password)
    big = Upload("passport-scan.bin", "application/octet-stream", os.urandom(4 * 1024 * 1024))
    svg = Upload(XSS_NAME, "image/svg+xml", SVG)
    html = Upload("statement.html", "text/html", HTML)
    statement = Upload("bank-statement.pdf", "application/pdf", os.urandom(3 * 1024 * 1024))
    mine = Upload("payslip.txt", "text/plain", b"Payslip for November\n" * 500)

    async with (
        browser_page(browser, layout) as (staff, staff_watch),
        browser_page(browser, layout) as (client, client_watch),
    ):
        dialogs: list[str] = []
        for page in (staff, client):
            page.on("dialog", lambda d: dialogs.append(d.message))
        await admin_signs_in(staff, base, slug, email, password, mailbox)
        await set_up_firm_keys(staff)
        mail = await invite_by_own_mail(staff, base, slug, ref, ("Cleo Client", "cleo@client.test"))
        await accept_link(client, mail.link, "seven quiet harbours")
        client_pane = client.locator(f"#thread-{ref}")
        await expect(client_pane).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)

        # --- Staff reply in the client's thread with two files; the upload is held.
        await staff.goto(f"{base}/?firm={slug}#/matter/{ref}")
        staff_pane = staff.locator(f"#thread-{ref}")
        await expect(staff_pane).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
        # the staff page's uploads crawl (the browser's own network throttling, as
        # DevTools does it): the progress bar is seen part-way, then the limit goes
        network = await staff.context.new_cdp_session(staff)
        await network.send("Network.enable")
        await throttle(network, 1_000_000)
        await choose_files(staff, ref, [big, svg, html])
        await staff.locator(f"#thread-text-{ref}").fill("Here is the form, and the diagram.")
        await staff.locator(f"#thread-composer-{ref} button[type=submit]").click()
        bar = staff.locator(f"#thread-composer-{ref} progress.attach-progress[data-phase=upload]")
        await expect(bar).to_be_visible(timeout=WAIT_MS)
        assert await bar.get_attribute("max") == str(len(big.data) + 21 + 16 * 64)
        await staff.wait_for_function(PART_WAY, timeout=WAIT_MS)
        await expect(staff.locator(f"#thread-composer-{ref} .attach-cancel")).to_be_visible()
        await staff_pane.locator(".attach-picker").scroll_into_view_if_needed()
        await staff.screenshot(path=str(SHOTS / f"staff-attach-{layout}.png"))
        if layout == "mobile":
            await fits(staff)
        await throttle(network, -1)
        sent = staff_pane.locator("li.item").filter(has=staff.locator(".message-attachments"))
        await expect(sent.locator("li.attachment")).to_have_count(3, timeout=WAIT_MS)
        await expect(staff.locator(f"#thread-composer-{ref} li.attach-file")).to_have_count(0)

        # --- The client sees it live: names and sizes as text, no element made of a name.
        item = client_pane.locator("li.item").filter(has=client.locator(".message-attachments"))
        await expect(item.locator("li.attachment")).to_have_count(3, timeout=WAIT_MS)
        big_row, svg_row = attachment(item, big.name), attachment(item, XSS_NAME)
        await expect(big_row.locator(".attachment-size")).to_have_text("4.2 MB")
        await expect(svg_row.locator(".attachment-name")).to_have_text(XSS_NAME)
        assert await client_pane.locator("img").count() == 0

        # --- Downloads: the same bytes, from blob: URLs; the page goes nowhere. The big
        # one comes slowly (the client's downloads throttled): its bar is seen part-way.
        before = client.url
        network = await client.context.new_cdp_session(client)
        await network.send("Network.enable")
        await throttle(network, -1, download=1_000_000)

        async def part_way() -> None:
            await client.wait_for_function(PART_WAY, timeout=WAIT_MS)
            await item.scroll_into_view_if_needed()
            await client.screenshot(path=str(SHOTS / f"client-attachment-{layout}.png"))
            if layout == "mobile":
                await fits(client)
            await throttle(network, -1)

        got = await download(client, big_row, part_way)
        assert got.data == big.data and got.url.startswith(f"blob:{base}/")
        got = await download(client, svg_row)
        assert got.data == SVG and got.url.startswith(f"blob:{base}/")
        assert got.suggested.endswith(".svg")  # the browser's own clean-up of the name aside
        got = await download(client, attachment(item, html.name))
        assert got.data == HTML and got.url.startswith(f"blob:{base}/")
        assert got.suggested == html.name
        # even opened as a page (its blob: URL pasted into a tab), it is only saved
        tab = await client.context.new_page()
        tab.on("dialog", lambda d: dialogs.append(d.message))
        async with tab.expect_download(timeout=WAIT_MS) as again:
            with contextlib.suppress(Error):  # "Download is starting": no document
                await tab.goto(got.url)
        assert await (await again.value).failure() is None
        assert await tab.evaluate("document.scripts.length") == 0
        await tab.close()
        assert client.url == before and len(client.context.pages) == 1
        assert await client.evaluate("window.xssRan === undefined")

        # --- The client replies with a file of her own; staff see it live and download it.
        await choose_files(client, ref, [mine])
        await client.locator(f"#thread-composer-{ref} button[type=submit]").click()
        theirs = staff_pane.locator("li.item").filter(has=staff.locator(".attachment-name"))
        row = attachment(theirs, mine.name)
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        assert (await download(staff, row)).data == mine.data
        # an edit of it keeps its file (an edit names none: the item's ids, the same descriptor)
        reply = client_pane.locator("li.item").filter(has=client.locator(".attachment-name"))
        reply = reply.filter(has_text=mine.name)
        await reply.get_by_role("button", name="Edit").click()
        await client.locator(f"#thread-text-{ref}").fill("My payslip, as asked.")
        await client.locator(f"#thread-composer-{ref} button[type=submit]").click()
        await expect(theirs.filter(has_text=mine.name)).to_have_attribute(
            "data-edited", "1", timeout=WAIT_MS
        )
        await expect(theirs.filter(has_text=mine.name).locator(".message-text")).to_have_text(
            "My payslip, as asked."
        )
        assert (await download(staff, row)).data == mine.data

        # --- A cancelled upload sends nothing; the composer keeps the file to try again.
        arrived, release = await held_upload(client)
        await choose_files(client, ref, [mine])
        await client.locator(f"#thread-text-{ref}").fill("Cancelled one")
        await client.locator(f"#thread-composer-{ref} button[type=submit]").click()
        await asyncio.wait_for(arrived.wait(), WAIT_MS / 1000)
        await client.locator(f"#thread-composer-{ref} .attach-cancel").click()
        status = client.locator(f"#thread-composer-{ref} .form-status")
        await expect(status).to_have_text("Upload cancelled. Nothing was sent.", timeout=WAIT_MS)
        release.set()
        await client.unroute("**/api/v1/matters/*/files")
        await expect(client.locator(f"#thread-composer-{ref} li.attach-file")).to_have_count(1)
        await client.locator(f"#thread-composer-{ref} .attach-remove").click()

        # --- Over the firm's file limit: refused in the limit's own words (the server
        # answers before it reads the body: the page still gets the answer, not a reset).
        async with api_client(portal) as http:
            limited = await http.patch(
                "/api/v1/firm", json={"file_max_bytes": 20_000}, headers=kit.auth("admin")
            )
            assert limited.status_code == 200, limited.text
        await choose_files(client, ref, [mine, statement])
        await client.locator(f"#thread-composer-{ref} button[type=submit]").click()
        await expect(status).to_have_text(
            f"Not sent: {statement.name} could not be uploaded"
            " (A file is too large to send. Send a smaller file, or split it.).",
            timeout=WAIT_MS,
        )
        await expect(client.locator(f"#thread-text-{ref}")).to_have_value("Cancelled one")
        # the matter's quota: no room left, said so
        async with api_client(portal) as http:
            limits = {"file_max_bytes": None, "portal_quota_bytes": 1000}
            limited = await http.patch("/api/v1/firm", json=limits, headers=kit.auth("admin"))
            assert limited.status_code == 200, limited.text
        await client.locator(f"#thread-composer-{ref} button[type=submit]").click()
        await expect(status).to_have_text(
            f"Not sent: {statement.name} could not be uploaded"
            " (This matter has no room left for more files. Ask the firm.).",
            timeout=WAIT_MS,
        )
        assert await client_pane.get_by_text("Cancelled one", exact=True).count() == 0

        assert dialogs == []
        # the admin's first sign-in asks for the authenticator code (401 on signin and me)
        expected = ("/api/v1/me", "/api/v1/signin")
        assert [p for p in staff_watch.problems if not p.endswith(expected)] == []
        assert [p for p in client_watch.problems if "/files" not in p] == []
