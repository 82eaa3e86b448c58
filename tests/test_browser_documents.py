"""The document checklist's screens in a real Chromium, at desktop and 390 × 844.

An end-to-end encrypted matter (the firm's keys set up by its org admin, the
client invited with the library as a staff browser would, docs/keys.md).
A staff member, signed in in one browser (approved by the org admin), adds
documents to the matter's checklist (the matter type's defaults: a passport
that blocks the next step; then a payslip type and a firm-provided credit
guide), selects two and adds them to the portal. The client, in another
browser, sees both requested live, and the passport named on her timeline
as what stands before the next step; she uploads a file against each, the
first through a throttled network (the browser's own upload throttling)
until the test has seen its progress bar part-way, with no sleeps. Staff
see both uploaded live (file names decrypted from the upload's envelope,
the passport downloaded: the same bytes), reject the payslip with a reason
(an envelope sealed in the page); the client reads the reason decrypted, as
text, and uploads again; staff accept both (the timeline's blocker goes),
and share the credit guide, which the client downloads (the same bytes).

Each upload is a Portal Doc for the matter's responsible staff member to review
(docs/reviews.md): the count in their navigation goes up live as the client
uploads (no reload: the staff page is the one it was) and down as staff
decide (a decision is the upload's review); after the re-upload they open the
review inbox from it, see the two Portal Doc rows, mark one reviewed (the
count goes down), open the matter from a row, and accepting both empties it.

A document type's label and the rejection's reason hold markup: both show
as text, no element is made of them, no script runs.

Screenshots: docs/screenshots/documents-client-*.png, documents-staff-*.png,
reviews-header-count-*.png and reviews-inbox-*.png.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from tests import test_browser_feed as feed_test
from tests.conftest import FirmKit, MakeFirm
from tests.support.browserfirm import accept_link
from tests.support.keyfirm import b64
from tests.support.logins import give_password, staff_email
from tests.support.server import RunningServer
from tests.test_browser_e2ee import (
    CLIENT_PASSWORD,
    LAYOUTS,
    SHOTS,
    STAFF_PASSWORD,
    api_client,
    e2ee_firm,
    invite_round,
    sign_in,
)
from tests.test_browser_timeline import fits
from tests.test_invites import _new_contact

pytestmark = pytest.mark.timeout(300)

browser = feed_test.browser
portal = feed_test.portal
PageWatch = feed_test.PageWatch
WAIT_MS = feed_test.WAIT_MS

PASSPORT = "Passport"
XSS_LABEL = "Payslip <img src=x onerror=alert('label')><b>bold</b>"
XSS_REASON = (
    "The photo page is cut off <img src=x onerror=alert('reason')><script>alert(1)</script>"
)
# an upload's bar shows some of the file sent, not all of it
PART_WAY = """() => {
  const bar = document.querySelector('li.doc-item progress.doc-progress:not([hidden])');
  return bar !== null && bar.value > 0 && bar.value < bar.max;
}"""


async def throttle(network: Any, upload: int) -> None:
    """The page's uploads limited to so many bytes a second (-1: no limit)."""
    await network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "uploadThroughput": upload, "downloadThroughput": -1},
    )


async def shot(page: Any, section: Any, who: str, name: str, layout: str) -> None:
    """The screen as the user sees it with ``section`` scrolled to the top (a full-page
    capture of a scrolled page repeats the sticky header over it)."""
    await section.evaluate("(node) => node.scrollIntoView({block: 'start'})")
    await page.screenshot(path=str(SHOTS / f"documents-{who}-{name}-{layout}.png"))


async def shot_inbox(page: Any, inbox: Any, layout: str) -> None:
    """The inbox under the bar with its count (the top of the page)."""
    await inbox.wait_for()
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"reviews-inbox-{layout}.png"))


async def blocking_type(http: httpx.AsyncClient, kit: FirmKit, passport: int) -> None:
    """A matter type whose defaults hold the passport, blocking step 2; the matter in
    its first phase (step 1), so the passport stands before the next step."""
    made = await http.post(
        "/api/v1/firm/matter-types",
        json={
            "name": "Visa",
            "steps": [{"name": "Documents"}, {"name": "Lodged"}],
            "phases": [{"name": "Collect", "step": 0}, {"name": "Submit", "step": 1}],
        },
        headers=kit.auth("admin"),
    )
    assert made.status_code == 201, made.text
    matter_type = made.json()["matter_type"]
    put = await http.put(
        f"/api/v1/firm/matter-types/{matter_type['id']}/documents",
        json={"documents": [{"type": passport, "blocks_step": 1}]},
        headers=kit.auth("admin"),
    )
    assert put.status_code == 200, put.text
    moved = await http.post(
        f"/api/v1/matters/{kit.ref}/phase",
        json={"phase": matter_type["phases"][0]["id"]},
        headers=kit.auth("staff"),
    )
    assert moved.status_code == 200, moved.text


