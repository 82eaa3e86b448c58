"""Internal-only tags in a real Chromium, at desktop and phone size (390 × 844).

Two staff members sign in in their own browsers (their pages make and
register their keys; the org admin, here the test with the library, approves
them and wraps the firm keys to them), a client accepts an own-mail invite.
The first staff member opens the client's thread and tags the client's question with a new tag
whose name is markup; the name is sealed in the page under the firm internal
key (static/shared/tagnames.js) and the server stores only ciphertext. It
shows as text in the item's chip and in the thread list's filter, after a
reload too; the second staff member's page, open on the same thread, learns
the new tag live and reads the same name. The client's page never shows it,
checked after a later message reached it; neither name is in the
database, the file store or the server log. Screenshots:
docs/screenshots/staff-tags-{desktop,phone}.png.

"""

from __future__ import annotations

from typing import Any

import pytest

from rtportal.base64url import decode as b64decode
from rtportal.crypto.certs import Certificate
from rtportal.crypto.keys import FirmEscrowKey
from rtportal.db.models import Firm
from rtportal.demo import create_staff
from rtportal.sdk.actor import Actor
from rtportal.sdk.tags import new_tag_id, open_tag_name, seal_tag_name
from rtportal.settings import Settings
from tests import test_browser_e2ee as e2ee
from tests import test_browser_feed as feed_test
from tests.conftest import MakeFirm
from tests.support.browserfirm import accept_link
from tests.support.canary import canary, log_lines, search  # noqa: F401 - log_lines: a fixture
from tests.support.keyfirm import b64, real_now_ms
from tests.support.logins import give_password, staff_email
from tests.support.server import RunningServer
from tests.support.threadpage import open_thread
from tests.test_browser_feed import PageWatch
from tests.test_browser_timeline import fits
from tests.test_invites import _new_contact

pytestmark = pytest.mark.timeout(600)  # three browsers and a server on 2 shared cores

browser = feed_test.browser  # Debian's Chromium (fails in CI when missing, never downloaded)
portal = feed_test.portal
WAIT_MS, SHOTS = feed_test.WAIT_MS, e2ee.SHOTS
LAYOUTS = {"desktop": e2ee.LAYOUTS["desktop"], "phone": e2ee.LAYOUTS["mobile"]}  # 390 × 844
# markup, and unique: the database, file store and server log are searched for it
NAME = f"Urgent <img src=x onerror=alert(1)> {canary('tag-name')}"
SDK_NAME = f"Visa <b>lodged</b> — SDK {canary('sdk-tag-name')}"
PASSWORD = e2ee.STAFF_PASSWORD


async def staff_page(
    browser: Any, layout: str, base: str, slug: str, email: str, dialogs: list[str]
) -> tuple[Any, Any, PageWatch]:
    """A staff member signed in in a browser of their own (the page registers their key)."""
    context = await browser.new_context(**LAYOUTS[layout])
    page = await context.new_page()
    page.on("dialog", lambda d: dialogs.append(d.message))
    watch = PageWatch(page)
    await e2ee.sign_in(page, watch, base, slug, email, PASSWORD)
    return context, page, watch


