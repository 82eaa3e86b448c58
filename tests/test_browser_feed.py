"""The portal page (static/index.html + static/shared|client|staff/) in a real Chromium.

A real uvicorn serves the app (lifespan, websockets, static files, security
headers); Debian's Chromium, driven by Playwright, opens the demo-style
login link. What is checked is what a client and a staff member would see:
the token leaves the URL, the session cookie is HttpOnly, events posted over
the HTTP API appear live, staff-only events never reach a contact's page
(checked after a *later* portal event arrived, so a leak would be seen),
a reload shows the history once, a server-side close (4008 slow consumer)
is survived without loss or duplicates, and logout revokes the session.
Protocol v2: messages and notes are thread items (``#thread-<ref>
li.item``, docs/threads.md), the rest stays in the flat list ("Updates",
``li.event``); both are counted, each in its place.

Every wait is Playwright's auto-waiting ``expect`` with a timeout: no sleeps.
Without Chromium or Playwright the tests skip locally and fail in CI
(``service_unavailable``); a browser is never downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtportal.app import create_app
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support import pagewait
from tests.support.procs import free_port, service_unavailable
from tests.support.server import RunningServer, running_server
from tests.support.threadpage import client_at, item_body
from tests.support.wsclient import wait_until

pytestmark = pytest.mark.timeout(120)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PRESENT = CHROMIUM.exists()  # checked once, outside the event loop
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = pagewait.WAIT_MS


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (Debian's); skip locally / fail in CI when missing."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        service_unavailable(f"the playwright package ({exc})")
    if not CHROMIUM_PRESENT:
        service_unavailable(f"Chromium at {CHROMIUM}")
    async with async_playwright() as pw:
        try:
            chromium = await pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:  # a broken install is "unavailable", not a bug of ours
            service_unavailable(f"Chromium at {CHROMIUM} ({type(exc).__name__}: {exc})")
        try:
            yield chromium
        finally:
            await chromium.close()


@contextlib.asynccontextmanager
async def serve_portal(settings: Settings, **overrides: Any) -> AsyncIterator[RunningServer]:
    """The app on a port chosen first, so its own origin is in the settings it starts with.

    A browser sends ``Origin: http://127.0.0.1:<port>`` on the websocket
    upgrade and on cookie-authenticated writes; settings are fixed when the
    app starts (the websocket transport takes them from the lifespan).
    """
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    app = create_app(
        dataclasses.replace(
            settings, allowed_origins=(*settings.allowed_origins, origin), **overrides
        )
    )
    async with running_server(app, port=port) as server:
        yield server


@pytest.fixture
async def portal(settings: Settings) -> AsyncIterator[RunningServer]:
    async with serve_portal(settings) as server:
        yield server


@pytest.fixture
async def small_backlog_portal(settings: Settings) -> AsyncIterator[RunningServer]:
    """A portal whose websocket backlog is 3 events (a longer gap gets ``resync``)."""
    async with serve_portal(settings, backlog_limit=3) as server:
        yield server


async def post_event(
    client: httpx.AsyncClient, kit: FirmKit, who: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who)
    )
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()["event"]
    return event


class PageWatch:
    """Script errors, console errors (CSP violations land there) and failed
    responses of one page. The browser's own favicon probe is no problem."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        self.answered: list[str] = []  # the URL of every response, in order
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, msg: Any) -> None:
        # "Failed to load resource" repeats a failed response, recorded with its URL below.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.problems.append(f"console.error: {msg.text}")

    def _response(self, response: Any) -> None:
        self.answered.append(response.url)
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"HTTP {response.status} {response.url}")


