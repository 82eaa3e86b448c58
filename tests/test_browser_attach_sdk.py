"""Attachments cross between the Python library and the page, both ways, in Chromium.

The firm's keys and the staff side are the library's (tests/support/keyfirm.py,
as tests/test_browser_e2ee.py); the client is a real page. A file sealed with
RTA1 in Python, uploaded with its ``Content-Digest`` and named by a message
whose RTAD descriptor is sealed in Python, is listed and downloaded by the
page, its bytes equal; a file the page attaches to her reply is opened in
Python from the descriptor in her envelope and the blob the server serves,
its bytes equal. One format, two implementations (docs/security.md §9).
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest

from rtportal import base64url
from rtportal.crypto.attachment import decrypt_bytes, encrypt_bytes
from rtportal.crypto.envelope import AttachmentDescriptor, Envelope
from rtportal.settings import Settings
from tests import test_browser_e2ee as e2ee
from tests import test_browser_feed as feed_test
from tests.conftest import MakeFirm
from tests.support.attachpage import Upload, attachment, choose_files, download
from tests.support.browserfirm import accept_link
from tests.support.keyfirm import b64
from tests.support.server import RunningServer
from tests.test_invites import _new_contact

pytestmark = pytest.mark.timeout(300)

browser = feed_test.browser  # Debian's Chromium (fails in CI when missing, never downloaded)
portal = feed_test.portal
WAIT_MS = feed_test.WAIT_MS


async def test_a_file_from_python_to_the_page_and_back(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, settings: Settings
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Interop & Co")
    ref = kit.ref
    async with e2ee.api_client(portal) as http:
        keys, slug = await e2ee.e2ee_firm(http, kit, settings)
        contact_id = await _new_contact(http, kit)
        client, thread = f"c{contact_id}", f"welcome-{contact_id}"
        secret, token = await e2ee.invite_round(http, kit, keys, contact_id, "own_mail")
        context = await browser.new_context(**e2ee.LAYOUTS["desktop"])
        page = await context.new_page()
        frk = keys.world.frk.public.link
        link = f"{portal.base_url}/?firm={slug}#t={token}&r={b64(secret)}&frk={frk}"
        await accept_link(page, link, e2ee.CLIENT_PASSWORD)
        pane = page.locator(f"#thread-{ref}")
        # (the thread's first page drawn: a row clicked later is not drawn again under it)
        await expect(pane).to_have_attribute("data-loaded", "1", timeout=WAIT_MS)

        # --- Python: seal, upload, and send a message naming the file.
        data = os.urandom(200_000)
        att_id, fk, blob = encrypt_bytes(data)
        ct_sha256 = hashlib.sha256(blob).digest()
        digest = f"sha-256=:{base64.b64encode(ct_sha256).decode()}:"
        headers = {**kit.auth("admin"), "Content-Digest": digest}
        headers["Content-Type"] = "application/octet-stream"
        up = await http.post(f"/api/v1/matters/{ref}/files", content=blob, headers=headers)
        assert up.status_code == 201, up.text
        file_id = up.json()["file"]["id"]
        desc = AttachmentDescriptor(att_id, fk, ct_sha256, len(data), "from-python.bin", "")
        env = keys.seal_body(keys.admin, thread, "A file from the library", attachments=(desc,))
        body = {
            "kind": "message",
            "payload": {"thread": thread, "files": [file_id]},
            "blob": b64(env),
            "client_id": base64url.encode(Envelope.decode(env).header.msg_id),
        }
        sent = await http.post(
            f"/api/v1/matters/{ref}/events", json=body, headers=kit.auth("admin")
        )
        assert sent.status_code == 201, sent.text

        # --- The page lists it and downloads it: the same bytes.
        row = attachment(pane, desc.name)
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        await expect(row.locator(".attachment-size")).to_have_text("200 KB")
        assert (await download(page, row)).data == data

        # --- The page attaches a file to her reply; Python opens it.
        mine = Upload("from-the-page.txt", "text/plain", os.urandom(70_000))
        await choose_files(page, ref, [mine])
        await page.locator(f"#thread-composer-{ref} button[type=submit]").click()
        await expect(page.locator(f"#thread-composer-{ref} .form-status")).to_have_text(
            "Sent.", timeout=WAIT_MS
        )
        reply = [
            e for e in await e2ee.events_of(http, kit, "message") if e["actor"]["kind"] == "contact"
        ]
        assert len(reply) == 1
        sender, opened = keys.open(
            keys.admin, thread, base64url.decode(reply[0]["blob"], 1 << 20) or b""
        )
        assert sender == client
        [got] = opened.attachments
        assert (got.name, got.mime, got.size) == (mine.name, mine.mime, len(mine.data))
        [their_file] = reply[0]["payload"]["files"]
        fetched = await http.get(
            f"/api/v1/matters/{ref}/files/{their_file}", headers=kit.auth("admin")
        )
        assert fetched.status_code == 200, fetched.text
        plain = decrypt_bytes(got.fk, got.att_id, fetched.content, ct_sha256=got.ct_sha256)
        assert plain == mine.data
        await context.close()