@pytest.mark.parametrize("layout", ["desktop", "phone"])
async def test_staff_name_tags_in_the_page_and_only_staff_read_them(
    log_lines: list[str],  # noqa: F811 - first: the log from the server's start
    layout: str,
    settings: Settings,
    browser: Any,
    portal: RunningServer,
    make_firm: MakeFirm,
) -> None:
    from playwright.async_api import expect

    dialogs: list[str] = []  # an alert() the markup ran would land here
    kit = await make_firm(name="Tags & Co")
    ref, base = kit.ref, portal.base_url
    async with e2ee.api_client(portal) as http:
        keys, slug = await e2ee.e2ee_firm(http, kit, settings)
        contact_id = await _new_contact(http, kit)
        secret, token = await e2ee.invite_round(http, kit, keys, contact_id, "own_mail")
        thread = f"welcome-{contact_id}"

        # The client accepts and opens the welcome thread.
        client_context = await browser.new_context(**LAYOUTS[layout])
        client = await client_context.new_page()
        client.on("dialog", lambda d: dialogs.append(d.message))
        client_watch = PageWatch(client)
        frk = keys.world.frk.public.link
        link = f"{base}/?firm={slug}#t={token}&r={b64(secret)}&frk={frk}"
        await accept_link(client, link, e2ee.CLIENT_PASSWORD)
        # The client asks a question: the item the staff will tag.
        question = "When will my visa be decided?"
        await client.locator(f"#thread-text-{ref}").fill(question)
        await client.locator(f"#matter-{ref} .composer button[type=submit]").click()
        asked = client.locator(f"#matter-{ref} .message-body[data-sender=c{contact_id}]")
        await expect(asked.locator(".message-text")).to_have_text(question, timeout=WAIT_MS)

        # Two staff members, each with a password; the second is new to the firm.
        async with kit.db.write() as session:
            firm = await session.get(Firm, kit.firm_id)
            assert firm is not None
            tess = await create_staff(
                session, firm, email=f"tess{kit.firm_id}@firm.test", display_name="Tess Tagger"
            )
        emails = [await staff_email(kit.db, kit.staff.id), f"tess{kit.firm_id}@firm.test"]
        await give_password(kit.db, settings, kit.staff, emails[0], PASSWORD)
        await give_password(kit.db, settings, tess, emails[1], PASSWORD)
        pages = [await staff_page(browser, layout, base, slug, e, dialogs) for e in emails]
        for _, page, _ in pages:
            await page.goto(f"{base}/?firm={slug}#/matter/{ref}")
            await expect(page.locator(f"#write-state-{ref}")).to_contain_text(
                "waiting for approval", timeout=WAIT_MS
            )
        approved = await keys.approve_pending()
        assert sorted(approved) == sorted([f"s{kit.staff.id}", f"s{tess.id}"])
        (_, sam, sam_watch), (_, tes, tes_watch) = pages
        for page in (sam, tes):
            await page.reload()  # the firm keys wrapped to them since
        # The second staff member has the thread open before the tag exists.
        tes_pane = await open_thread(tes, ref, thread)
        sam_pane = await open_thread(sam, ref, thread)
        item = f"li.item[data-item^='c{contact_id}.']"  # the client's question
        question_row = sam_pane.locator(item)
        await expect(question_row.locator(".message-text")).to_have_text(question, timeout=WAIT_MS)

        # --- Sam creates the tag on the client's question: sealed in the page, shown as text.
        tags = question_row.locator(".item-tags")
        await tags.locator("input.tag-new").fill(NAME)
        await tags.locator("button.tag-create").click()
        chip = tags.locator("li.tag-chip")
        await expect(chip.locator(".tag-name")).to_have_text(NAME, timeout=WAIT_MS)
        assert await sam_pane.locator(".item-tags img").count() == 0
        tag_filter = sam.locator(f"#tag-filter-{ref}")
        await expect(tag_filter.locator("option")).to_contain_text([NAME])
        tag_id = await chip.get_attribute("data-tag")
        assert tag_id is not None and len(tag_id) == 22
        # the thread at the top of the screen: its tagged question and the list's filter
        await sam.locator(f"#threads-{ref}").evaluate(
            "e => window.scrollBy(0, e.getBoundingClientRect().top"
            " - document.querySelector('header').getBoundingClientRect().bottom - 8)"
        )
        await sam.screenshot(path=str(SHOTS / f"staff-tags-{layout}.png"))
        if layout == "phone":
            await fits(sam)  # no sideways scrolling on a phone
            # on a phone the open thread replaces the list: back to it for the filter
            await sam_pane.locator(".thread-back").click()
        # The filter shows the tagged thread.
        await tag_filter.select_option(tag_id)
        await expect(sam.locator(f"#thread-list-{ref} li.thread-row")).to_have_count(1)
        await expect(
            sam.locator(f"#thread-list-{ref} li.thread-row[data-thread='{thread}']")
        ).to_be_visible()

        # --- The server holds ciphertext only; the SDK reads the browser's name.
        listed = (await http.get("/api/v1/firm/tags", headers=kit.auth("admin"))).json()["tags"]
        assert [t["tag"] for t in listed] == [tag_id]
        blob = b64decode(listed[0]["name_blob"], 1024)
        assert blob is not None and b"onerror" not in blob and b"Urgent" not in blob
        directory = (await http.get("/api/v1/keys/firm", headers=kit.auth("admin"))).json()
        d = keys.world.directory()
        for text in directory["certs"]:
            raw = b64decode(text, 1 << 16)
            assert raw is not None
            cert = Certificate.decode(raw)
            if cert.body.user not in keys.world.certs:
                d.add_certificate(cert, real_now_ms())
        admin = Actor(slug, keys.admin, keys.world.ids[keys.admin], {1: keys.world.fek})
        assert open_tag_name(d, admin, blob, tag=tag_id, now_ms=real_now_ms()) == NAME
        # and another firm key does not open it
        stranger = Actor(slug, keys.admin, keys.world.ids[keys.admin])
        stranger.firm_keys[1] = FirmEscrowKey.generate(slug, 1)
        with pytest.raises(Exception, match="decrypt"):
            open_tag_name(d, stranger, blob, tag=tag_id, now_ms=real_now_ms())

        # --- Tess's page, open on the thread, learns the tag live and reads the same name.
        tes_chip = tes_pane.locator(f"{item} li.tag-chip[data-tag='{tag_id}']")
        await expect(tes_chip.locator(".tag-name")).to_have_text(NAME, timeout=WAIT_MS)
        await expect(tes.locator(f"#tag-filter-{ref} option")).to_contain_text([NAME])

        # --- A name the SDK sealed (the admin) reads in the pages too.
        sdk_tag = new_tag_id()
        env = seal_tag_name(d, admin, tag=sdk_tag, name=SDK_NAME, now_ms=real_now_ms())
        made = await http.post(
            "/api/v1/firm/tags",
            json={"tag": sdk_tag, "name_blob": b64(env.encode())},
            headers=kit.auth("admin"),
        )
        assert made.status_code == 201, made.text

        # --- Sam reloads: the names come from the server's ciphertext again.
        await sam.reload()
        sam_pane = await open_thread(sam, ref, thread)
        chip = sam_pane.locator(f"{item} li.tag-chip[data-tag='{tag_id}']")
        await expect(chip.locator(".tag-name")).to_have_text(NAME, timeout=WAIT_MS)
        await expect(sam.locator(f"#tag-filter-{ref} option")).to_contain_text(
            ["All threads", NAME, SDK_NAME]
        )
        add = sam_pane.locator(f"{item} select.tag-add")
        await add.select_option(sdk_tag)
        sdk_chip = sam_pane.locator(f"li.tag-chip[data-tag='{sdk_tag}'] .tag-name")
        await expect(sdk_chip).to_have_text(SDK_NAME, timeout=WAIT_MS)
        assert await sam_pane.locator(".item-tags b, .item-tags img").count() == 0

        # --- A later message reaches the client's page (the admin's, sealed with the
        # library as a staff browser would): by then the page has had every chance to
        # show a tag, and shows none.
        later = "We received your documents."
        await e2ee.post_blob(
            http, kit, thread, keys.seal_body(keys.admin, thread, later), who="admin"
        )
        await expect(
            client.locator(f"#matter-{ref} .message-text").filter(has_text=later)
        ).to_be_visible(timeout=WAIT_MS)
        content = await client.content()
        for needle in ("onerror", "Urgent", "lodged", tag_id, sdk_tag, "tag-chip", "tag-filter"):
            assert needle not in content, needle

        assert dialogs == []
        assert client_watch.problems == []
        assert sam_watch.problems == [] and tes_watch.problems == []
        for context in (client_context, *(c for c, _, _ in pages)):
            await context.close()

    # --- The names typed in the page and given to the SDK are stored and logged nowhere.
    stacks = await search(
        kit.settings.database_url,
        kit.settings.files_dir,
        log_lines,
        [NAME.encode(), SDK_NAME.encode()],
    )
    assert stacks[0].data and log_lines  # the searches see what is there
    assert [(s.what, s.hits) for s in stacks] == [(s.what, 0) for s in stacks]