async def open_portal(context: Any, base_url: str, token: str) -> tuple[Any, PageWatch]:
    from playwright.async_api import expect

    page = await context.new_page()
    watch = PageWatch(page)
    await page.goto(f"{base_url}/#token={token}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    return page, watch


async def shown_seqs(
    page: Any, server: RunningServer | None = None, matter_id: int = 0
) -> list[int]:
    """Seqs of the rendered events of the flat list ("Updates"), in page order
    (duplicates would show twice). Thread items are not there: ``shown_items``.

    On a client's page (``server`` given) the page holds no seq, only each
    event's token: asserted, then read back with the server's key."""
    if server is None:
        values = await page.locator("li.event").evaluate_all("els => els.map(e => e.dataset.seq)")
        return [int(v) for v in values]
    seqs = await page.locator("li.event[data-seq], li.item[data-seq], span.seq").count()
    assert seqs == 0, "a client's page shows a seq"
    tokens = await page.locator("li.event").evaluate_all("els => els.map(e => e.dataset.cursor)")
    codec = server.app.state.runtime.frames.cursors
    return [codec.seq_of(t, matter_id) for t in tokens]


async def shown_items(
    page: Any, ref: str, server: RunningServer | None = None, matter_id: int = 0
) -> list[int]:
    """Seqs of the items of the open thread (``#thread-<ref> li.item``), in page
    order: a duplicate, or a claim row (a second event under an item's id,
    which names no event), would show. A client's items carry tokens, as
    ``shown_seqs`` reads them."""
    rows = page.locator(f"#thread-{ref} li.item")
    field = "seq" if server is None else "cursor"
    values = await rows.evaluate_all(f"els => els.map(e => e.dataset.{field} ?? null)")
    assert None not in values, f"a thread row names no event (a claim?): {values}"
    if server is None:
        return [int(v) for v in values]
    codec = server.app.state.runtime.frames.cursors
    return [codec.seq_of(t, matter_id) for t in values]


async def record_states(page: Any) -> None:
    """Collect every connection state the page shows into ``window.__states``."""
    await page.evaluate(
        """() => {
            const line = document.getElementById('conn');
            window.__states = [line.dataset.state];
            new MutationObserver(() => window.__states.push(line.dataset.state))
                .observe(line, {attributes: true, attributeFilter: ['data-state']});
        }"""
    )


async def test_contact_page_is_live_private_and_survives_reload(
    browser: Any, portal: RunningServer, make_firm: MakeFirm
) -> None:
    from playwright.async_api import expect

    kit = await make_firm()
    token = kit.tokens["contact"]
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=10) as client:
        # History before the page opens: an E2EE message (5 bytes of
        # "ciphertext"), a staff note, and a portal event with a staff_ field.
        message = await post_event(
            client, kit, "staff", kind="message", payload={"thread": "t-1"}, blob="AQIDBAU"
        )
        old_note = await post_event(client, kit, "staff", kind="note", audience="staff",
                                    payload={"thread": "n", "text": "SECRET-HISTORY"})  # fmt: skip
        mixed = await post_event(
            client, kit, "bot", kind="bot",
            payload={"status": "Lodged", "staff_detail": "SECRET-FIELD"},
        )  # fmt: skip

        def at(seq: int) -> str:
            return client_at(portal, kit.matter.id, seq)

        context = await browser.new_context()
        page, watch = await open_portal(context, portal.base_url, token)

        # The credential left the URL (replaceState: no history entry keeps it).
        assert await page.evaluate("location.hash") == ""
        assert token not in page.url
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["rtp_session"]["httpOnly"] is True
        assert cookies["rtp_session"]["sameSite"] == "Strict"
        assert cookies["rtp_session"]["value"] != token  # a session token, not the link's
        assert "rtp_session" not in await page.evaluate("document.cookie")

        # History: the message is a thread item (its thread, the only one the
        # contact sees, opens by itself); it is end-to-end encrypted and this
        # device holds no keys (a login link, not a password sign-in): it says
        # so. The bot event stays in the flat list; nothing staff-only.
        await expect(page.locator(f"#thread-{kit.ref}")).to_have_attribute(
            "data-thread", "t-1", timeout=WAIT_MS
        )
        item = page.locator(f"#item-{kit.ref}-{at(message['seq'])}")
        await expect(item_body(page, kit.ref, at(message["seq"]))).to_have_attribute(
            "data-crypto", "no_keys"
        )
        await expect(item).to_have_attribute("data-kind", "message")
        await expect(item.locator(".item-head .actor")).to_have_text("Sam Staff (staff)")
        await expect(page.locator(f"#ev-{kit.ref}-{at(mixed['seq'])} dd")).to_have_text("Lodged")
        assert await shown_seqs(page, portal, kit.matter.id) == [mixed["seq"]]
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [message["seq"]]
        threads = f"#thread-list-{kit.ref} li.thread-row"
        assert await page.locator(threads).evaluate_all(
            "els => els.map(e => e.dataset.thread)"
        ) == ["t-1"]

        # Live: a staff note and a portal event at the same time, then a later
        # portal event. Once the later one is on the page, the note would
        # have been delivered before it (seq order) had it leaked.
        await record_states(page)
        note, hostile = await asyncio.gather(
            post_event(client, kit, "admin", kind="note", audience="staff",
                       payload={"thread": "n", "text": "SECRET-LIVE"}),
            post_event(client, kit, "bot", kind="bot",
                       payload={"status": "<img src=x onerror=window.__xss=1>"}),
        )  # fmt: skip
        later = await post_event(client, kit, "bot", kind="bot", payload={"status": "checked"})
        assert later["seq"] > note["seq"]
        await expect(page.locator(f"#ev-{kit.ref}-{at(later['seq'])}")).to_be_visible(
            timeout=WAIT_MS
        )
        hostile_item = page.locator(f"#ev-{kit.ref}-{at(hostile['seq'])} dd")
        await expect(hostile_item).to_have_text("<img src=x onerror=window.__xss=1>")
        assert await page.locator("img").count() == 0
        assert await page.evaluate("window.__xss") is None
        # The notes are items of an internal thread: neither they nor their
        # thread show, in the flat list or the threads.
        for hidden in (old_note, note):
            key = at(hidden["seq"])
            assert await page.locator(f"#ev-{kit.ref}-{key}, #item-{kit.ref}-{key}").count() == 0
        assert await page.locator(f"{threads}[data-thread=n]").count() == 0
        internal = (
            "[data-audience=staff], [data-internal='1'], [data-kind=internal], .internal-badge"
        )
        assert await page.locator(internal).count() == 0
        body = await page.locator("body").inner_text()
        for secret in ("SECRET-HISTORY", "SECRET-LIVE", "SECRET-FIELD", "staff_"):
            assert secret not in body
        portal_seqs = [mixed["seq"], hostile["seq"], later["seq"]]
        assert await shown_seqs(page, portal, kit.matter.id) == portal_seqs
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [message["seq"]]
        assert await page.evaluate("window.__states") == ["live"]  # no reconnect so far

        # The server drops the socket as a slow consumer (4008); an event
        # committed meanwhile arrives after the reconnect, exactly once.
        hub = portal.app.state.hub
        await hub.close_principal("contact", kit.contact.id, 4008)
        gap = await post_event(client, kit, "bot", kind="bot", payload={"status": "Review"})
        await expect(page.locator(f"#ev-{kit.ref}-{at(gap['seq'])}")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        states = await page.evaluate("window.__states")
        assert "reconnecting" in states, states
        portal_seqs.append(gap["seq"])
        assert await shown_seqs(page, portal, kit.matter.id) == portal_seqs
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [message["seq"]]
        cursor_key = f"rtportal.cursor.v2.contact.{kit.contact.id}.{kit.ref}"
        cursor = await page.evaluate(f"sessionStorage.getItem({cursor_key!r})")
        assert cursor == at(gap["seq"])  # the last event's token, never a seq

        # Reload: same history, once each, still live; nothing new since (the
        # thread was read on the first visit: no "New" divider in it either).
        await page.reload()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        await expect(page.locator("li.event")).to_have_count(len(portal_seqs))
        await expect(item_body(page, kit.ref, at(message["seq"]))).to_have_attribute(
            "data-crypto", "no_keys", timeout=WAIT_MS
        )
        assert await shown_seqs(page, portal, kit.matter.id) == portal_seqs
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [message["seq"]]
        # its first page came (with where the unread began): the divider is settled
        await expect(page.locator(f"#thread-{kit.ref}")).to_have_attribute("data-loaded", "1")
        assert await page.locator(".divider").count() == 0
        after_reload = await post_event(
            client, kit, "bot", kind="bot", payload={"status": "Decision"}
        )
        await expect(page.locator(f"#ev-{kit.ref}-{at(after_reload['seq'])}")).to_be_visible(
            timeout=WAIT_MS
        )
        assert await shown_seqs(page, portal, kit.matter.id) == [*portal_seqs, after_reload["seq"]]
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [message["seq"]]

        # Logout: the session token is revoked server-side and the cookie is gone.
        session_token = cookies["rtp_session"]["value"]
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "signed-out")
        await expect(page.locator("#notice")).to_be_visible()
        assert await page.locator("li.event, li.item, li.thread-row").count() == 0
        assert "rtp_session" not in {c["name"] for c in await context.cookies()}
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {session_token}"})
        assert me.status_code == 401
        assert await page.evaluate("sessionStorage.length") == 0

        assert watch.problems == []
        await context.close()


