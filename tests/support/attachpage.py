"""Attachments driven in a thread page (static/client/attachui.js's hooks).

A file is chosen as a person does: the visible "Attach files" button opens
the browser's file chooser; a download is the browser's own download
(Playwright's ``expect_download``), whose bytes and URL the test reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.pagewait import WAIT_MS


@dataclass(frozen=True)
class Upload:
    name: str
    mime: str
    data: bytes

    def payload(self) -> dict[str, Any]:
        return {"name": self.name, "mimeType": self.mime, "buffer": self.data}


async def choose_files(page: Any, ref: str, files: list[Upload]) -> None:
    """Click "Attach files" in the open thread's composer and pick ``files``."""
    from playwright.async_api import expect

    composer = page.locator(f"#thread-composer-{ref}")
    pick = composer.get_by_role("button", name="Attach files")
    await expect(pick).to_be_visible(timeout=WAIT_MS)
    async with page.expect_file_chooser() as chooser:
        await pick.click()
    await (await chooser.value).set_files([f.payload() for f in files])
    await expect(composer.locator("li.attach-file")).to_have_count(len(files))


def attachment(item: Any, name: str) -> Any:
    """The row of the attachment named ``name`` (exactly) under a thread item."""
    return item.locator("li.attachment").filter(
        has=item.page.locator(".attachment-name").get_by_text(name, exact=True)
    )


@dataclass(frozen=True)
class Saved:
    data: bytes
    url: str  # what the browser downloaded from (a blob: URL of the page's origin)
    suggested: str  # the file name the browser was given


async def download(
    page: Any, row: Any, during: Callable[[], Awaitable[None]] | None = None
) -> Saved:
    """Click the row's Download: the browser's download, its bytes and where it came
    from; ``during`` runs once clicked, while the page fetches and decrypts."""
    from playwright.async_api import expect

    try:
        async with page.expect_download(timeout=WAIT_MS) as info:
            await row.get_by_role("button", name="Download").click()
            if during is not None:
                await during()
        got = await info.value
    except Exception as exc:  # what the page said of it explains a download that never came
        said = await row.evaluate("r => [r.dataset.state, r.textContent]")
        raise AssertionError(f"no download: {exc}; the row: {said}") from exc
    path = await got.path()
    await expect(row).to_have_attribute("data-state", "saved", timeout=WAIT_MS)
    data = await asyncio.to_thread(Path(path).read_bytes)
    return Saved(data, got.url, got.suggested_filename)
