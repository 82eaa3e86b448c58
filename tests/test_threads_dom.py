"""The thread screens (static/client/threads.js, threadcompose.js,
staff/threadtools.js) in Chromium at phone sizes, fed the event shapes of
docs/threads.md: the list's unread counts and order, replies in order,
edited and deleted markers, a foreign edit flagged, receipts, typing, the
read mark sent, internal notes and threads marked, the note mode of the
composer, the flat stream kept for a v1 server. The page is
static/client/test/threads_check.html (not served by the app); the server
side of threads is not part of this test."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import service_unavailable

REPO = Path(__file__).resolve().parent.parent
REF = "ABCD1234"


class _Static(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class declares it as a class attribute
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(REPO), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Static)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/static/client/test/threads_check.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        service_unavailable("chromium")
    try:
        from playwright import sync_api
    except ImportError:
        service_unavailable("playwright (python package, test extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def open_page(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.check !== undefined")
    return page, errors


def typing_in_t1(browser: Any, url: str, who: str) -> tuple[Any, list[str], Any]:
    """A phone-sized page as ``who``, thread T1 open, its composer focused: the page,
    its errors and the composer's box."""
    page, errors = open_page(browser, url, 390, 844)
    page.evaluate(f"check.setup('{who}', {{keys: 'failing'}})")
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li.item")
    box = page.locator(f"#thread-text-{REF}")
    box.click()
    return page, errors, box


def items(page: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.eval_on_selector_all(
        f"#thread-{REF} li.item",
        "els => els.map(e => ({id: e.dataset.item, edited: e.dataset.edited,"
        " deleted: e.dataset.deleted, internal: e.dataset.internal,"
        " flagged: String(!!e.querySelector('.edit-flagged')),"
        " tombstone: String(!!e.querySelector('.tombstone')),"
        " body: e.querySelector('.message-body')"
        " ? e.querySelector('.message-body').dataset.crypto : ''}))",
    )
    return found


def kinds(page: Any) -> list[str]:
    """The kinds of the flat list's events (what is not a thread item)."""
    found: list[str] = page.eval_on_selector_all(
        f"#matter-{REF} li.event", "els => els.map(e => e.dataset.kind)"
    )
    return found


def rows(page: Any) -> list[list[str]]:
    """[thread, kind, unread] of each row of the thread list, top first."""
    found: list[list[str]] = page.eval_on_selector_all(
        f"#thread-list-{REF} li.thread-row",
        "els => els.map(e => [e.dataset.thread, e.dataset.kind, e.dataset.unread])",
    )
    return found


@pytest.mark.parametrize("size", [(360, 800), (390, 844)])
def test_client_threads_on_a_phone(browser: Any, base_url: str, size: tuple[int, int]) -> None:
    page, errors = open_page(browser, base_url, *size)
    page.evaluate("check.setup('client')")
    # newest activity first; the staff opener and reply are unread, my own items never
    assert rows(page) == [["T2", "client", "0"], ["T1", "client", "2"]]
    assert kinds(page) == ["phase"], "only what is not a thread item stays in the flat list"
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]

    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li.item")
    assert page.is_hidden(f"#thread-list-{REF}"), "on a phone the open thread replaces the list"
    shown = items(page)
    assert [i["id"] for i in shown] == ["s3.aaaa", "c12.bbbb", "s3.cccc"]
    assert shown[1]["edited"] == "1", "the client's own edit is shown"
    assert shown[1]["flagged"] == "true", "the edit by staff is flagged"
    assert {i["body"] for i in shown} == {"no_keys"}, "no keys here: every body says so"
    # where the unread began: a divider before the first unread item, and the jump to it
    # (drawn once the thread's first page has come: wait for it, not assume it)
    page.wait_for_selector(f"#jump-unread-{REF}", state="visible")
    after = "d => d.nextElementSibling.dataset.item"
    assert page.eval_on_selector(f"#thread-{REF} li.divider", after) == "s3.aaaa"
    # the read mark went over the socket, upto the newest item; the count is 0
    page.wait_for_function("check.frames.some(f => f.type === 'read')")
    marks = page.evaluate("check.frames.filter(f => f.type === 'read')")
    assert [re.fullmatch(r"r[0-9]+", m.pop("id")) is not None for m in marks] == [True]
    # (the server requires a frame id)
    assert marks == [{"type": "read", "matter": REF, "thread": "T1", "upto": 3}]
    row = f"#thread-list-{REF} li[data-thread=T1]"
    page.wait_for_function(f"document.querySelector('{row}').dataset.unread === '0'")

    sam = "who: 's3', reader: 's3', name: 'Sam Staff'"
    page.evaluate(f"check.frame({{type: 'receipt', thread: 'T1', {sam}, upto: 3}})")
    page.evaluate(f"check.frame({{type: 'typing', thread: 'T1', {sam}}})")
    page.wait_for_selector(f"#thread-{REF} li[data-item='s3.cccc'] .seen-by")
    assert "Sam Staff" in page.inner_text(f"#thread-{REF} li[data-item='s3.cccc'] .seen-by")
    assert "Sam Staff" in page.inner_text(f"#typing-{REF}")
    # their message ends their typing
    page.evaluate(
        "check.add({seq: 20, kind: 'message', actor: {kind: 'staff', id: 3, name: 'Sam Staff'},"
        " payload: {thread: 'T1', item: 's3.zzzz', parent: 's3.aaaa'}})"
    )
    page.wait_for_selector(f"#thread-{REF} li[data-item='s3.zzzz']")
    assert page.inner_text(f"#typing-{REF}") == ""
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]

    page.click(f"#thread-{REF} .thread-back")
    page.click(f"#thread-list-{REF} li[data-thread=T2] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li[data-item='c12.hhhh']")
    gone = items(page)[1]
    assert (gone["deleted"], gone["tombstone"], gone["body"]) == ("1", "true", ""), gone
    assert errors == []