async def test_a_thread_opened_again_marks_only_what_came_since_it_was_read(
    browser: Any, portal: RunningServer, make_firm: MakeFirm
) -> None:
    """A fresh page knows no read mark: the "New" divider of the thread that
    opens by itself comes from the server's mark (GET .../first-unread, asked
    before the page moves it), not from "nothing read here yet"."""
    from playwright.async_api import expect

    kit = await make_firm()
    first_unread = f"/api/v1/matters/{kit.ref}/threads/t-1/first-unread"
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=10) as client:
        read = await post_event(
            client, kit, "staff", kind="message", payload={"thread": "t-1"}, blob="AQIDBAU"
        )

        def at(seq: int) -> str:
            return client_at(portal, kit.matter.id, seq)

        context = await browser.new_context()
        page, watch = await open_portal(context, portal.base_url, kit.tokens["contact"])
        # Unread on the first visit: the divider is before it; opening it reads it.
        # (each draw makes a new divider: found through the selector, never held)
        divider = f"#thread-{kit.ref} li.divider"
        await expect(page.locator(divider)).to_have_count(1, timeout=WAIT_MS)
        await expect(page.locator(f"{divider} + li.item")).to_have_id(
            f"item-{kit.ref}-{at(read['seq'])}"
        )
        marked: dict[str, Any] = {}
        for _ in range(WAIT_MS // 20):
            answer = await client.get(first_unread, headers=kit.auth("contact"))
            marked = answer.json()
            if marked["after"] == at(read["seq"]):
                break
            await asyncio.sleep(0.02)  # reason: polling the server's mark with a deadline
        assert marked == {"thread": "t-1", "after": at(read["seq"]), "first_unread": None}
        await page.close()

        # Away, a reply comes; the thread opens by itself on the next visit.
        reply = await post_event(
            client, kit, "staff", kind="message", payload={"thread": "t-1"}, blob="BQQDAgE"
        )
        page = await context.new_page()
        again = PageWatch(page)
        await page.goto(f"{portal.base_url}/")
        await expect(page.locator(f"#item-{kit.ref}-{at(reply['seq'])}")).to_be_visible(
            timeout=WAIT_MS
        )
        assert await shown_items(page, kit.ref, portal, kit.matter.id) == [
            read["seq"],
            reply["seq"],
        ]
        await expect(page.locator(f"#jump-unread-{kit.ref}")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator(divider)).to_have_count(1)
        await expect(page.locator(f"{divider} + li.item")).to_have_id(
            f"item-{kit.ref}-{at(reply['seq'])}"
        )
        assert watch.problems == [] and again.problems == []
        await context.close()


async def test_staff_page_marks_internal_events_and_shows_the_phase_control(
    browser: Any, portal: RunningServer, make_firm: MakeFirm
) -> None:
    from playwright.async_api import expect

    kit = await make_firm()
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=10) as client:
        context = await browser.new_context()
        page, watch = await open_portal(context, portal.base_url, kit.tokens["staff"])
        await expect(page.locator("#who")).to_contain_text("Sam Staff")
        await expect(page.locator("#who")).to_contain_text("Staff view")

        note = await post_event(
            client, kit, "admin", kind="note", audience="staff",
            payload={"thread": "n", "text": "Client prefers calls"},
        )  # fmt: skip
        update = await post_event(
            client, kit, "bot", kind="bot",
            payload={"status": "lodged", "staff_detail": "ref 42"},
        )  # fmt: skip
        # The note is an item of an internal thread, the only thread: it opens
        # by itself, marked internal as a thread, a row of the list and an item.
        await expect(page.locator(f"#thread-{kit.ref}")).to_have_attribute(
            "data-thread", "n", timeout=WAIT_MS
        )
        await expect(page.locator(f"#thread-{kit.ref}")).to_have_attribute("data-kind", "internal")
        await expect(
            page.locator(f"#thread-{kit.ref} .thread-heading .internal-badge")
        ).to_have_text("Internal thread: staff only")
        row = page.locator(f"#thread-list-{kit.ref} li.thread-row[data-thread=n]")
        await expect(row).to_have_attribute("data-kind", "internal")
        await expect(row.locator(".internal-badge")).to_have_text("Internal thread: staff only")
        note_item = page.locator(f"#item-{kit.ref}-{note['seq']}")
        await expect(note_item).to_be_visible(timeout=WAIT_MS)
        await expect(note_item).to_have_class("item internal")
        await expect(note_item).to_have_attribute("data-internal", "1")
        await expect(note_item.locator(".item-head .internal-badge")).to_have_text(
            "Internal note: staff only"
        )
        await expect(item_body(page, kit.ref, note["seq"]).locator(".message-text")).to_have_text(
            "Client prefers calls"
        )

        update_item = page.locator(f"#ev-{kit.ref}-{update['seq']}")
        await expect(update_item).to_be_visible(timeout=WAIT_MS)
        await expect(update_item).to_have_class("event")  # portal event: not internal
        assert await update_item.locator(".event-head .internal-badge").count() == 0
        # ... but its staff-only field is marked.
        await expect(update_item.locator(".payload-row.internal dt")).to_contain_text(
            "staff_detail"
        )

        # The staff tools under the matter: the phase control (the firm has no
        # matter types yet, so it says where to add them; tests/test_browser_timeline.py
        # moves a phase).
        await expect(page.locator(f"#phase-{kit.ref}")).to_contain_text("no matter types yet")
        assert await shown_seqs(page) == [update["seq"]]
        assert await shown_items(page, kit.ref) == [note["seq"]]

        assert watch.problems == []
        await context.close()


