"""A firm's keys set up and its clients invited through the staff pages, in Playwright.

The steps the browser tests of docs/keys.md share: signing in (an org
admin's first sign-in enrols the authenticator from the emailed key), the
firm key set-up on the Staff screen (the FRK made in the page, its key file
downloaded), adding a contact in the invite flyout, and an invite delivered
from the staff member's own mail client (the link read from the prepared
``mailto:`` message, never seen by the server).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

import pyotp

from rtportal import base64url
from tests.test_browser_feed import WAIT_MS


class TotpMailbox(Protocol):
    async def totp_key(self, address: str) -> str: ...


async def sign_in(page: Any, base: str, slug: str, email: str, password: str) -> Any:
    """Email and password typed into the sign-in form; returns the form."""
    from playwright.async_api import expect

    await page.goto(f"{base}/?firm={slug}")
    signin = page.locator("#signin")
    await expect(signin).to_be_visible(timeout=WAIT_MS)
    await signin.get_by_label("Email address").fill(email)
    await signin.get_by_label("Password").fill(password)
    await signin.get_by_role("button", name="Sign in").click()
    return signin


async def admin_signs_in(
    page: Any, base: str, slug: str, email: str, password: str, mails: TotpMailbox
) -> None:
    """An org admin's first sign-in: the authenticator key arrives by email, then Continue."""
    from playwright.async_api import expect

    signin = await sign_in(page, base, slug, email, password)
    await expect(page.locator("#enrol-text")).to_contain_text("emailed", timeout=WAIT_MS)
    code = pyotp.TOTP(await mails.totp_key(email)).now()
    await signin.get_by_label("Authenticator code").fill(code)
    await signin.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Continue").click(timeout=WAIT_MS)


@dataclass
class FirmRoot:
    fingerprint_text: str  # as the page showed it
    key_file: str  # the downloaded key file's text

    @property
    def seed_text(self) -> str:
        """The key file's ``seed:`` line (base64url): the FRK's private part."""
        found = re.search(r"^seed: (\S+)$", self.key_file, re.M)
        assert found, self.key_file
        return found.group(1)

    @property
    def seed(self) -> bytes:
        seed = base64url.decode(self.seed_text, 32)
        assert seed is not None
        return seed


async def set_up_firm_keys(
    page: Any, at_key_file: Callable[[], Awaitable[None]] | None = None
) -> FirmRoot:
    """The signed-in org admin sets up the firm keys on the Staff screen.

    ``at_key_file`` runs once the key file is downloaded, before "Finish set-up"
    (which stays disabled until the key file is confirmed saved).
    """
    from playwright.async_api import expect

    await page.locator("nav.staff-nav").get_by_role("link", name="Staff").click()
    panel = page.locator("#firm-keys")
    await panel.get_by_role("button", name="Set up the firm keys").click(timeout=WAIT_MS)
    fingerprint = panel.locator(".fingerprint-text")
    await expect(fingerprint).to_have_text(re.compile(r"^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$"))
    shown = (await fingerprint.text_content() or "").strip()
    async with page.expect_download() as download_info:
        await panel.get_by_role("link", name="Download the key file").click()
    key_file = (await (await download_info.value).path()).read_text(encoding="utf-8")
    if at_key_file is not None:
        await at_key_file()
    finish = panel.get_by_role("button", name="Finish set-up")
    await expect(finish).to_be_disabled()
    await panel.get_by_label("I have saved the key file in a safe place").check()
    await finish.click()
    await expect(panel.get_by_text("This browser holds the firm root key")).to_be_visible(
        timeout=WAIT_MS
    )
    await expect(panel.locator(".fingerprint-text")).to_have_text(shown)
    return FirmRoot(shown, key_file)


async def add_contact(flyout: Any, name: str, email: str) -> Any:
    """A new contact added in the invite flyout; returns its (ticked) pick row."""
    from playwright.async_api import expect

    await flyout.get_by_text("Add a contact", exact=True).click()
    await flyout.get_by_label("Full name").fill(name)
    await flyout.get_by_label("Email address").fill(email)
    await flyout.get_by_label("Mobile phone").fill("")
    await flyout.get_by_role("button", name="Add contact").click()
    pick = flyout.locator(".pick-row").filter(has_text=name)
    await expect(pick.get_by_role("checkbox")).to_be_checked(timeout=WAIT_MS)
    return pick


OWN_MAIL_LINK = re.compile(
    r"(https?://\S+#t=[A-Za-z0-9_%-]+&r=([A-Za-z0-9_-]{43})&frk=[A-Za-z0-9_-]{43})"
)


@dataclass
class OwnMail:
    href: str  # the mailto: link the page prepared
    link: str  # the invitation link in its body
    secret: str  # R, base64url (the link's ``r``)


async def own_mail_link(page: Any) -> OwnMail:
    """After "Send invitation" with own-mail delivery: the prepared message and its link."""
    from playwright.async_api import expect

    mail = page.locator("#own-mail a[data-action='mailto']")
    await expect(mail).to_be_visible(timeout=WAIT_MS)
    href = await mail.get_attribute("href") or ""
    body = unquote(href.split("&body=", 1)[1])
    found = OWN_MAIL_LINK.search(body)
    assert found, body
    return OwnMail(href, found.group(1), found.group(2))


async def accept_link(page: Any, link: str, password: str) -> None:
    """A client opens an invitation link, chooses a password and is live."""
    from playwright.async_api import expect

    await page.goto(link)
    form = page.locator("#accept form")
    await form.locator("input[name=password]").fill(password)
    await form.locator("input[name=confirm]").fill(password)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


async def invite_by_own_mail(
    admin: Any,
    base: str,
    slug: str,
    ref: str,
    contact: tuple[str, str],
    words: tuple[str, str] | None = None,
) -> OwnMail:
    """The signed-in admin invites a new ``contact`` (name, email) to matter ``ref``
    from their own mail client; ``words`` (subject, welcome) typed in when given."""
    from playwright.async_api import expect

    await admin.goto(f"{base}/?firm={slug}#/matter/{ref}")
    await admin.locator("#portal-control").click(timeout=WAIT_MS)
    flyout = admin.locator("#invite-flyout")
    pick = await add_contact(flyout, *contact)
    await pick.get_by_label("Delivery").select_option("own_mail")
    await expect(flyout.get_by_label("Subject")).to_have_value(re.compile(ref), timeout=WAIT_MS)
    if words is not None:
        await flyout.get_by_label("Subject").fill(words[0])
        await flyout.get_by_label("Welcome message").fill(words[1])
    await flyout.get_by_role("button", name="Send invitation").click()
    mail = await own_mail_link(admin)
    await admin.locator("#own-mail").get_by_role("button", name="Done").click()
    return mail