def test_a_contact_shaped_stream_draws_in_arrival_order(browser: Any, base_url: str) -> None:
    """Protocol v2: a contact's events carry no seq, only an opaque cursor token
    (whose text order is the reverse of the log's here): the threads keep the
    stream's order, name items by token and send the read mark as a token."""
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('client', {shape: 'contact'})")
    assert rows(page) == [["T2", "client", "0"], ["T1", "client", "2"]]
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li.item")
    shown = items(page)
    assert [(i["id"], i["edited"], i["flagged"]) for i in shown] == [
        ("s3.aaaa", "0", "false"),
        ("c12.bbbb", "1", "true"),
        ("s3.cccc", "0", "false"),
    ]
    hooks = page.eval_on_selector_all(
        f"#thread-{REF} li.item", "els => els.map(e => [e.id, e.dataset.seq ?? null])"
    )
    tokens = [page.evaluate(f"contactToken({n})") for n in (1, 2, 3)]
    assert hooks == [[f"item-{REF}-{t}", None] for t in tokens], "named by token, no seq"
    page.wait_for_function("check.frames.some(f => f.type === 'read')")
    marks = page.evaluate("check.frames.filter(f => f.type === 'read')")
    assert all(isinstance(m.pop("id"), str) for m in marks)
    assert marks == [{"type": "read", "matter": REF, "thread": "T1", "upto": tokens[2]}]
    assert errors == []


