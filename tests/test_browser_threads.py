"""The threads journey of issue 12 in a real Chromium, at desktop and phone size (390 × 844).

An end-to-end encrypted firm; a matter with two client applicants invited in
one own-mail round, both accepting with a password: Mei may see the other
applicants, Omar may not (his invite says so), so a thread addressed to Mei
alone is none of Omar's business. A staff member signs in in a third
browser (their page registers a key; the org admin, here the test with the
library, approves it) and:

- asks for a new thread while his page re-reads the keys (a `keys` event;
  the matter's key chain held back in the browser): the form stays, and what
  he sends is sealed once the keys are read;
- opens a new client thread addressed to Mei only (the recipients
  checkboxes): Mei's page shows it live (on a phone, counted on the open
  thread's back button); Omar's never shows it nor any hint
  of it (thread rows, unread counts, websocket frames), checked after later
  events that did reach him;
- sees "Mei Chen is typing…" while Mei types her reply, before she sends it
  (just after typing in her welcome thread), then the reply itself live;
- both pages show read receipts ("Seen by …");
- adds an internal note inside the client thread and a tag on Mei's reply:
  Mei's page never shows either, and her unread count does not move for the
  note (her page is on the thread list when it is written);
- moves the matter's phase: both clients' timelines move live to the mapped
  step, never showing a phase name.

Every wait is Playwright's ``expect``: no sleeps. Screenshots:
docs/screenshots/threads-{arrived,typing,staff,client,other-applicant}-{desktop,phone}.png.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from rtportal.settings import Settings
from tests import test_browser_e2ee as e2ee
from tests import test_browser_feed as feed_test
from tests.conftest import FirmKit, MakeFirm
from tests.support.browserfirm import accept_link
from tests.support.keyfirm import KeyFirm, b64
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

STEPS = [
    ("Preparing", "We gather your documents and check them."),
    ("Lodged", "Your application is with the department."),
]
# internal phase names: markers that must never reach a client's page
PHASES = [("INTERNAL intake", 0), ("INTERNAL lodgement", 1)]
SUBJECT = "Your passport scan"
OPENER = "Mei, could you send a clearer scan of your passport's photo page?"
REPLY = "Of course, I will send it tonight."
NOTE = "INTERNAL NOTE: check the scan against the visa form"
TAG = "INTERNAL TAG passport"


class FrameLog:
    """Every websocket frame a page receives, as text (what a client was told)."""

    def __init__(self, page: Any) -> None:
        self.frames: list[str] = []
        self.sent: list[str] = []  # what the page said (a failure's explanation)
        page.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        ws.on("framereceived", lambda payload: self.frames.append(str(payload)))
        ws.on("framesent", lambda payload: self.sent.append(str(payload)))

    def parsed(self) -> list[dict[str, Any]]:
        out = []
        for text in self.frames:
            try:
                frame = json.loads(text)
            except ValueError:
                continue
            if isinstance(frame, dict):
                out.append(frame)
        return out


def names_contact(frame: Any, contact_id: int, name: str) -> bool:
    """Whether a parsed websocket frame names the contact in any of the ways frames name
    people: the user id ``c<id>`` (a receipt's ``reader``, a typing frame's ``who``, an
    item id's prefix ``c<id>.``), the contact id (an actor's or principal's ``{"kind":
    "contact", "id"}``, a ``to`` list), the welcome thread ``welcome-<id>``, the display
    name; in values and keys alike. Compared as values, never as text: a short user id
    such as ``c2`` is in many a random cursor."""
    if isinstance(frame, dict):
        if frame.get("kind") == "contact" and frame.get("id") == contact_id:
            return True
        to = frame.get("to")
        if isinstance(to, list) and contact_id in to:
            return True
        return any(
            names_contact(k, contact_id, name) or names_contact(v, contact_id, name)
            for k, v in frame.items()
        )
    if isinstance(frame, list):
        return any(names_contact(v, contact_id, name) for v in frame)
    if isinstance(frame, str):
        uid = f"c{contact_id}"
        return (
            frame in (uid, f"welcome-{contact_id}") or frame.startswith(f"{uid}.") or name in frame
        )
    return False


def test_a_frame_names_a_contact_by_value_never_by_letters() -> None:
    """The check of Omar's frames below: every way a frame can name Mei (contact 2) is
    found, none of which the JSON string ``"c2"`` alone finds but the first; the letters
    in a cursor or another contact's id are not."""
    found = [
        {"type": "receipt", "thread": "t", "reader": "c2", "name": "M", "upto": "tok"},
        {"type": "event", "actor": {"kind": "contact", "id": 2, "name": "M"}, "payload": {}},
        {"type": "event", "actor": {"kind": "staff", "id": 1}, "payload": {"to": [3, 2]}},
        {"type": "event", "payload": {"item": "s1.AbC", "parent": "c2.AbC", "thread": "t"}},
        {"type": "typing", "thread": "welcome-2", "who": "s1", "name": "Sam"},
        {"type": "unread", "threads": {"welcome-2": 1}},
        {"type": "receipt", "thread": "t", "reader": "s1", "name": "Mei Chen"},
    ]
    for frame in found:
        assert names_contact(frame, 2, "Mei Chen"), frame
    assert [f for f in found if json.dumps("c2") in json.dumps(f)] == found[:1]
    for frame in (
        {"type": "subscribed", "head": "Xc2c2Y-c2"},
        {"type": "event", "actor": {"kind": "staff", "id": 2}, "payload": {"to": [3]}},
        {"type": "event", "payload": {"item": "c22.x", "thread": "welcome-22", "to": [22]}},
        {"type": "typing", "thread": "t", "who": "c3", "name": "Omar Haddad"},
    ):
        assert not names_contact(frame, 2, "Mei Chen"), frame


