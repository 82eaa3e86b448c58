"""Finding a thread item on a page (protocol v2: items live in threads, docs/threads.md).

A staff page names an item by its event's seq, a client's page by its
cursor token (a contact never sees a seq); either way the item's row is
``#item-<ref>-<key>`` inside the open thread, so a test opens the thread
first, as a reader would.
"""

from __future__ import annotations

from typing import Any

from tests.support.pagewait import WAIT_MS


def client_at(server: Any, matter_id: int, seq: int) -> str:
    """What names event ``seq`` of a matter on a client's page: its cursor token."""
    token: str = server.app.state.runtime.frames.cursors.event_token(matter_id, seq)
    return token


def item_body(page: Any, ref: str, key: int | str) -> Any:
    """The message body of the item (or claim) named ``key`` in the open thread."""
    return page.locator(f"#item-{ref}-{key} .message-body")


async def open_thread(page: Any, ref: str, thread: str) -> Any:
    """Open ``thread`` from the matter's thread list, as a reader would; returns its pane.

    On a phone an open thread (the newest opens by itself) replaces the list:
    back to the list first. Returns once the thread's first page of items has
    arrived (it redraws the rows, so anything typed in earlier could be lost)."""
    from playwright.async_api import expect

    row = page.locator(f"#thread-list-{ref} li.thread-row[data-thread='{thread}'] .thread-open")
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    if not await row.is_visible():
        await page.locator(f"#thread-{ref} .thread-back").click(timeout=WAIT_MS)
    await row.click(timeout=WAIT_MS)
    pane = page.locator(f"#thread-{ref}")
    await expect(pane).to_have_attribute("data-thread", thread, timeout=WAIT_MS)
    await expect(pane).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)
    return pane