@pytest.mark.parametrize("who", ["staff", "contact"])
async def test_outage_longer_than_the_backlog_resyncs_over_http(
    browser: Any, small_backlog_portal: RunningServer, make_firm: MakeFirm, who: str
) -> None:
    """Network down (websockets refused) while more events than the backlog
    limit are committed: on the way back the server answers a staff page
    ``resync``, the page pages the history over HTTP, resubscribes, and shows
    everything once. A client's page gets no resync (its size would count
    staff-only events): its backlog is read on, and it too shows everything once."""
    from playwright.async_api import expect

    portal = small_backlog_portal
    kit = await make_firm()
    app = portal.app
    principal = kit.staff if who == "staff" else kit.contact

    def element(seq: int, kind: str = "ev") -> str:
        at = seq if who == "staff" else client_at(portal, kit.matter.id, seq)
        return f"#{kind}-{kit.ref}-{at}"

    async def shown() -> list[int]:
        if who == "staff":
            return await shown_seqs(page)
        return await shown_seqs(page, portal, kit.matter.id)

    async def shown_thread_items() -> list[int]:
        if who == "staff":
            return await shown_items(page, kit.ref)
        return await shown_items(page, kit.ref, portal, kit.matter.id)

    network = {"up": True}
    refused = asyncio.Event()
    resyncs: list[dict[str, Any]] = []

    def frame_seen(message: str | bytes) -> None:
        if isinstance(message, str) and '"resync"' in message:
            resyncs.append(json.loads(message))

    async def route(ws: Any) -> None:
        # Playwright sits between the page and /ws: a real server socket when
        # the "network" is up, an immediate failure when it is down.
        if not network["up"]:
            refused.set()
            await ws.close(code=1013, reason="test: network down")
            return
        server = ws.connect_to_server()

        def relay(message: str | bytes) -> None:
            frame_seen(message)
            ws.send(message)

        server.on_message(relay)

    async with httpx.AsyncClient(base_url=portal.base_url, timeout=10) as client:
        first = await post_event(client, kit, "bot", kind="bot", payload={"status": "Open"})
        context = await browser.new_context()
        page = await context.new_page()
        watch = PageWatch(page)
        await page.route_web_socket(f"{portal.ws_url}", route)
        await page.goto(f"{portal.base_url}/#token={kit.tokens[who]}")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        assert await shown() == [first["seq"]]
        if who == "staff":  # the count has read the matter list: its cursors are set
            count = page.locator("#review-count")
            await expect(count).not_to_have_attribute("data-open", "", timeout=WAIT_MS)

        network["up"] = False
        await app.state.hub.close_principal(who, principal.id, 1012)
        await asyncio.wait_for(refused.wait(), WAIT_MS / 1000)
        missed = [
            await post_event(client, kit, "bot", kind="bot", payload={"status": f"Step {i}"})
            for i in range(5)
        ]
        note = await post_event(client, kit, "admin", kind="note", audience="staff",
                                payload={"thread": "n", "text": "SECRET-OUTAGE"})  # fmt: skip
        network["up"] = True
        # Staff see the note too, as an item of its thread (the only one: it
        # opens by itself), after the bot events; a client never does.
        expected = [first["seq"], *(e["seq"] for e in missed)]
        await expect(page.locator(element(expected[-1]))).to_be_visible(timeout=WAIT_MS)
        items = []
        if who == "staff":
            items.append(note["seq"])
            await expect(page.locator(element(note["seq"], "item"))).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        if who == "staff":
            # A staff page holds two sockets, both cut and both back behind
            # the backlog: the stream's (subscribe ids s1, s2, …) pages the
            # gap over HTTP, the review count's (r1, r2, …: its own socket,
            # docs/reviews.md) picks up at the head. Each is told once.
            def of(prefix: str) -> list[dict[str, Any]]:
                return [r for r in resyncs if str(r["id"]).startswith(prefix)]

            await wait_until(lambda: of("r") != [], WAIT_MS / 1000, "the count's resync")
            for socket in ("s", "r"):
                assert [(r["reason"], r["after"]) for r in of(socket)] == [
                    ("cursor_too_old", first["seq"])
                ]
            assert len(resyncs) == 2
        else:
            assert resyncs == []
        assert await shown() == expected
        assert await shown_thread_items() == items

        # Resubscribed after the resync: live again, from the right cursor.
        live = await post_event(client, kit, "bot", kind="bot", payload={"status": "Back"})
        await expect(page.locator(element(live["seq"]))).to_be_visible(timeout=WAIT_MS)
        assert await shown() == [*expected, live["seq"]]
        assert await shown_thread_items() == items
        if who == "contact":
            assert "SECRET-OUTAGE" not in await page.locator("body").inner_text()
        assert watch.problems == []
        await context.close()