def row(page: Any, ref: str, scope: str, label: str) -> Any:
    return page.locator(f"#{scope}-{ref} li.doc-item").filter(
        has=page.locator(".doc-label", has_text=label)
    )


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_documents_requested_uploaded_rejected_reuploaded_accepted(
    browser: Any,
    portal: RunningServer,
    make_firm: MakeFirm,
    settings: Any,
    layout: str,
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Checklist & Co")
    ref = kit.ref
    async with api_client(portal) as http:
        keys, slug = await e2ee_firm(http, kit, settings)
        contact_id = await _new_contact(http, kit)
        secret, token = await invite_round(http, kit, keys, contact_id, "own_mail")
        types = {}
        for label, provided in ((PASSPORT, False), (XSS_LABEL, False), ("Credit guide", True)):
            made = await http.post(
                "/api/v1/firm/document-types",
                json={"label": label, "is_disclosure": provided},
                headers=kit.auth("admin"),
            )
            assert made.status_code == 201, made.text
            types[label] = made.json()["document_type"]["id"]
        await blocking_type(http, kit, types[PASSPORT])

        client_context = await browser.new_context(**LAYOUTS[layout], accept_downloads=True)
        client = await client_context.new_page()
        client_watch = PageWatch(client)
        dialogs: list[str] = []
        client.on("dialog", lambda d: dialogs.append(d.message))
        frk = keys.world.frk.public.link
        await accept_link(
            client,
            f"{portal.base_url}/?firm={slug}#t={token}&r={b64(secret)}&frk={frk}",
            CLIENT_PASSWORD,
        )

        staff_context = await browser.new_context(**LAYOUTS[layout], accept_downloads=True)
        staff = await staff_context.new_page()
        staff_watch = PageWatch(staff)
        staff.on("dialog", lambda d: dialogs.append(d.message))
        # a staff member's first sign-in makes their identity; the org admin (the
        # library here) approves it, and the matter page can seal and open
        email = await staff_email(kit.db, kit.staff.id)
        await give_password(kit.db, settings, kit.staff, email, STAFF_PASSWORD)
        await sign_in(staff, staff_watch, portal.base_url, slug, email, STAFF_PASSWORD)
        await staff.goto(f"{portal.base_url}/?firm={slug}#/matter/{ref}")
        await expect(staff.locator(f"#write-state-{ref}")).to_contain_text(
            "waiting for approval", timeout=WAIT_MS
        )
        assert await keys.approve_pending() == [f"s{kit.staff.id}"]
        await staff.reload()
        checklist = staff.locator(f"#checklist-{ref}")
        await expect(checklist).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
        # the responsible staff member reviews what the client sends: nothing yet
        count = staff.locator("#review-count")
        await expect(count).to_have_attribute("data-open", "0", timeout=WAIT_MS)
        await staff.evaluate("window.sameStaffPage = true")  # gone if the page reloads

        # --- Staff add the matter type's documents (the passport, which blocks the next
        # step), another type and a firm-provided one; select two, add them to the portal.
        await checklist.locator("button.doc-defaults").click()
        await expect(row(staff, ref, "checklist", PASSPORT)).to_have_count(1, timeout=WAIT_MS)
        for label in (XSS_LABEL, "Credit guide"):
            await checklist.locator("select.doc-type").select_option(label=label)
            await checklist.locator("button.doc-add").click()
            await expect(row(staff, ref, "checklist", label)).to_have_count(1, timeout=WAIT_MS)
        for label in (PASSPORT, XSS_LABEL):
            await row(staff, ref, "checklist", label).locator("input.doc-select").check()
        await checklist.locator("button.doc-request").click()
        await expect(checklist.locator(".doc-count")).to_have_attribute(
            "data-open", "2", timeout=WAIT_MS
        )
        await expect(row(staff, ref, "checklist", XSS_LABEL).locator(".doc-label")).to_have_text(
            XSS_LABEL
        )

        # --- The client sees both requested, live, the label as text.
        docs = client.locator(f"#documents-{ref}")
        passport = row(client, ref, "documents", PASSPORT)
        payslip = row(client, ref, "documents", "Payslip")
        await expect(passport).to_have_attribute("data-status", "requested", timeout=WAIT_MS)
        await expect(payslip).to_have_attribute("data-status", "requested", timeout=WAIT_MS)
        await expect(payslip.locator(".doc-label")).to_have_text(XSS_LABEL)
        await expect(passport.locator(".doc-when")).to_contain_text("Requested")
        # the timeline says what stands before the next step
        blockers = client.locator(f"#timeline-{ref} .blocking-item")
        await expect(blockers).to_have_count(1, timeout=WAIT_MS)
        await expect(blockers).to_have_text("Passport Requested")
        await shot(client, client.locator(f"#timeline-{ref}"), "client", "requested", layout)
        assert await docs.locator("img, b, script").count() == 0

        # --- The first upload crawls (1 MB at 200 kB/s): its bar is seen part-way.
        scan = os.urandom(1024 * 1024)
        network = await client.context.new_cdp_session(client)
        await network.send("Network.enable")
        await throttle(network, 200_000)
        await passport.locator("input[type=file]").set_input_files(
            {"name": "passport-scan.pdf", "mimeType": "application/pdf", "buffer": scan}
        )
        await passport.locator("button.doc-send").click()
        await client.wait_for_function(PART_WAY, timeout=WAIT_MS)
        await shot(client, docs, "client", "uploading", layout)
        if layout == "mobile":
            await fits(client)
        await throttle(network, -1)
        await expect(passport).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)
        # a file over the firm's file limit (5 MiB of ciphertext) is refused in its own words
        await payslip.locator("input[type=file]").set_input_files(
            {"name": "huge.pdf", "mimeType": "application/pdf", "buffer": b"\0" * (5 << 20)}
        )
        await payslip.locator("button.doc-send").click()
        await expect(payslip.locator(".doc-upload-status")).to_have_text(
            "Not done: A file is too large to send. Send a smaller file, or split it.",
            timeout=WAIT_MS,
        )
        await expect(payslip).to_have_attribute("data-status", "requested")
        assert [p for p in client_watch.problems if "413" in p and p.endswith("/files")]
        client_watch.problems[:] = [p for p in client_watch.problems if "413" not in p]
        await payslip.locator("input[type=file]").set_input_files(
            {
                "name": "payslip <i>nov</i>.pdf",
                "mimeType": "application/pdf",
                "buffer": b"%PDF payslip",
            }
        )
        await payslip.locator("button.doc-send").click()
        await expect(payslip).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)

        # --- Staff see both uploaded live, the file names decrypted; reject the payslip.
        staff_passport = row(staff, ref, "checklist", PASSPORT)
        staff_payslip = row(staff, ref, "checklist", "Payslip")
        await expect(staff_passport).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)
        await expect(staff_payslip).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)
        await expect(staff_passport.locator(".doc-file-name")).to_have_text(
            "passport-scan.pdf", timeout=WAIT_MS
        )
        # two uploads, two Portal Docs to review: the count went up live, no reload
        await expect(count).to_have_attribute("data-open", "2", timeout=WAIT_MS)
        await expect(count.locator(".review-count-open")).to_have_text("2")
        assert await staff.evaluate("window.sameStaffPage") is True
        await staff.evaluate("window.scrollTo(0, 0)")
        await staff.screenshot(path=str(SHOTS / f"reviews-header-count-{layout}.png"))
        async with staff.expect_download() as got:
            await staff_passport.locator("button.doc-download").click()
        download = await got.value
        assert (await download.path()).read_bytes() == scan
        await staff_payslip.locator("button.doc-reject").click()
        await staff_payslip.locator("textarea.doc-reason-input").fill(XSS_REASON)
        await shot(staff, checklist, "staff", "reject", layout)
        await staff_payslip.locator("button.doc-confirm-reject").click()
        await expect(staff_payslip).to_have_attribute("data-status", "rejected", timeout=WAIT_MS)
        await expect(staff_payslip.locator(".doc-reason-text")).to_have_text(XSS_REASON)
        # deciding on an upload is reviewing it: the payslip's review left the count, live
        await expect(count).to_have_attribute("data-open", "1", timeout=WAIT_MS)

        # --- The client reads the reason (decrypted, as text) and uploads again.
        await expect(payslip).to_have_attribute("data-status", "rejected", timeout=WAIT_MS)
        await expect(payslip.locator(".doc-reason-text")).to_have_text(XSS_REASON, timeout=WAIT_MS)
        assert await docs.locator("img, b, i, script").count() == 0
        await shot(client, docs, "client", "rejected", layout)
        if layout == "mobile":
            await fits(client)
        await payslip.locator("input[type=file]").set_input_files(
            {"name": "payslip-full.pdf", "mimeType": "application/pdf", "buffer": b"%PDF whole"}
        )
        await payslip.locator("button.doc-send").click()
        await expect(payslip).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)

        # --- The reviewer opens the inbox from the count: two Portal Docs (the
        # passport, the payslip's second upload); marking one reviewed takes the
        # count down, live; a row opens its matter's page.
        await expect(count).to_have_attribute("data-open", "2", timeout=WAIT_MS)
        assert await staff.evaluate("window.sameStaffPage") is True
        await count.click()
        inbox = staff.locator("#review-inbox")
        await expect(inbox).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
        reviews = inbox.locator("li.review-row")
        await expect(reviews).to_have_count(2)
        await expect(reviews.locator(".review-kind")).to_have_text(["Portal Doc"] * 2)
        await expect(reviews.locator(".review-open")).to_have_text(
            [f"Visa application ({ref})"] * 2
        )
        await expect(reviews.first).to_have_attribute("data-due", "1")
        await shot_inbox(staff, inbox, layout)
        if layout == "mobile":
            await fits(staff)
        await reviews.first.locator("button.review-done").click()
        await expect(reviews).to_have_count(1, timeout=WAIT_MS)
        await expect(count).to_have_attribute("data-open", "1", timeout=WAIT_MS)
        await expect(staff.locator("#review-status")).to_have_text("Marked reviewed.")
        await reviews.first.locator(".review-open").click()
        await expect(checklist).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)

        # --- Staff accept both (the last review closes with its decision); share
        # the credit guide.
        await expect(staff_payslip).to_have_attribute("data-status", "uploaded", timeout=WAIT_MS)
        for item in (staff_passport, staff_payslip):
            await item.locator("button.doc-accept").click()
            await expect(item).to_have_attribute("data-status", "accepted", timeout=WAIT_MS)
        await expect(checklist.locator(".doc-count")).to_have_attribute("data-open", "0")
        await expect(count).to_have_attribute("data-open", "0", timeout=WAIT_MS)
        guide = row(staff, ref, "checklist", "Credit guide")
        guide_bytes = b"%PDF credit guide " * 100
        await guide.locator("input[type=file]").set_input_files(
            {"name": "credit-guide.pdf", "mimeType": "application/pdf", "buffer": guide_bytes}
        )
        await guide.locator("button.doc-share").click()
        await expect(guide).to_have_attribute("data-status", "shared", timeout=WAIT_MS)
        await shot(staff, checklist, "staff", "checklist", layout)
        if layout == "mobile":
            await fits(staff)

        # --- The client sees both accepted and downloads the firm's document.
        await expect(passport).to_have_attribute("data-status", "accepted", timeout=WAIT_MS)
        await expect(payslip).to_have_attribute("data-status", "accepted", timeout=WAIT_MS)
        await expect(blockers).to_have_count(0, timeout=WAIT_MS)
        shared = row(client, ref, "documents", "Credit guide")
        await expect(shared.locator("button.doc-download")).to_be_visible(timeout=WAIT_MS)
        async with client.expect_download() as got:
            await shared.locator("button.doc-download").click()
        download = await got.value
        assert download.suggested_filename == "credit-guide.pdf"
        assert (await download.path()).read_bytes() == guide_bytes
        await shot(client, docs, "client", "accepted", layout)
        if layout == "mobile":
            await fits(client)

        # the matter's log tells of each change in a sentence, its envelope not opened there
        log = client.locator(f"#matter-{ref} li.event[data-kind=document]")
        await expect(log.locator(".doc-event").first).to_have_text("Documents requested")
        assert await log.locator(".message-body").count() == 0
        assert dialogs == []
        assert client_watch.problems == []
        assert staff_watch.problems == []
        await client_context.close()
        await staff_context.close()