def test_the_same_events_in_reverse_draw_the_same_thread(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('client', {order: 'reverse'})")
    assert rows(page) == [["T2", "client", "0"], ["T1", "client", "2"]]
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li.item")
    assert [(i["id"], i["edited"], i["flagged"]) for i in items(page)] == [
        ("s3.aaaa", "0", "false"),
        ("c12.bbbb", "1", "true"),
        ("s3.cccc", "0", "false"),
    ]
    assert errors == []


def test_a_v1_server_keeps_the_flat_stream(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('client', {v: 1})")
    assert page.is_hidden(f"#threads-{REF}")
    assert page.eval_on_selector_all(f"#matter-{REF} li.event", "els => els.length") == 9
    page.evaluate("view.serverVersion(2)")
    page.wait_for_selector(f"#thread-list-{REF} li.thread-row")
    assert kinds(page) == ["phase"]
    assert errors == []


def test_staff_notes_internal_threads_tags_and_the_note_mode(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('staff', {keys: 'failing'})")
    assert rows(page) == [["T2", "client", "1"], ["N1", "internal", "1"], ["T1", "client", "2"]]
    assert page.is_visible(f"#thread-list-{REF} li[data-thread=N1] .internal-badge")
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li[data-item='s4.dddd']")
    shown = {i["id"]: i for i in items(page)}
    assert shown["s4.dddd"]["internal"] == "1"
    assert page.is_visible(f"#thread-{REF} li[data-item='s4.dddd'] .internal-badge")
    assert shown["s3.aaaa"]["internal"] == "0"
    # a device whose checks fail shows a warning for every item, never content
    page.wait_for_function(
        f"[...document.querySelectorAll('#thread-{REF} li.item .message-body')]"
        ".every(b => b.dataset.crypto === 'crypto_signature')"
    )
    assert page.eval_on_selector_all(f"#thread-{REF} .message-text", "els => els.length") == 0
    assert page.eval_on_selector_all(
        f"#thread-{REF} li[data-item='c12.bbbb'] li.tag-chip", "els => els.map(e => e.dataset.tag)"
    ) == ["tagAAAAAAAAAAAAAAAAAAA"]
    # the note mode: the form itself says internal (class, data-internal, label and button change)
    form = f"#thread-composer-{REF}"
    assert page.get_attribute(form, "data-internal") == "0"
    reply_button = page.inner_text(f"{form} button[type=submit]")
    page.check(f"#thread-note-{REF}")
    assert page.get_attribute(form, "data-internal") == "1"
    assert "internal" in page.get_attribute(form, "class")
    assert page.inner_text(f"{form} button[type=submit]") != reply_button
    # an internal thread's composer is a note without a toggle
    page.click(f"#thread-{REF} .thread-back")
    page.click(f"#thread-list-{REF} li[data-thread=N1] .thread-open")
    page.wait_for_selector(f"{form}[data-internal='1']")
    assert page.query_selector(f"#thread-note-{REF}") is None
    # a new thread: a client message to chosen clients, or an internal thread (no recipients then)
    page.click(f"#thread-{REF} .thread-back")
    page.click(f"#new-thread-{REF}")
    page.wait_for_selector(f"#new-thread-kind-{REF}")
    assert page.is_visible(f"#recipients-{REF}")
    page.check(f"#new-thread-kind-{REF} input[value=internal]")
    assert page.is_hidden(f"#recipients-{REF}")
    assert page.get_attribute(form, "data-internal") == "1"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []


def test_live_redraws_never_take_the_composer_from_someone_typing(
    browser: Any, base_url: str
) -> None:
    """A receipt, a typing frame or a new item redraws the open thread while its
    reader types a reply: the composer keeps the focus and every key (moving a
    focused node in the DOM blurs it, and the next keys went nowhere)."""
    page, errors, box = typing_in_t1(browser, base_url, "client")
    sam = "who: 's3', reader: 's3', name: 'Sam Staff'"
    for n, key in enumerate("Thanks!"):
        page.keyboard.type(key)
        # something live arrives between two keys: the thread is drawn again
        page.evaluate(f"check.frame({{type: 'typing', thread: 'T1', {sam}}})")
        page.evaluate(
            f"check.add({{seq: {30 + n}, kind: 'message', actor: {{kind: 'staff', id: 3,"
            f" name: 'Sam Staff'}}, payload: {{thread: 'T1', item: 's3.live{n}',"
            " parent: 's3.aaaa'}})"
        )
        page.wait_for_selector(f"#thread-{REF} li[data-item='s3.live{n}']")
    assert box.input_value() == "Thanks!"
    assert page.evaluate("document.activeElement.id") == f"thread-text-{REF}"
    assert errors == []


def test_a_note_drawn_again_stays_a_note(browser: Any, base_url: str) -> None:
    """Staff tick "internal note" and type; the composer is drawn again (keys
    arriving, approval coming) before they send: it comes back ticked. Drawn
    back unticked, the note would go to the client as a reply."""
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('staff', {keys: 'failing'})")
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    page.wait_for_selector(f"#thread-{REF} li.item")
    page.fill(f"#thread-text-{REF}", "check the visa dates")
    page.check(f"#thread-note-{REF}")
    page.evaluate("check.keys('none')")  # the device's keys go: a notice instead
    page.wait_for_selector(f"#thread-text-{REF}", state="detached")
    page.evaluate("check.keys('failing')")  # and come back: a new composer
    page.wait_for_selector(f"#thread-note-{REF}")
    assert page.is_checked(f"#thread-note-{REF}")
    assert page.input_value(f"#thread-text-{REF}") == "check the visa dates"
    assert page.get_attribute(f"#thread-composer-{REF}", "data-internal") == "1"
    assert errors == []


def test_a_firm_sync_never_takes_the_composer_away(browser: Any, base_url: str) -> None:
    """A firm sync (a certificate or key event arriving) swaps the keyring's
    verifier: the matter's chain is verified again at the next seal, and its epoch
    reads 0 until then. The composer stays, the same node with its text and the
    focus (drawn again, keys typed in between would go nowhere)."""
    page, errors, box = typing_in_t1(browser, base_url, "staff")
    page.keyboard.type("check the ")
    page.evaluate(f"window.before = document.getElementById('thread-text-{REF}')")
    page.evaluate("check.keys('resyncing')")
    page.keyboard.type("visa dates")
    assert page.evaluate(f"document.getElementById('thread-text-{REF}') === window.before")
    assert box.input_value() == "check the visa dates"
    assert page.evaluate("document.activeElement.id") == f"thread-text-{REF}"
    assert page.is_hidden(f"#write-state-{REF}")
    assert errors == []


def test_an_internal_thread_drawn_again_stays_internal(browser: Any, base_url: str) -> None:
    """Staff start a new conversation, choose "internal" and type; the composer is
    drawn again before they send: still internal. Drawn back as a client thread
    (its one client ticked by default), it would go to the client."""
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('staff', {keys: 'failing'})")
    page.click(f"#new-thread-{REF}")
    page.check(f"#new-thread-kind-{REF} input[value=internal]")
    page.fill(f"#thread-subject-{REF}", "Visa dates")
    page.fill(f"#thread-text-{REF}", "check the visa dates")
    page.evaluate("check.keys('none')")
    page.wait_for_selector(f"#thread-text-{REF}", state="detached")
    page.evaluate("check.keys('failing')")
    page.wait_for_selector(f"#new-thread-kind-{REF}")
    assert page.is_checked(f"#new-thread-kind-{REF} input[value=internal]")
    assert page.is_hidden(f"#recipients-{REF}")
    assert page.get_attribute(f"#thread-composer-{REF}", "data-internal") == "1"
    assert page.input_value(f"#thread-text-{REF}") == "check the visa dates"
    assert errors == []


XSS_NAME = "<img src=x onerror=alert(1)>.svg"


@pytest.mark.parametrize("size", [(360, 800), (1280, 800)])
def test_attachments_are_text_and_the_composer_attaches(
    browser: Any, base_url: str, size: tuple[int, int]
) -> None:
    """An item's attachments: each name and size as text (a name made of markup
    makes no element), Download per file; an item naming fewer file ids than its
    body has descriptors offers none. The composer's picker: chosen files listed
    as text, removable, kept when the composer is drawn again; files alone make
    the reply sendable (no text required)."""
    page, errors = open_page(browser, base_url, *size)
    dialogs: list[str] = []

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.evaluate("check.setup('client', {keys: 'attached'})")
    page.wait_for_selector(f"#thread-{REF} li.attachment")  # the only thread opens by itself
    pane = page.locator(f"#thread-{REF}")
    first = pane.locator("li.item[data-item='s3.aaaa'] li.attachment")
    assert first.locator(".attachment-name").all_text_contents() == [XSS_NAME, "report.pdf"]
    assert first.locator(".attachment-size").all_text_contents() == ["123 bytes", "4.2 MB"]
    assert [first.nth(i).get_attribute("data-file") for i in range(2)] == ["F1", "F2"]
    assert first.get_by_role("button", name=f"Download {XSS_NAME}").count() == 1
    assert page.locator("img").count() == 0
    second = pane.locator("li.item[data-item='c12.bbbb'] li.attachment")
    assert second.locator(".attachment-status").all_text_contents() == [
        "This file is not available.",
        "This file is not available.",
    ]
    assert second.locator("button").count() == 0
    # a download the server refuses (this static server has no such file): said, nothing saved
    first.nth(0).get_by_role("button", name="Download").click()
    page.wait_for_selector(f"#thread-{REF} li.attachment[data-file=F1][data-state=failed]")
    assert first.nth(0).locator(".attachment-status").text_content() == (
        "Could not download (HTTP 404)."
    )

    composer = page.locator(f"#thread-composer-{REF}")
    assert composer.get_by_role("button", name="Attach files").is_visible()
    text = page.locator(f"#thread-text-{REF}")
    assert text.evaluate("t => t.required")
    page.set_input_files(
        f"#thread-files-{REF}",
        [
            {"name": XSS_NAME, "mimeType": "image/svg+xml", "buffer": b"<svg/>"},
            {"name": "b.txt", "mimeType": "text/plain", "buffer": b"b" * 1500},
        ],
    )
    chosen = composer.locator("li.attach-file")
    assert chosen.locator(".attach-name").all_text_contents() == [XSS_NAME, "b.txt"]
    assert chosen.locator(".attach-size").all_text_contents() == ["6 bytes", "1.5 KB"]
    assert not text.evaluate("t => t.required"), "files alone are a message"
    assert page.locator("img").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
    # the composer drawn again (keys arrived, approval came): the files stay chosen
    page.evaluate(
        "view.composerForm.dataset.want = 'before'; view.drawComposer(view.model.thread(view.open))"
    )
    assert chosen.locator(".attach-name").all_text_contents() == [XSS_NAME, "b.txt"]
    assert not text.evaluate("t => t.required")
    chosen.nth(0).get_by_role("button", name=f"Remove {XSS_NAME}").click()
    assert chosen.locator(".attach-name").all_text_contents() == ["b.txt"]
    chosen.nth(0).get_by_role("button", name="Remove").click()
    assert chosen.count() == 0 and text.evaluate("t => t.required")
    assert dialogs == [] and errors == []


def test_a_thread_a_link_names_opens_first_on_a_phone(browser: Any, base_url: str) -> None:
    """The staff review inbox links a client's message to its thread: on a phone, where
    the list of several threads would come first, that thread opens instead."""
    page, errors = open_page(browser, base_url, 360, 800)
    page.evaluate("check.setup('staff', {keys: 'failing', open: 'T1'})")
    page.wait_for_function(f"document.querySelector('#threads-{REF}').dataset.open === 'T1'")
    page.wait_for_selector(f"#thread-{REF} li.item")
    assert page.is_hidden(f"#thread-list-{REF}")
    # without a link the list comes first, as before
    page.evaluate("check.setup('staff', {keys: 'failing'})")
    page.wait_for_selector(f"#thread-list-{REF} li.thread-row")
    assert page.get_attribute(f"#threads-{REF}", "data-open") == ""
    assert errors == []


VERIFIED = "li.item > .message-body[data-crypto=ok]"


def verified_thread(browser: Any, base_url: str) -> tuple[Any, list[str]]:
    """A phone-sized client page whose one thread (T1, open by itself) shows its two
    items verified (``keys: 'attached'``): the page and its errors."""
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('client', {keys: 'attached'})")
    page.wait_for_function(f"document.querySelectorAll('#thread-{REF} {VERIFIED}').length === 2")
    return page, errors


# Every .message-body of the thread that ever says "pending" from now on (added, or
# its data-crypto changed): the page records them for the test to read.
WATCH_PENDING = """() => {
  window.pendingSeen = 0;
  const pane = document.getElementById('thread-ABCD1234');
  const pending = (n) => n.nodeType === 1 && (n.matches('.message-body[data-crypto=pending]')
    || n.querySelector('.message-body[data-crypto=pending]'));
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' ? pending(r.target) : [...r.addedNodes].some(pending)) {
        window.pendingSeen += 1;
      }
    }
  }).observe(pane, { subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-crypto'] });
}"""


def test_a_key_change_opens_the_bodies_again_without_a_flash(browser: Any, base_url: str) -> None:
    """A key change (a resync after a ``keys`` event) opens every shown body again with
    the keys as read now, off screen: the verified bodies stay on screen, never
    "Decrypting" again, and take the new outcome in place, here a warning when the new
    keys no longer verify them."""
    page, errors = verified_thread(browser, base_url)
    pane = page.locator(f"#thread-{REF}")
    bodies = pane.locator("li.item > .message-body")
    sam = "who: 's3', reader: 's3', name: 'Sam Staff'"
    page.evaluate(f"check.frame({{type: 'receipt', thread: 'T1', {sam}, upto: 2}})")
    page.wait_for_selector(f"#thread-{REF} li[data-item='c12.bbbb'] .seen-by")
    page.evaluate(WATCH_PENDING)
    page.evaluate("check.keys('attached')")  # the same keys read again: the same outcome
    page.wait_for_function(
        "window.view.rows.size === 2 && [...window.view.rows.values()].every((r) => !r.stale)"
    )
    page.evaluate("check.keys('failing')")  # keys under which they no longer verify
    page.wait_for_function(
        f"document.querySelectorAll('#thread-{REF} li.item > .message-body[role=alert]')"
        ".length === 2"
    )
    assert [bodies.nth(i).get_attribute("data-crypto") for i in range(2)] == [
        "crypto_signature",
        "crypto_signature",
    ]
    assert page.evaluate("window.pendingSeen") == 0
    # what the draw put on the row went on to its copy (no redraw came since)
    assert page.locator(f"#thread-{REF} li[data-item='c12.bbbb'] .seen-by").count() == 1
    assert pane.locator("li.item[aria-busy]").count() == 0
    assert errors == []


def test_a_body_opened_again_never_keeps_its_old_content_for_long(
    browser: Any, base_url: str
) -> None:
    """The copy opened with the new keys takes the row's place even when it has no
    outcome to wait for (the keys are gone: "no keys" at once) or its check never ends
    (then "Decrypting" after a short wait): content verified under earlier keys never
    stays on screen, aria-busy, for good."""
    page, errors = verified_thread(browser, base_url)
    pane = page.locator(f"#thread-{REF}")
    codes = "li.item > .message-body"
    verified = f"#thread-{REF} {VERIFIED}"
    page.evaluate("check.keys('none')")
    page.wait_for_function(
        f"document.querySelectorAll('#thread-{REF} {codes}[data-crypto=no_keys]').length === 2"
        f" && !document.querySelector('#thread-{REF} li.item[aria-busy]')"
    )
    page.evaluate("check.keys('attached')")
    page.wait_for_function(f"document.querySelectorAll('{verified}').length === 2")
    page.evaluate("check.keys('hanging')")
    assert pane.locator("li.item[aria-busy=true]").count() == 2  # the old outcome, being checked
    page.wait_for_function(
        f"document.querySelectorAll('#thread-{REF} {codes}[data-crypto=pending]').length === 2"
        f" && !document.querySelector('#thread-{REF} li.item[aria-busy]')",
        timeout=10_000,
    )
    assert pane.locator(f"{codes}.verified").count() == 0
    assert errors == []


def test_a_key_change_opens_the_thread_titles_again(browser: Any, base_url: str) -> None:
    """A thread's title comes from its verified opener: after a key change it is opened
    again like the bodies, kept on screen until then, and a thread whose opener no
    longer verifies loses the title it had (the generic one instead)."""
    page, errors = verified_thread(browser, base_url)
    title = f"#thread-list-{REF} li.thread-row[data-thread='T1'] .thread-title"
    page.wait_for_function(f"document.querySelector(\"{title}\").textContent === 'text x1'")
    page.evaluate("check.keys('attached')")  # the same keys read again: the same title
    page.wait_for_function("window.view.staleTitles.size === 0")
    assert page.locator(title).text_content() == "text x1"
    page.evaluate("check.keys('failing')")  # keys under which the opener no longer verifies
    page.wait_for_function(f"document.querySelector(\"{title}\").textContent === 'Message'")
    assert "text x1" not in page.locator(f"#thread-{REF}").inner_text()
    assert errors == []


SAM = "{kind: 'staff', id: 3, name: 'Sam Staff'}"
T1_TITLE = f"#thread-list-{REF} li.thread-row[data-thread='T1'] .thread-title"


def title_is(page: Any, text: str, timeout: float = 5000) -> None:
    page.wait_for_function(
        f"document.querySelector(\"{T1_TITLE}\").textContent === '{text}'", timeout=timeout
    )


def test_a_thread_title_follows_its_openers_edits_and_deletion(browser: Any, base_url: str) -> None:
    """The title is taken from the opener's shown version as its body is: never from an
    edit whose envelope is another item's (its body warns), from an edit that verifies,
    and from nothing once the opener is deleted (its words leave the list and the
    heading as they leave the thread)."""
    page, errors = verified_thread(browser, base_url)
    title_is(page, "text x1")
    edit = f"kind: 'edit', actor: {SAM}, payload: {{thread: 'T1', item: 's3.aaaa'}}"
    # Cleo's reply's envelope served as Sam's edit of his opener
    page.evaluate(f"check.add({{seq: 20, {edit}, blob: 'x2'}})")
    opener = f"#thread-{REF} li[data-item='s3.aaaa'] > .message-body"
    page.wait_for_selector(f"{opener}[data-crypto=sender_mismatch]")
    title_is(page, "Message")
    page.evaluate(f"check.add({{seq: 21, {edit}, blob: 'x3'}})")  # his own edit
    title_is(page, "text x3")
    assert page.locator(f"#thread-{REF} .thread-heading").text_content() == "text x3"
    page.evaluate(f"check.add({{seq: 22, {edit.replace('edit', 'delete', 1)}, blob: null}})")
    title_is(page, "Message")
    assert page.locator(f"#thread-{REF} .thread-heading").text_content() == "Message"
    assert "text x3" not in page.locator(f"#threads-{REF}").inner_text()
    assert errors == []


def test_a_title_from_earlier_keys_gives_way_when_its_check_never_ends(
    browser: Any, base_url: str
) -> None:
    """As a body does: a title verified under the earlier keys stays while its opener is
    opened again, but not for ever when that never ends (a key directory read the server
    never answers): the generic title then, the new outcome once it comes."""
    page, errors = verified_thread(browser, base_url)
    title_is(page, "text x1")
    page.evaluate("check.keys('hanging')")
    assert page.locator(T1_TITLE).text_content() == "text x1"
    title_is(page, "Message", timeout=10000)
    page.evaluate("check.keys('attached')")
    title_is(page, "text x1")
    assert errors == []


def test_a_redraw_keeps_the_keyboard_on_an_items_button(browser: Any, base_url: str) -> None:
    """Someone tabbing through the items (here to Edit on their own message) keeps the
    focus when the thread is drawn again under them: a receipt arrives ("Seen by")."""
    page, errors = verified_thread(browser, base_url)
    edit = f"#thread-{REF} li[data-item='c12.bbbb'] .item-edit"
    page.locator(edit).focus()
    sam = "who: 's3', reader: 's3', name: 'Sam Staff'"
    page.evaluate(f"check.frame({{type: 'receipt', thread: 'T1', {sam}, upto: 2}})")
    page.wait_for_selector(f"#thread-{REF} li[data-item='c12.bbbb'] .seen-by")
    focused = '(() => { const a = document.activeElement; return a.matches("' + edit + '"); })()'
    assert page.evaluate(focused)
    assert errors == []


def test_a_tags_button_keeps_the_focus_as_that_tags_not_anothers(
    browser: Any, base_url: str
) -> None:
    """A staff member on the × of one of an item's tags, when the item's row is drawn
    anew (another tag comes): the focus is on the × of the same tag, never on another's
    (Enter would remove the wrong tag)."""
    page, errors = open_page(browser, base_url, 390, 844)
    page.evaluate("check.setup('staff', {keys: 'failing'})")
    page.click(f"#thread-list-{REF} li[data-thread=T1] .thread-open")
    row = f"#thread-{REF} li.item[data-item='c12.bbbb']"
    tag = "kind: 'tag', actor: {kind: 'staff', id: 4, name: 'Tess Staff'}, audience: 'staff'"
    payload = "payload: {item: 'c12.bbbb', tag: 'tagBBBBBBBBBBBBBBBBBBB'}"
    page.evaluate(f"check.add({{seq: 30, {tag}, {payload}, blob: null}})")
    second = f"{row} li.tag-chip[data-tag='tagBBBBBBBBBBBBBBBBBBB'] .tag-remove"
    page.locator(second).focus()
    payload = "payload: {item: 'c12.bbbb', tag: 'tagCCCCCCCCCCCCCCCCCCC'}"
    page.evaluate(f"check.add({{seq: 31, {tag}, {payload}, blob: null}})")
    page.wait_for_selector(f"{row} li.tag-chip[data-tag='tagCCCCCCCCCCCCCCCCCCC']")
    focused = "s => document.activeElement === document.querySelector(s)"
    assert page.evaluate(focused, second)
    assert errors == []


def test_a_row_opened_again_with_new_keys_keeps_the_focus_on_its_button(
    browser: Any, base_url: str
) -> None:
    """A key change swaps each row for its copy opened with the new keys: the keyboard on
    the second file's Download stays there (not on the first file's, not lost)."""
    page, errors = verified_thread(browser, base_url)
    row = f"#thread-{REF} li.item[data-item='s3.aaaa']"
    second = f"{row} li[data-file='F2'] .attachment-download"
    page.locator(second).focus()
    page.evaluate(f"document.querySelector(\"{row}\").dataset.before = '1'")
    page.evaluate("check.keys('attached')")
    page.wait_for_selector(f"{row}:not([data-before]) li[data-file='F2'] .attachment-download")
    focused = "s => document.activeElement === document.querySelector(s)"
    assert page.evaluate(focused, second)
    assert errors == []


def test_my_key_revoked_takes_the_composer_away(browser: Any, base_url: str) -> None:
    """Once a revocation of this device's key is known (keysync: certified() is null) a
    key change draws the notice in the composer's place, and above the list, instead of
    a form whose sends the server would refuse; the conversation stays readable."""
    page, errors = verified_thread(browser, base_url)
    page.wait_for_selector(f"#thread-text-{REF}")
    page.evaluate("check.keys('revoked')")
    page.wait_for_selector(f"#thread-{REF} > p.key-notice")
    assert page.locator(f"#thread-composer-{REF}").count() == 0
    state = page.locator(f"#write-state-{REF}")  # above the list (behind the thread on a phone)
    assert state.get_attribute("hidden") is None and state.text_content()
    page.wait_for_function(f"document.querySelectorAll('#thread-{REF} {VERIFIED}').length === 2")
    assert errors == []