async def test_removal_from_one_matter_keeps_the_others_and_revocation_signs_out(
    browser: Any, portal: RunningServer, make_firm: MakeFirm
) -> None:
    """Removed from one matter (4011) the page reloads its matters and goes
    live again; the session revoked (4010), it shows the signed-out screen."""
    from playwright.async_api import expect

    kit = await make_firm()
    second = await kit.add_matter(title="Second matter")
    hub = portal.app.state.hub
    context = await browser.new_context()
    page, watch = await open_portal(context, portal.base_url, kit.tokens["contact"])
    await expect(page.locator("section.matter")).to_have_count(2)
    # Subscribed to both first (the hub holds both for the page): a removal
    # that wins the race with the page's subscribe is a refused subscribe
    # (the matter then shows "no access"), not a close.
    both = {kit.matter.id, second.id}
    await wait_until(lambda: both <= set(hub.subscribed_matters()), WAIT_MS / 1000, "subscribed")

    # ... and each matter's thread list read (asked after the socket's hello): a
    # removal before that answer makes it a 404, a failed response of its own.
    def listed(ref: str) -> Callable[[], bool]:
        return lambda: any(f"/api/v1/matters/{ref}/threads?" in url for url in watch.answered)

    for ref in (kit.ref, second.reference):
        await wait_until(listed(ref), WAIT_MS / 1000, f"the thread list of {ref}")

    await kit.remove_member(kit.contact, hub=hub)  # closes the page's socket 4011
    await expect(page.locator("section.matter")).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("section.matter")).to_have_attribute("data-ref", second.reference)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    async with httpx.AsyncClient(base_url=portal.base_url, timeout=10) as client:
        response = await client.post(
            f"/api/v1/matters/{second.reference}/events",
            json={"kind": "bot", "payload": {"status": "Still here"}},
            headers=kit.auth("bot"),
        )
        assert response.status_code == 201, response.text
        at = client_at(portal, second.id, response.json()["seq"])
        await expect(page.locator(f"#ev-{second.reference}-{at}")).to_be_visible(timeout=WAIT_MS)

        # The session itself is revoked (e.g. signed out elsewhere): signed-out screen.
        cookie = {c["name"]: c["value"] for c in await context.cookies()}["rtp_session"]
        revoked = await client.delete(
            "/api/v1/session", headers={"Authorization": f"Bearer {cookie}"}
        )
        assert revoked.status_code == 200
    await hub.close_principal("contact", kit.contact.id, 4010)
    await expect(page.locator("#conn")).to_have_attribute(
        "data-state", "signed-out", timeout=WAIT_MS
    )
    await expect(page.locator("#notice-title")).to_have_text("Signed out")
    assert await page.locator("section.matter").count() == 0
    # The page's own /api/v1/me check after the close is the expected 401.
    assert watch.problems == [f"HTTP 401 {portal.base_url}/api/v1/me"]
    await context.close()