def invite_two(keys: KeyFirm, mei: int, omar: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One invite round for both applicants as the staff browser makes it: both
    certified, one epoch with both, a welcome each. Omar may not see other applicants."""
    secrets = {f"c{cid}": keys.invite_client(f"c{cid}") for cid in (mei, omar)}
    _, epoch = keys.epoch_body((f"c{mei}", f"c{omar}"), creator=keys.admin)
    welcome = {
        str(cid): b64(keys.seal_body(keys.admin, f"welcome-{cid}", e2ee.WELCOME, subject="Welcome"))
        for cid in (mei, omar)
    }
    body = {
        "invites": [
            {"contact_id": mei, "method": "email", "see_applicants": True},
            {"contact_id": omar, "method": "email", "see_applicants": False},
        ],
        "crypto": {
            "delivery": "own_mail",
            "certs": [keys.cert_of(f"c{mei}"), keys.cert_of(f"c{omar}")],
            "epoch": epoch,
            "welcome": welcome,
        },
    }
    return body, secrets


async def matter_type(http: httpx.AsyncClient, kit: FirmKit) -> dict[str, Any]:
    """A matter type made by the org admin (its editor has its own journey)."""
    body = {
        "name": "Visa application",
        "steps": [{"name": n, "description": d} for n, d in STEPS],
        "phases": [{"name": n, "step": s} for n, s in PHASES],
    }
    made = await http.post("/api/v1/firm/matter-types", json=body, headers=kit.auth("admin"))
    assert made.status_code == 201, made.text
    made_type: dict[str, Any] = made.json()["matter_type"]
    return made_type


async def new_page(browser: Any, layout: str) -> tuple[Any, Any, PageWatch, FrameLog]:
    context = await browser.new_context(**LAYOUTS[layout])
    page = await context.new_page()
    return context, page, PageWatch(page), FrameLog(page)


async def unread_rows(page: Any, ref: str) -> dict[str, str]:
    """The thread list as the page shows it: thread id -> its unread count."""
    rows = page.locator(f"#thread-list-{ref} li.thread-row")
    found: dict[str, str] = {}
    for i in range(await rows.count()):
        row = rows.nth(i)
        found[await row.get_attribute("data-thread") or ""] = (
            await row.get_attribute("data-unread") or ""
        )
    return found


async def server_unread(page: Any, ref: str) -> dict[str, Any]:
    """The page's own session asks the server for its unread counts."""
    answer: dict[str, Any] = await page.evaluate(
        "async (ref) => (await fetch(`/api/v1/matters/${ref}/unread`)).json()", ref
    )
    return answer


async def to_list(page: Any, ref: str) -> None:
    """On a phone an open thread replaces the list: back to it (a desktop shows both)."""
    back = page.locator(f"#thread-{ref} .thread-back")
    if await back.is_visible():
        await back.click()


async def shot(page: Any, name: str, layout: str, top: Any) -> None:
    """The screen with ``top`` (a locator) just under the sticky header."""
    await top.evaluate(
        "e => window.scrollBy(0, e.getBoundingClientRect().top"
        " - document.querySelector('header').getBoundingClientRect().bottom - 8)"
    )
    await page.screenshot(path=str(SHOTS / f"threads-{name}-{layout}.png"))


@contextmanager
def no_dialogs(pages: list[Any]) -> Iterator[list[str]]:
    dialogs: list[str] = []
    for page in pages:
        page.on("dialog", lambda d: dialogs.append(d.message))
    yield dialogs


@pytest.mark.parametrize("layout", ["desktop", "phone"])
async def test_thread_to_one_applicant_typing_receipts_notes_tags_and_timeline(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, settings: Settings, layout: str
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Threads & Co")
    ref, base = kit.ref, portal.base_url
    contexts: list[Any] = []
    async with e2ee.api_client(portal) as http:
        keys, slug = await e2ee_firm_with_type(http, kit, settings)
        mei_id = await _new_contact(http, kit, "Mei Chen")
        omar_id = await _new_contact(http, kit, "Omar Haddad")
        mei_uid, omar_uid = f"c{mei_id}", f"c{omar_id}"
        body, secrets = invite_two(keys, mei_id, omar_id)
        sent = await http.post(
            f"/api/v1/matters/{ref}/invites", json=body, headers=kit.auth("admin")
        )
        assert sent.status_code == 201, sent.text
        tokens = {link["contact_id"]: link["token"] for link in sent.json()["links"]}
        frk = keys.world.frk.public.link

        # --- Both applicants accept with a password; each lands in their welcome thread.
        clients = {}
        for cid, uid in ((mei_id, mei_uid), (omar_id, omar_uid)):
            context, page, watch, frames = await new_page(browser, layout)
            contexts.append(context)
            link = f"{base}/?firm={slug}#t={tokens[cid]}&r={b64(secrets[uid])}&frk={frk}"
            await accept_link(page, link, e2ee.CLIENT_PASSWORD)
            pane = page.locator(f"#thread-{ref}")
            await expect(pane).to_have_attribute("data-thread", f"welcome-{cid}", timeout=WAIT_MS)
            await expect(pane.locator(".message-text")).to_have_text(e2ee.WELCOME, timeout=WAIT_MS)
            clients[cid] = (page, watch, frames)
        (mei, mei_watch, mei_frames), (omar, omar_watch, omar_frames) = (
            clients[mei_id],
            clients[omar_id],
        )
        timeline = {p: p.locator(f"#timeline-{ref}") for p in (mei, omar)}
        for shown in timeline.values():
            await expect(shown).to_have_attribute("data-current", "0", timeout=WAIT_MS)

        # --- The staff member signs in; the org admin approves their key.
        email = await staff_email(kit.db, kit.staff.id)
        await give_password(kit.db, settings, kit.staff, email, e2ee.STAFF_PASSWORD)
        context, sam, sam_watch, sam_frames = await new_page(browser, layout)
        contexts.append(context)
        await e2ee.sign_in(sam, sam_watch, base, slug, email, e2ee.STAFF_PASSWORD)
        await sam.goto(f"{base}/?firm={slug}#/matter/{ref}")
        await expect(sam.locator(f"#write-state-{ref}")).to_contain_text(
            "waiting for approval", timeout=WAIT_MS
        )
        assert await keys.approve_pending() == [f"s{kit.staff.id}"]
        await sam.reload()
        await expect(sam.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

        with no_dialogs([mei, omar, sam]) as dialogs:
            # Omar has read his welcome (his page opened it): one thread, nothing unread
            omar_welcome = omar.locator(f"#thread-list-{ref} li.thread-row")
            await expect(omar_welcome).to_have_attribute("data-unread", "0", timeout=WAIT_MS)
            omar_before = await unread_rows(omar, ref)
            assert omar_before == {f"welcome-{omar_id}": "0"}

            # --- A new client thread addressed to Mei alone.
            # (the newest thread opens by itself where the list stays beside it; on a
            # phone with the two welcome threads the list comes first)
            await expect(sam.locator(f"#thread-list-{ref} li.thread-row")).to_have_count(2)
            if layout == "desktop":
                await expect(sam.locator(f"#thread-{ref}")).to_have_attribute(
                    "data-loaded", "1", timeout=WAIT_MS
                )
            await to_list(sam, ref)
            # the two welcome threads share a title: the list says whose each is
            for cid, name in ((mei_id, "Mei Chen"), (omar_id, "Omar Haddad")):
                row = sam.locator(f"#thread-list-{ref} li.thread-row[data-thread='welcome-{cid}']")
                await expect(row.locator(".thread-to")).to_have_text(f"To: {name}", timeout=WAIT_MS)
            # The firm's revocation list is renewed (a `keys` event): Sam's page reads the
            # firm's keys and the matter's again, the matter's held back here while he
            # writes a new thread: the form stays (no notice comes and goes under his
            # hands), and what he sends is sealed once the matter's keys are read.
            keys_held = asyncio.Event()

            async def hold(route: Any) -> None:
                await keys_held.wait()
                await route.continue_()

            await sam.route(f"**/api/v1/keys/matters/{ref}*", hold)
            async with sam.expect_request(f"**/api/v1/keys/matters/{ref}*"):
                await keys.put_revocations([])
            await sam.locator(f"#new-thread-{ref}").click(timeout=WAIT_MS)
            await expect(sam.locator(f"#thread-subject-{ref}")).to_be_visible(timeout=WAIT_MS)
            await expect(sam.locator(f"#thread-{ref} .key-notice")).to_have_count(0)
            recipients = sam.locator(f"#recipients-{ref}")
            await expect(recipients.locator("input.recipient")).to_have_count(2, timeout=WAIT_MS)
            await recipients.locator(f"input.recipient[value='{mei_id}']").check()
            await expect(
                recipients.locator(f"input.recipient[value='{omar_id}']")
            ).not_to_be_checked()
            await sam.locator(f"#thread-subject-{ref}").fill(SUBJECT)
            await sam.locator(f"#thread-text-{ref}").fill(OPENER)
            await sam.locator(f"#thread-composer-{ref} button[type=submit]").click()
            await expect(sam.locator(f"#thread-composer-{ref} .form-status")).to_have_text(
                "Encrypting and sending…"
            )
            keys_held.set()
            sam_pane = sam.locator(f"#thread-{ref}")
            await expect(sam_pane).to_have_attribute("data-kind", "client", timeout=WAIT_MS)
            thread = await sam_pane.get_attribute("data-thread")
            assert thread and not thread.startswith("welcome-")
            await expect(sam_pane.locator(".thread-to")).to_have_text(
                "To: Mei Chen", timeout=WAIT_MS
            )

            # Mei's page shows it live, unread, titled by its (decrypted) subject.
            mei_row = mei.locator(f"#thread-list-{ref} li.thread-row[data-thread='{thread}']")
            await expect(mei_row).to_have_attribute("data-unread", "1", timeout=WAIT_MS)
            await expect(mei_row.locator(".thread-title")).to_have_text(SUBJECT, timeout=WAIT_MS)
            # the welcome thread she is reading says so too (on a phone it hides the list)
            back_count = mei.locator(f"#thread-{ref} .thread-back .unread-count")
            await expect(back_count).to_have_text("1")
            await shot(mei, "arrived", layout, mei.locator(f"#threads-{ref}"))
            # She had begun a note in her welcome thread (a typing frame there), and
            # turns to the new thread at once: her typing there must show all the same.
            await mei.locator(f"#thread-text-{ref}").fill("About my visa")
            welcome_typing = sam.locator(
                f"#thread-list-{ref} li.thread-row[data-thread='welcome-{mei_id}'] .thread-typing"
            )
            if layout == "desktop":  # (a phone shows Sam the open thread, not the list)
                await expect(welcome_typing).to_have_text("Mei Chen is typing…", timeout=WAIT_MS)
            mei_pane = await open_thread(mei, ref, thread)
            await expect(mei_pane.locator(".message-text")).to_have_text(OPENER, timeout=WAIT_MS)

            # --- Mei types: the staff page says so before anything is sent.
            # (typed key by key, as a person does: a typing frame is best-effort, one
            # per 3 s while she types, so one lost under load is followed by another)
            await mei.locator(f"#thread-text-{ref}").press_sequentially(REPLY, delay=150)
            typing = sam.locator(f"#typing-{ref}")
            try:
                await expect(typing).to_have_text("Mei Chen is typing…", timeout=WAIT_MS)
            except AssertionError as exc:
                said = [f for f in mei_frames.sent if "typing" in f]
                told = [f for f in sam_frames.frames if "typing" in f]
                mei_told = [f for f in mei_frames.frames if '"error"' in f]
                why = f"Mei sent {said}\nSam got {told}\nMei errors {mei_told}"
                raise AssertionError(f"{exc}\n{why}") from exc
            await shot(sam, "typing", layout, sam.locator(f"#threads-{ref}"))
            assert await sam_pane.locator(".message-text").filter(has_text=REPLY).count() == 0
            await mei.locator(f"#thread-composer-{ref} button[type=submit]").click()
            reply_row = sam_pane.locator(f"li.item[data-item^='{mei_uid}.']")
            await expect(reply_row.locator(".message-text")).to_have_text(REPLY, timeout=WAIT_MS)
            await expect(typing).to_have_text("")  # her item ends her typing

            # --- Read receipts on both sides: Mei read the opener, Sam read her reply.
            opener_row = sam_pane.locator("li.item").first
            await expect(opener_row.locator(".seen-by")).to_have_text(
                "Seen by Mei Chen", timeout=WAIT_MS
            )
            mine = mei_pane.locator(f"li.item[data-item^='{mei_uid}.']")
            await expect(mine.locator(".seen-by")).to_have_text(
                "Seen by Sam Staff", timeout=WAIT_MS
            )

            # --- Mei reads her welcome thread again; Sam writes an internal note in the
            # new one (where a reply would count as unread for her) and tags her reply.
            await open_thread(mei, ref, f"welcome-{mei_id}")
            await expect(mei_row).to_have_attribute("data-unread", "0")
            await sam.locator(f"#thread-note-{ref}").check()  # before typing: internal typing
            await sam.locator(f"#thread-text-{ref}").fill(NOTE)
            await sam.locator(f"#thread-composer-{ref} button[type=submit]").click()
            note_row = sam_pane.locator("li.item[data-internal='1']")
            await expect(note_row.locator(".message-text")).to_have_text(NOTE, timeout=WAIT_MS)
            tags = reply_row.locator(".item-tags")
            await tags.locator("input.tag-new").fill(TAG)
            await tags.locator("button.tag-create").click()
            await expect(tags.locator("li.tag-chip .tag-name")).to_have_text(TAG, timeout=WAIT_MS)
            await shot(sam, "staff", layout, reply_row)
            if layout == "phone":
                await fits(sam)

            # --- Sam moves the phase: both timelines move live to the mapped step.
            control = sam.locator(f"#phase-{ref}")
            await control.get_by_label("Phase (internal)").select_option(
                label="INTERNAL lodgement → Lodged"
            )
            await control.get_by_role("button", name="Move").click()
            await expect(control.locator(".form-status")).to_have_text("Moved.", timeout=WAIT_MS)
            for shown in timeline.values():
                await expect(shown).to_have_attribute("data-current", "1", timeout=WAIT_MS)
                await expect(shown.locator(".step.current .step-name")).to_have_text("Lodged")

            # By now the note, the tag and the move reached every page that gets them.
            # Mei: no note, no tag, and her count did not move for the note.
            await expect(mei_row).to_have_attribute("data-unread", "0")
            await expect(back_count).to_have_count(0)
            assert (await server_unread(mei, ref))["matter"] == 0
            typed = [f for f in mei_frames.parsed() if f.get("type") == "typing"]
            assert typed == [], typed  # Sam typed a note only
            mei_text = await mei.locator("body").inner_text()
            mei_html = await mei.content()
            for needle in ("INTERNAL", "tag-chip", "tag-filter", "Internal note"):
                assert needle not in mei_text and needle not in mei_html, needle
            kinds = {f.get("kind") for f in mei_frames.parsed() if f.get("type") == "event"}
            assert "step" in kinds and not kinds & {"note", "tag", "phase"}, kinds
            # A reply there does count (one, not two: the note never did), and opening
            # the thread reads it.
            # The reply is held on its way here while Sam starts his next message: what
            # he typed meanwhile is still in the box when the reply has gone.
            later = "We have lodged your application."
            following = "Next: the medical"
            post_held = asyncio.Event()

            async def hold_post(route: Any) -> None:
                if route.request.method == "POST":
                    await post_held.wait()
                await route.continue_()

            events_url = f"**/api/v1/matters/{ref}/events"
            await sam.route(events_url, hold_post)
            await sam.locator(f"#thread-note-{ref}").uncheck()
            await sam.locator(f"#thread-text-{ref}").fill(later)
            async with sam.expect_request(lambda r: r.method == "POST" and "/events" in r.url):
                await sam.locator(f"#thread-composer-{ref} button[type=submit]").click()
            await sam.locator(f"#thread-text-{ref}").fill(following)
            post_held.set()
            await expect(sam.locator(f"#thread-composer-{ref} .form-status")).to_have_text(
                "Sent.", timeout=WAIT_MS
            )
            await expect(sam.locator(f"#thread-text-{ref}")).to_have_value(following)
            await sam.unroute(events_url, hold_post)
            await expect(mei_row).to_have_attribute("data-unread", "1", timeout=WAIT_MS)
            await expect(back_count).to_have_text("1")
            assert (await server_unread(mei, ref))["matter"] == 1
            await open_thread(mei, ref, thread)
            await expect(mei_pane.locator("li.item").last.locator(".message-text")).to_have_text(
                later, timeout=WAIT_MS
            )
            await expect(mei_row).to_have_attribute("data-unread", "0", timeout=WAIT_MS)
            await expect(mine.locator(".seen-by")).to_have_text("Seen by Sam Staff")
            assert await mei_pane.locator("li.item").count() == 3  # no note among them
            await shot(mei, "client", layout, timeline[mei])
            if layout == "phone":
                await fits(mei)

            # Omar: the same rows and counts as before; the thread never reached him.
            assert await unread_rows(omar, ref) == omar_before
            assert await server_unread(omar, ref) == {"matter": 0, "threads": {}}
            omar_html = await omar.content()
            await expect(omar.locator(f"#thread-{ref} .thread-back .unread-count")).to_have_count(0)
            # ("Seen by Sam Staff" may be on his own welcome: Sam's page opened it)
            for needle in (thread, SUBJECT, "Mei Chen", "is typing", "INTERNAL"):
                assert needle not in omar_html, needle
            omar_kinds = {f.get("kind") for f in omar_frames.parsed() if f.get("type") == "event"}
            assert "step" in omar_kinds, omar_kinds  # the move reached him
            # Nothing he was sent names the thread or Mei (her short user id is compared
            # as a value: its letters may be in a random cursor).
            for text in omar_frames.frames:
                assert thread not in text and "Mei Chen" not in text, text
            for frame in omar_frames.parsed():
                assert not names_contact(frame, mei_id, "Mei Chen"), frame
            await shot(omar, "other-applicant", layout, timeline[omar])

            # --- Read again from the server (thread list, history, receipts, counts over
            # HTTP): the same for both.
            await omar.reload()
            await expect(omar.locator(f"#thread-{ref}")).to_have_attribute(
                "data-loaded", "1", timeout=WAIT_MS
            )
            await expect(omar.locator(f"#thread-list-{ref} li.thread-row")).to_have_count(1)
            assert await unread_rows(omar, ref) == omar_before
            assert thread not in await omar.content()
            await mei.reload()
            mei_pane = await open_thread(mei, ref, thread)
            await expect(mine.locator(".seen-by")).to_have_text(
                "Seen by Sam Staff", timeout=WAIT_MS
            )
            await expect(mei_pane.locator("li.item")).to_have_count(3)
            await expect(mei_row).to_have_attribute("data-unread", "0")
            assert "INTERNAL" not in await mei.content()
            await expect(timeline[mei]).to_have_attribute("data-current", "1", timeout=WAIT_MS)
            await sam.reload()
            sam_pane = await open_thread(sam, ref, thread)
            # Mei read up to Sam's later reply (the last item, after the note)
            await expect(sam_pane.locator("li.item").last.locator(".seen-by")).to_have_text(
                "Seen by Mei Chen", timeout=WAIT_MS
            )
            await expect(sam_pane.locator(".seen-by")).to_have_count(1)
            await expect(sam_pane.locator("li.item[data-internal='1'] .message-text")).to_have_text(
                NOTE, timeout=WAIT_MS
            )

            assert dialogs == []
        assert mei_watch.problems == [] and omar_watch.problems == []
        assert sam_watch.problems == []
        for context in contexts:
            await context.close()


async def e2ee_firm_with_type(
    http: httpx.AsyncClient, kit: FirmKit, settings: Settings
) -> tuple[KeyFirm, str]:
    """The end-to-end encrypted firm, with a matter type its matter starts on (phase 1)."""
    keys, slug = await e2ee.e2ee_firm(http, kit, settings)
    made = await matter_type(http, kit)
    moved = await http.post(
        f"/api/v1/matters/{kit.ref}/phase",
        json={"phase": made["phases"][0]["id"]},
        headers=kit.auth("staff"),
    )
    assert moved.status_code == 200, moved.text
    return keys, slug
