"""Regenerated login details in a real Chromium (docs/keys.md "Regenerate login
details / lost password").

A client accepts an end-to-end invite in the browser and replies; staff
(the Python client, as a staff browser would) regenerate the login details:
a new ``R'``, the next epoch with its key, the history re-wrapped and the
old key revoked. The same browser profile, still holding the old keyring in
IndexedDB and a revoked session, opens the new link: it sets a new
password, and the backup the server keeps now holds the identity certified
for the matter now; the welcome and the reply the old key signed before
its revocation both open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rtportal.db.models import Credential
from rtportal.sdk import invitekeys, records
from tests import test_browser_feed as feed_test
from tests.conftest import MakeFirm
from tests.support.browserfirm import accept_link
from tests.support.sdkworld import sdk_world
from tests.support.server import RunningServer
from tests.support.threadpage import client_at, item_body

pytestmark = pytest.mark.timeout(240)

browser = feed_test.browser
portal = feed_test.portal
PageWatch = feed_test.PageWatch
WAIT_MS = feed_test.WAIT_MS


async def _accept(page: Any, portal: RunningServer, link: str, password: str) -> None:
    """Open ``link``'s fragment on the test's server (the link names the settings'
    public URL) and set ``password``."""
    base, fragment = link.split("#", 1)
    await accept_link(page, f"{portal.base_url}/?{base.split('?', 1)[1]}#{fragment}", password)


async def test_a_regenerated_link_replaces_the_keys_in_the_same_browser(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    kit = await make_firm(name="Harbour & Co")
    async with sdk_world(portal, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        cleo = await w.contact("Cleo", matter)
        [invited] = await w.staff.invite(ref, [(cleo.id, "Welcome", "hello Cleo")])
        assert invited.link is not None
        context = await browser.new_context(viewport={"width": 390, "height": 844})
        page = await context.new_page()
        watch = PageWatch(page)
        await _accept(page, portal, invited.link, "first quiet harbour")
        await page.locator(f"#thread-text-{ref}").fill("written with the first key")
        await page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        mine = page.locator(f"#matter-{ref} .message-body[data-sender=c{cleo.id}]")
        await expect(mine.locator(".message-text")).to_have_text(
            "written with the first key", timeout=WAIT_MS
        )

        regenerated = await w.staff.regenerate(ref, invite_id=invited.invite_id, contact_id=cleo.id)
        assert regenerated.link is not None
        # the same profile (old keyring in IndexedDB, its session revoked) opens the new link
        # once its page has shown that the session ended (else that screen, arriving late
        # on a loaded machine, replaces the acceptance page the link opened)
        await expect(page.locator("#signin")).to_be_visible(timeout=WAIT_MS)
        watch.problems.clear()
        await _accept(page, portal, regenerated.link, "second loud lighthouse")
        events = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
        shown = [e for e in events["events"] if e["kind"] in ("welcome", "message")]
        assert len(shown) == 2
        for event, text in zip(shown, ["hello Cleo", "written with the first key"], strict=True):
            body = item_body(page, ref, client_at(portal, matter.id, event["seq"]))
            await expect(body).to_have_attribute("data-crypto", "ok", timeout=WAIT_MS)
            await expect(body.locator(".message-text")).to_have_text(text)
        await page.locator(f"#thread-text-{ref}").fill("written with the new key")
        await page.locator(f"#matter-{ref} .composer button[type=submit]").click()
        await expect(mine.last.locator(".message-text")).to_have_text(
            "written with the new key", timeout=WAIT_MS
        )
        assert [i.body.text for i in await w.staff.read(ref)][-1] == "written with the new key"

        # the backup the server keeps holds the identity certified now (from R')
        secret = invitekeys.parse_accept_fragment(regenerated.link)[1]
        now = records.invite_identity(secret, w.slug, f"c{cleo.id}")
        async with kit.db.read() as session:
            cred = (
                await session.execute(
                    select(Credential).where(
                        Credential.principal_kind == "contact", Credential.principal_id == cleo.id
                    )
                )
            ).scalar_one()
        assert cred.public_keys == now.public.record()
        # the revoked session's page asks who it is once (401) before the link signs in
        assert [p for p in watch.problems if not p.endswith("/api/v1/me")] == []
        await context.close()