async def test_another_login_in_the_same_browser_restarts_the_page(
    browser: Any, portal: RunningServer, make_firm: MakeFirm
) -> None:
    """A second tab opens a staff login link: the shared cookie now belongs
    to the staff member. When the first tab reconnects, its socket's hello
    names another principal, and the page starts over as that user instead
    of showing them under the contact's name and cursors."""
    from playwright.async_api import expect

    kit = await make_firm()
    context = await browser.new_context()
    contact_page, watch = await open_portal(context, portal.base_url, kit.tokens["contact"])
    await expect(contact_page.locator("#who")).to_have_text("Cleo Client")
    staff_page, _ = await open_portal(context, portal.base_url, kit.tokens["staff"])
    await expect(staff_page.locator("#who")).to_contain_text("Sam Staff")

    await portal.app.state.hub.close_principal("contact", kit.contact.id, 1012)
    await expect(contact_page.locator("#who")).to_contain_text("Sam Staff", timeout=WAIT_MS)
    await expect(contact_page.locator("#who")).to_contain_text("Staff view")
    await expect(contact_page.locator("#conn")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    assert watch.problems == []
    await context.close()


async def test_page_helpers(browser: Any, portal: RunningServer) -> None:
    """The pure helpers, run as the page's own modules in Chromium."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{portal.base_url}/")
    result = await page.evaluate(
        """async () => {
            const f = await import('/shared/format.js');
            const s = await import('/shared/socket.js');
            const delays = (code, attempts, r) =>
                attempts.map((a) => s.reconnectDelay(a, code, () => r));
            return {
                sizes: ['', 'AQ==', 'AQ', 'AQI=', 'AQID', 'AQIDBA', 'AQIDBA==', '-_-_', null]
                    .map(f.base64Bytes),
                rows: f.payloadRows({b: 1, a: 'x', staff_n: {k: [1]}, long: 'y'.repeat(600)}),
                actor: [f.actorLabel({kind: 'bot', name: 'Robo'}), f.actorLabel(null)],
                id: f.newClientId(),
                slow: delays(4008, [0, 1], 0.999),
                restart: delays(1012, [0], 0),
                lost: [...delays(1006, [0, 1, 2, 10], 0), ...delays(1006, [0, 10], 0.999)],
            };
        }"""
    )
    assert result["sizes"] == [0, 1, 1, 2, 3, 4, 4, 3, 0]
    rows = result["rows"]
    assert [r[0] for r in rows] == ["a", "b", "long", "staff_n"]
    assert rows[1][1] == "1" and rows[3] == ["staff_n", '{"k":[1]}', True]
    assert len(rows[2][1]) == 501 and rows[2][1].endswith("…")
    assert result["actor"] == ["Robo (bot)", "Unknown"]
    assert len(result["id"]) <= 64 and result["id"].startswith("web-")
    assert result["slow"][0] < 500 and result["slow"][1] > 1000  # only the first is quick
    assert result["restart"] == [300]
    assert result["lost"] == [
        500,
        1000,
        2000,
        15000,
        pytest.approx(1000, abs=1),
        pytest.approx(30000, abs=20),
    ]
    await context.close()


async def test_page_without_credentials_asks_to_sign_in(
    browser: Any, portal: RunningServer
) -> None:
    from playwright.async_api import expect

    context = await browser.new_context()
    page = await context.new_page()
    watch = PageWatch(page)
    response = await page.goto(f"{portal.base_url}/#token=not-a-valid-token")
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    # connect-src names the websocket origins (older WebKit does not match ws: to 'self').
    own = "ws" + portal.base_url[len("http") :]
    assert f"connect-src 'self' {own} ws://127.0.0.1:8000 ws://localhost:8000" in csp
    await expect(page.locator("#notice")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#notice-title")).to_have_text("This link does not work")
    assert await page.evaluate("location.hash") == ""
    # The refused exchange is the only failure; /api/v1/me is not even tried.
    assert watch.problems == [f"HTTP 401 {portal.base_url}/api/v1/session"]
    await context.close()
