"""The dump canary driven by a real Chromium: what the pages type is stored nowhere in clear.

The org admin signs in with a unique password, sets up the firm keys in the
page and invites a client from their own mail client with a unique subject
and welcome text; the client opens the link from the prepared message (its
invite secret ``r`` unique by construction), chooses a unique password and
replies with a unique message and a file (unique name, unique contents); the
admin downloads it, answers with a file of their own and writes an internal
note, each unique, and each side sees the other's text decrypted and
downloads the other's file intact. Then the database
as stored (the SQLite file, or ``pg_dump``), the file store directory and the
server's log lines are searched for every one of them (the files' names and
contents too): 0 hits, with what was
searched and the counts printed. The Python client's half of the canary is
tests/test_sdk_server.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from rtportal import base64url
from tests.conftest import MakeFirm
from tests.support.attachpage import Upload, attachment, choose_files, download
from tests.support.browserfirm import (
    accept_link,
    admin_signs_in,
    invite_by_own_mail,
    set_up_firm_keys,
)
from tests.support.canary import canary, log_lines, needles, search  # noqa: F401
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
from tests.test_browser_feed import WAIT_MS

pytestmark = pytest.mark.timeout(300)


def _contents(what: str) -> bytes:
    """A file's unique plaintext: its canary line again and again (about 100 KB)."""
    return (canary(what) + "\n").encode() * 3000


async def test_what_the_pages_type_is_stored_and_logged_nowhere(
    log_lines: list[str],  # noqa: F811 - first: the log from the server's start
    browser: Any,  # noqa: F811
    portal: RunningServer,  # noqa: F811
    make_firm: MakeFirm,
    mailbox: Mailbox,  # noqa: F811
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Canary & Co")
    slug = await firm_slug(kit)
    base, ref = portal.base_url, kit.ref
    admin_password, client_password = canary("admin-password"), canary("client-password")
    subject, welcome = canary("subject"), canary("welcome")
    reply, answer, note = canary("client-reply"), canary("staff-answer"), canary("staff-note")
    # attachments both ways: a unique name and unique contents (more than one RTA1 chunk)
    client_file = Upload(f"{canary('client-file')}.txt", "text/plain", _contents("client-data"))
    staff_file = Upload(f"{canary('staff-file')}.pdf", "application/pdf", _contents("staff-data"))
    admin_email = "ada.canary@harbour.test"
    await give_password(kit.db, kit.settings, kit.admin, admin_email, admin_password)

    async with (
        browser_page(browser, "desktop") as (admin, admin_watch),
        browser_page(browser, "desktop") as (client, client_watch),
    ):
        # --- The admin's password typed in the page; the firm keys made in the page.
        await admin_signs_in(admin, base, slug, admin_email, admin_password, mailbox)
        root = await set_up_firm_keys(admin)

        # --- An invite from the admin's own mail client, subject and welcome typed in.
        contact = ("Cora Canary", "cora.canary@client.test")
        mail = await invite_by_own_mail(admin, base, slug, ref, contact, (subject, welcome))

        # --- The client opens the link, sets a password in the page, reads and replies.
        await accept_link(client, mail.link, client_password)
        matter = client.locator(f"#matter-{ref}")
        await expect(matter.locator(".message-text").first).to_have_text(welcome, timeout=WAIT_MS)
        await expect(matter.locator(".message-subject").first).to_have_text(subject)
        await client.locator(f"#thread-text-{ref}").fill(reply)
        await choose_files(client, ref, [client_file])
        await matter.locator(".composer button[type=submit]").click()
        await expect(matter.get_by_text(reply, exact=True)).to_be_visible(timeout=WAIT_MS)

        # --- The admin reads the reply, answers, and writes an internal note.
        staff_view = admin.locator(f"#matter-{ref}")
        await expect(staff_view.get_by_text(reply, exact=True)).to_be_visible(timeout=WAIT_MS)
        row = attachment(staff_view, client_file.name)
        assert (await download(admin, row)).data == client_file.data
        await admin.locator(f"#thread-text-{ref}").fill(answer)
        await choose_files(admin, ref, [staff_file])
        await staff_view.locator(".composer button[type=submit]").click()
        await expect(staff_view.get_by_text(answer, exact=True)).to_be_visible(timeout=WAIT_MS)
        await admin.locator(f"#thread-text-{ref}").fill(note)
        await admin.locator(f"#thread-note-{ref}").check()
        await staff_view.locator(".composer button[type=submit]").click()
        await expect(staff_view.locator(".message-body.internal .message-text")).to_have_text(
            note, timeout=WAIT_MS
        )
        # the client sees the answer (live), never the note
        await expect(matter.get_by_text(answer, exact=True)).to_be_visible(timeout=WAIT_MS)
        row = attachment(matter, staff_file.name)
        assert (await download(client, row)).data == staff_file.data
        assert note not in await client.content()
        # the admin's first sign-in asks for the authenticator code (401 on signin and me)
        expected = ("/api/v1/me", "/api/v1/signin")
        assert [p for p in admin_watch.problems if not p.endswith(expected)] == []
        assert client_watch.problems == []

    # --- Everything the server keeps, searched.
    url, files = kit.settings.database_url, kit.settings.files_dir
    [db, store, _] = await search(url, files, log_lines, [kit.name.encode()])
    assert db.hits == 1 and log_lines  # the searches see what is there
    assert "(2 files)" in store.what, store.what  # both attachments' ciphertext
    texts = [admin_password, client_password, subject, welcome, reply, answer, note]
    texts += [client_file.name, staff_file.name]
    texts += [f.data[:64].decode() for f in (client_file, staff_file)]
    secret = base64url.decode(mail.secret, 32)
    assert secret is not None
    raw = [secret, root.seed]  # the link's invite secret; the firm root key's seed
    stacks = await search(url, files, log_lines, needles(texts, raw))
    assert [(s.what, s.hits) for s in stacks] == [(s.what, 0) for s in stacks]
