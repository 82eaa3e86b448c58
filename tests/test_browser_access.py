"""The portal access lifecycle in a real Chromium, at desktop and phone size.

The journey of docs/access.md through the screens (static/shared|client|staff):
an org admin signs in (email + password; the firm requires an
authenticator, so the sign-in page enrols one: the code is computed here
from the key the page shows) -> opens a matter whose portal is OFF -> adds
a contact in the invitation flyout and invites them by email link + SMS
passcode -> the email arrives at a real SMTP server on loopback (aiosmtpd;
the app's ``RTPORTAL_SMTP_URL`` points at it) -> staff resends: the first
link is dead at once -> the client opens the new link, takes the passcode
from the SMS in the outbox screen (no SMS provider: the outbox holds it),
is refused a weak password, chooses a good one and lands on the matter's
stream with the welcome item, which staff see live too -> the client changes
the password, signs out, and signs in with the new one (the old is refused) -> staff generate
new login details ("forgot password"): the client's page is signed out at
once, and the new link and passcode let them choose a new password ->
staff remove the client -> the client's open page loses access at once.

Every screen is saved into docs/screenshots/ (``<screen>-desktop.png``,
``<screen>-mobile.png``), which the README shows. Every wait is
Playwright's auto-waiting ``expect`` or a condition with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiosmtpd.controller import Controller

from rtportal.app import create_app
from rtportal.crypto.backup import MIN_M_KIB, MIN_T, Argon2Params, derive_password_keys
from rtportal.db.models import Firm
from rtportal.settings import Settings
from tests import test_browser_feed as feed_test
from tests.conftest import TEST_SECRET_HEX, FirmKit, MakeFirm
from tests.support.logins import give_password
from tests.support.procs import free_port
from tests.support.server import RunningServer, running_server
from tests.support.wsclient import wait_until

pytestmark = pytest.mark.timeout(240)

browser = feed_test.browser  # Debian's Chromium (fails in CI when missing, never downloaded)
PageWatch = feed_test.PageWatch
WAIT_MS = feed_test.WAIT_MS

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
LAYOUTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
    },
}
ADMIN_PASSWORD = "staple orbit lantern 42"
CLIENT_PASSWORD = "seven quiet harbours"
NEW_CLIENT_PASSWORD = "eight loud lighthouses"
CLIENT_EMAIL = "jo.client@example.test"
CLIENT_MOBILE = "+61400111222"


class Mailbox:
    """An SMTP server on loopback keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.port = free_port()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    async def link(self, address: str, nth: int, kind: str = "invite") -> str:
        """The ``#<kind>=`` link of the ``nth`` (1-based) message to ``address``."""
        await wait_until(lambda: len(self.to(address)) >= nth, 20, f"email {nth} to {address}")
        message = self.to(address)[nth - 1]
        part = message.get_body(preferencelist=("plain", "html"))
        assert part is not None
        found = re.search(rf"https?://[^\s\"'<>]+#{kind}=[A-Za-z0-9_-]+", str(part.get_content()))
        assert found, f"no invite link in {part.get_content()!r}"
        return found.group(0)

    async def totp_key(self, address: str) -> str:
        """The authenticator key emailed to ``address`` (its latest enrolment email)."""
        await wait_until(
            lambda: any("authenticator key" in str(m["Subject"]) for m in self.to(address)),
            20,
            f"authenticator key email to {address}",
        )
        message = [m for m in self.to(address) if "authenticator key" in str(m["Subject"])][-1]
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        found = re.search(r"Key: ([A-Z2-7]+)", str(part.get_content()))
        assert found, part.get_content()
        return found.group(1)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def portal_port() -> int:
    return free_port()


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, broker_url: str, portal_port: int, mailbox: Mailbox
) -> Settings:
    """The test settings, with the portal's own origin and the loopback SMTP server."""
    origin = f"http://127.0.0.1:{portal_port}"
    return Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": str(tmp_path / "data"),
            "RTPORTAL_DATABASE_URL": database_url,
            "RTPORTAL_BROKER_URL": broker_url,
            "RTPORTAL_SECRET_KEY": TEST_SECRET_HEX,
            "RTPORTAL_ALLOWED_ORIGINS": origin,
            "RTPORTAL_PUBLIC_URL": origin,
            "RTPORTAL_HUB_POLL_INTERVAL": "0.5",
            "RTPORTAL_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
        }
    )


@pytest.fixture
async def portal(settings: Settings, portal_port: int) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), port=portal_port) as server:
        yield server


def totp_code(secret: str) -> str:
    """What an authenticator app shows now for ``secret`` (RFC 6238)."""
    return str(pyotp.TOTP(secret).now())


async def firm_slug(kit: FirmKit) -> str:
    async with kit.db.read() as session:
        firm = await session.get(Firm, kit.firm_id)
        assert firm is not None
        return firm.slug


class Shots:
    """Screenshots of one layout, under stable names."""

    def __init__(self, layout: str) -> None:
        self.layout = layout
        SHOTS.mkdir(parents=True, exist_ok=True)

    async def __call__(self, page: Any, name: str) -> None:
        # From the top: a full-page capture of a scrolled page repeats the sticky header.
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(SHOTS / f"{name}-{self.layout}.png"), full_page=True)


@contextlib.asynccontextmanager
async def browser_page(browser: Any, layout: str) -> AsyncIterator[tuple[Any, PageWatch]]:
    context = await browser.new_context(**LAYOUTS[layout])
    try:
        page = await context.new_page()
        yield page, PageWatch(page)
    finally:
        await context.close()


async def fill_passwords(form: Any, password: str, passcode: str | None = None) -> None:
    """Type a new password twice (and the SMS passcode, when given) into ``form``."""
    if passcode is not None:
        await form.get_by_label("Passcode from the text message").fill(passcode)
    await form.get_by_label("Choose a password").fill(password)
    await form.get_by_label("Type the password again").fill(password)


async def accept_invite(accept: Any, passcode: str | None, password: str) -> None:
    """Fill the invitation page (the passcode unless already typed) and submit."""
    await fill_passwords(accept, password, passcode)
    await accept.get_by_role("button", name="Open my portal").click()


async def invite_staff(form: Any, name: str, address: str, role: str) -> None:
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Email").fill(address)
    await form.get_by_label("Role").select_option(role)
    await form.get_by_role("button", name="Send setup link").click()


async def no_sideways_scroll(page: Any) -> None:
    """Nothing is wider than the screen (usable at 360-390 px)."""
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


async def nav_fits_360(page: Any) -> None:
    """An org admin's navigation (every link, the reviewer's count among them)
    on the narrowest phone: it wraps onto more lines, no link leaves the screen."""
    from playwright.async_api import expect

    size = page.viewport_size
    await page.set_viewport_size({"width": 360, "height": size["height"]})
    links = page.locator("nav.staff-nav a")
    await expect(links).to_have_count(8)
    await expect(page.locator("#review-count")).not_to_have_attribute(
        "data-open", "", timeout=WAIT_MS
    )
    outside = await links.evaluate_all(
        "links => links.filter((a) => { const r = a.getBoundingClientRect();"
        " return r.left < 0 || r.right > document.documentElement.clientWidth; })"
        ".map((a) => a.textContent)"
    )
    assert outside == []
    await no_sideways_scroll(page)
    await page.set_viewport_size(size)


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_portal_access_journey(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, mailbox: Mailbox, layout: str
) -> None:
    from playwright.async_api import expect

    shot = Shots(layout)
    kit = await make_firm(name=f"Harbour Legal {layout}")
    admin_email = f"ada.{layout}@harbour.test"
    await give_password(kit.db, kit.settings, kit.admin, admin_email, ADMIN_PASSWORD)
    slug = await firm_slug(kit)
    base = portal.base_url

    async with (
        browser_page(browser, layout) as (staff, staff_watch),
        browser_page(browser, layout) as (client, client_watch),
    ):
        # --- Staff sign-in: the firm comes from ?firm=, the org admin must enrol a TOTP app.
        await staff.goto(f"{base}/?firm={slug}")
        signin = staff.locator("#signin")
        await expect(signin).to_be_visible(timeout=WAIT_MS)
        await expect(signin.get_by_label("Firm code")).to_be_hidden()
        await signin.get_by_role("button", name="Forgot your password?").click()
        await expect(staff.locator("#forgot-text")).to_contain_text("ask them to send you")
        await shot(staff, "signin")
        await signin.get_by_label("Email address").fill(admin_email)
        await signin.get_by_label("Password").fill(ADMIN_PASSWORD)
        await signin.get_by_role("button", name="Sign in").click()
        # The key goes to the admin's mailbox, never to the page: the password
        # alone does not enrol an authenticator.
        await expect(staff.locator("#enrol-text")).to_contain_text("emailed", timeout=WAIT_MS)
        await shot(staff, "staff-totp-enrol")
        key = await mailbox.totp_key(admin_email)
        await signin.get_by_label("Authenticator code").fill(totp_code(key))
        await signin.get_by_role("button", name="Sign in").click()
        # The confirmed enrolment's one-time recovery codes, shown once.
        await expect(staff.locator(".recovery-codes li")).to_have_count(10, timeout=WAIT_MS)
        await shot(staff, "staff-recovery-codes")
        await staff.get_by_role("button", name="Continue").click()
        nav = staff.locator("nav.staff-nav")
        await expect(nav).to_be_visible(timeout=WAIT_MS)
        await expect(staff.locator("#who")).to_contain_text("Ada Admin")
        if layout == "mobile":
            await nav_fits_360(staff)

        # --- Matters list: this matter's portal is OFF.
        await nav.get_by_role("link", name="Matters").click()
        row = staff.locator(f".matter-row[data-ref='{kit.ref}']")
        await expect(row.locator(".portal-badge")).to_have_text("Portal OFF", timeout=WAIT_MS)
        await no_sideways_scroll(staff)
        await shot(staff, "staff-matters")
        await row.get_by_role("link").click()
        control = staff.locator("#portal-control")
        await expect(control).to_have_text("Turn portal on", timeout=WAIT_MS)
        await shot(staff, "staff-matter-portal-off")

        # --- The flyout: add a contact, email link + SMS passcode, welcome message.
        await control.click()
        flyout = staff.locator("#invite-flyout")
        await expect(flyout).to_be_visible()
        await flyout.get_by_text("Add a contact", exact=True).click()
        await flyout.get_by_label("Full name").fill("Jo Client")
        await flyout.get_by_label("Email address").fill(CLIENT_EMAIL)
        await flyout.get_by_label("Mobile phone").fill(CLIENT_MOBILE)
        await flyout.get_by_role("button", name="Add contact").click()
        pick = flyout.locator(".pick-row").filter(has_text="Jo Client")
        await expect(pick.get_by_role("checkbox")).to_be_checked(timeout=WAIT_MS)
        await expect(pick.get_by_label("How to send")).to_have_value("email_sms")
        await expect(staff.locator("#applicants")).to_contain_text("Jo Client")
        await pick.get_by_label("May see the other applicants").select_option("no")
        await expect(flyout.get_by_label("Subject")).to_have_value(
            re.compile(re.escape(kit.ref)), timeout=WAIT_MS
        )
        await shot(staff, "staff-invite-flyout")
        await flyout.get_by_role("button", name="Send invitation").click()
        await expect(flyout).to_have_count(0, timeout=WAIT_MS)
        pending = staff.locator(".invite-row").filter(has_text="Jo Client")
        await expect(pending).to_have_attribute("data-status", "pending", timeout=WAIT_MS)
        await expect(staff.locator(".portal-row .portal-badge")).to_have_text("Portal ON")
        # The welcome item appears live in the staff stream of the matter.
        welcome = staff.locator(".matter-stream li.item[data-kind='welcome']")
        await expect(welcome).to_have_count(1, timeout=WAIT_MS)

        first_link = await mailbox.link(CLIENT_EMAIL, 1)
        assert f"firm={slug}" in first_link
        await staff.reload()
        pending = staff.locator(".invite-row").filter(has_text="Jo Client")
        await expect(pending.locator(".delivery")).to_contain_text("sent", timeout=WAIT_MS)
        await no_sideways_scroll(staff)
        await shot(staff, "staff-invite-pending")

        # --- Resend: a new link and passcode; the first link is dead at once.
        await pending.locator("[data-action='resend']").click()
        second_link = await mailbox.link(CLIENT_EMAIL, 2)
        assert second_link != first_link
        await client.goto(first_link)
        await expect(client.locator("#notice-title")).to_have_text(
            "This link does not work", timeout=WAIT_MS
        )
        assert await client.evaluate("location.hash") == ""
        await shot(client, "client-link-dead")

        # --- The SMS passcode, read in the outbox (no SMS provider: it is held there).
        await nav.get_by_role("link", name="Outbox").click()
        sms = staff.locator(".outbox-row[data-channel='sms']").first
        await expect(sms.locator(".message-body")).to_contain_text(
            re.compile(r"\d{6}"), timeout=WAIT_MS
        )
        passcode = re.findall(r"\b(\d{6})\b", await sms.locator(".message-body").inner_text())[-1]
        await no_sideways_scroll(staff)
        await shot(staff, "staff-outbox")

        # --- The client opens the new link: passcode, a weak password refused, a good one.
        await client.goto(second_link)
        accept = client.locator("#accept")
        await expect(accept.get_by_label("Passcode from the text message")).to_be_visible(
            timeout=WAIT_MS
        )
        assert await client.evaluate("location.hash") == ""
        assert "invite=" not in client.url
        await accept_invite(accept, passcode, "password123")
        await expect(accept.locator(".form-status")).to_have_text(
            "Choose a stronger password: at least 10 characters, and not a common one."
        )
        await shot(client, "client-invite-accept")
        await accept_invite(accept, None, CLIENT_PASSWORD)
        client_welcome = client.locator("#matters li.item[data-kind='welcome']")
        await expect(client_welcome).to_have_count(1, timeout=WAIT_MS)
        await expect(client.locator("#who")).to_have_text("Jo Client")
        await expect(client.locator("#conn")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        # The shot once the thread's first page is in (the unread divider and
        # its jump come with it), not the welcome the stream showed before.
        await expect(client.locator(f"#thread-{kit.ref}")).to_have_attribute(
            "data-loaded", "1", timeout=WAIT_MS
        )
        await no_sideways_scroll(client)
        await shot(client, "client-stream")

        # --- The client changes the password, signs out, signs in with the new one.
        await client.get_by_role("button", name="Account").click()
        change = client.locator("#change-password")
        await change.get_by_label("Current password").fill(CLIENT_PASSWORD)
        await fill_passwords(change, NEW_CLIENT_PASSWORD)
        await change.get_by_role("button", name="Change password").click()
        await expect(change.locator(".form-status")).to_have_text(
            "Your password was changed.", timeout=WAIT_MS
        )
        await expect(client.locator("#totp")).to_contain_text("Set up an authenticator app")
        await shot(client, "client-account")
        await client.locator("#account-panel").get_by_role("button", name="Close").click()
        await client.get_by_role("button", name="Sign out").click()
        client_signin = client.locator("#signin")
        await expect(client_signin).to_be_visible(timeout=WAIT_MS)
        await expect(client.locator("#notice-title")).to_have_text("Signed out")
        await expect(client_signin.get_by_label("Email address")).to_have_value(CLIENT_EMAIL)
        await client_signin.get_by_label("Password").fill(CLIENT_PASSWORD)
        await client_signin.get_by_role("button", name="Sign in").click()
        await expect(client_signin.locator(".form-status")).to_have_text(
            "Wrong email address or password.", timeout=WAIT_MS
        )
        await shot(client, "client-signin")
        await client_signin.get_by_label("Password").fill(NEW_CLIENT_PASSWORD)
        await client_signin.get_by_role("button", name="Sign in").click()
        await expect(client_welcome).to_have_count(1, timeout=WAIT_MS)
        await expect(client.locator("#conn")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )

        # --- Staff see the invite active, then remove the client.
        await nav.get_by_role("link", name="Matters").click()
        await staff.locator(f".matter-row[data-ref='{kit.ref}']").get_by_role("link").click()
        active = staff.locator(".invite-row").filter(has_text="Jo Client")
        await expect(active).to_have_attribute("data-status", "active", timeout=WAIT_MS)
        await expect(welcome).to_have_count(1, timeout=WAIT_MS)
        await shot(staff, "staff-invite-active")

        # --- The activity feed across matters: the invite and its acceptance, as
        # invite rows of this matter; the type filter keeps only those.
        await nav.get_by_role("link", name="Activity").click()
        rows = staff.locator(f"#feed-list li.feed-row[data-matter='{kit.ref}']")
        invites = rows.and_(staff.locator("[data-type='invite']"))
        await expect(invites.first).to_be_visible(timeout=WAIT_MS)
        await staff.locator("#feed-filters select[name=type]").select_option("invite")
        await expect(
            staff.locator("#feed-list li.feed-row:not([data-type='invite'])")
        ).to_have_count(0, timeout=WAIT_MS)
        await expect(invites.first).to_be_visible(timeout=WAIT_MS)
        await no_sideways_scroll(staff)
        await shot(staff, "staff-activity")
        await nav.get_by_role("link", name="Matters").click()
        await staff.locator(f".matter-row[data-ref='{kit.ref}']").get_by_role("link").click()
        await expect(active).to_have_attribute("data-status", "active", timeout=WAIT_MS)

        # --- The client forgot the password: staff generate new login details. The
        # client's open page is signed out at once; a new link and passcode arrive.
        await active.locator("[data-action='regenerate']").click()
        await active.get_by_role("button", name="Yes, send new details").click()
        await expect(client.locator("#notice-title")).to_have_text("Signed out", timeout=5_000)
        await expect(client_welcome).to_have_count(0)
        third_link = await mailbox.link(CLIENT_EMAIL, 3)
        await nav.get_by_role("link", name="Outbox").click()
        sms_rows = staff.locator(".outbox-row[data-channel='sms']")
        await expect(sms_rows).to_have_count(3, timeout=WAIT_MS)
        # Only the live passcode is readable: the replaced ones were blanked.
        texts = sms_rows.locator(".message-body")
        await expect(texts).to_have_count(1)
        await expect(sms_rows.first.locator(".message-body")).to_have_count(1)
        new_passcode = re.findall(r"\b(\d{6})\b", await texts.first.inner_text())[-1]
        await client.goto(third_link)
        await accept_invite(accept, new_passcode, CLIENT_PASSWORD + " again")
        await expect(client_welcome).to_have_count(1, timeout=WAIT_MS)
        await expect(client.locator("#conn")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        await nav.get_by_role("link", name="Matters").click()
        await staff.locator(f".matter-row[data-ref='{kit.ref}']").get_by_role("link").click()
        await expect(active).to_have_attribute("data-status", "active", timeout=WAIT_MS)

        # --- Remove from the portal.
        await active.locator("[data-action='remove']").click()
        await active.get_by_role("button", name="Yes, remove").click()
        # The client's open page loses access at once (its sessions end, its socket closes).
        await expect(client.locator("#matters section.matter")).to_have_count(0, timeout=5_000)
        await expect(client.locator("#notice")).to_be_visible(timeout=5_000)
        await expect(client_welcome).to_have_count(0)
        await shot(client, "client-removed")
        await expect(active).to_have_attribute("data-status", "removed", timeout=WAIT_MS)
        # The portal is OFF again; the flyout offers the applicant, with their details.
        await expect(control).to_have_text("Turn portal on", timeout=WAIT_MS)
        await control.click()
        again = flyout.locator(".pick-row").filter(has_text="Jo Client")
        await expect(again).to_contain_text(CLIENT_EMAIL, timeout=WAIT_MS)
        await expect(again.get_by_role("checkbox")).to_be_checked()
        await flyout.get_by_role("button", name="Cancel").click()
        await expect(flyout).to_have_count(0)

        # --- The org admin's other screens.
        await nav.get_by_role("link", name="Staff").click()
        await expect(staff.locator(".staff-row").first).to_be_visible(timeout=WAIT_MS)
        # An org admin invites a colleague: the setup link arrives by email and
        # makes their account (a plain staff member sees no admin sections).
        invite_form = staff.locator("#invite-staff")
        await invite_staff(invite_form, "Nina New", f"nina.{layout}@harbour.test", "staff")
        await expect(staff.locator(".staff-row").filter(has_text="Nina New")).to_be_visible(
            timeout=WAIT_MS
        )
        await shot(staff, "staff-roles")
        setup_link = await mailbox.link(f"nina.{layout}@harbour.test", 1, "setup")
        async with browser_page(browser, layout) as (nina, nina_watch):
            await nina.goto(setup_link)
            setup = nina.locator("#accept")
            await expect(setup.get_by_label("Choose a password")).to_be_visible(timeout=WAIT_MS)
            assert await nina.evaluate("location.hash") == ""
            await fill_passwords(setup, "nina's own long password")
            await shot(nina, "staff-setup")
            await setup.get_by_role("button", name="Create my account").click()
            nina_nav = nina.locator("nav.staff-nav")
            await expect(nina_nav).to_be_visible(timeout=WAIT_MS)
            await expect(nina.locator("#who")).to_contain_text("Nina New")
            # The reviewer's count follows Activity: its visible text runs the
            # name into its badges, its accessible name spells the counts out.
            await expect(nina_nav.get_by_role("link")).to_have_text(
                ["Conversations", "Activity", re.compile(r"^Reviews"), "Matters", "Account"]
            )
            await expect(nina_nav.locator("#review-count")).to_have_accessible_name(
                "Reviews: 0 awaiting review, 0 due, 0 overdue", timeout=WAIT_MS
            )
            # A plain staff member may enrol an authenticator from their account.
            await nina_nav.get_by_role("link", name="Account").click()
            await nina.get_by_role("button", name="Set up an authenticator app").click()
            key = nina.locator("#totp-secret")
            await expect(key).to_be_visible(timeout=WAIT_MS)
            await expect(nina.locator("#totp-uri")).to_contain_text("otpauth://totp/")
            await nina.get_by_label("Code from the app").fill(totp_code(await key.inner_text()))
            await shot(nina, "staff-totp-account")
            await nina.get_by_role("button", name="Confirm").click()
            await expect(nina.locator("#totp .recovery-codes li")).to_have_count(
                10, timeout=WAIT_MS
            )
            assert nina_watch.problems == []

        # A new org admin's setup link sets the password only: their first
        # sign-in enrols an authenticator, so the page sends them to sign in.
        omar = f"omar.{layout}@harbour.test"
        await invite_staff(invite_form, "Omar Org", omar, "org_admin")
        omar_link = await mailbox.link(omar, 1, "setup")
        async with browser_page(browser, layout) as (omar_page, _):
            await omar_page.goto(omar_link)
            setup = omar_page.locator("#accept")
            await fill_passwords(setup, "omar's own long password")
            await setup.get_by_role("button", name="Create my account").click()
            await expect(omar_page.locator("#notice-title")).to_have_text(
                "Password set", timeout=WAIT_MS
            )
            await expect(omar_page.locator("#signin").get_by_label("Email address")).to_have_value(
                omar
            )

        # Roles: the org admin makes the colleague a matter admin.
        await nav.get_by_role("link", name="Staff").click()
        nina_row = staff.locator(".staff-row").filter(has_text="Nina New")
        await nina_row.get_by_label("Role").select_option("matter_admin")
        await expect(nina_row.locator(".form-status")).to_have_text("Saved.", timeout=WAIT_MS)
        # Firm settings: client access lasts 90 days from now on.
        # and staff read receipts are hidden from clients.
        firm_form = staff.locator("#firm-settings form")
        await firm_form.get_by_label("Client access lasts").fill("90")
        receipts = firm_form.get_by_label("Clients see when staff have read their messages")
        await expect(receipts).to_be_checked()
        await receipts.uncheck()
        await firm_form.get_by_role("button", name="Save").click()
        await expect(firm_form.locator(".form-status")).to_have_text("Saved.", timeout=WAIT_MS)
        async with kit.db.read() as session:
            stored = await session.get(Firm, kit.firm_id)
            assert stored is not None and stored.hide_staff_receipts is True
        await staff.reload()
        settings_panel = staff.locator("#firm-settings")
        await expect(settings_panel.get_by_label("Client access lasts")).to_have_value(
            "90", timeout=WAIT_MS
        )
        await expect(
            settings_panel.get_by_label("Clients see when staff have read their messages")
        ).not_to_be_checked()
        await shot(staff, "staff-firm-settings")
        await nav.get_by_role("link", name="Audit log").click()
        await expect(staff.locator(".audit-row").first).to_be_visible(timeout=WAIT_MS)
        await expect(staff.get_by_role("link", name="Export CSV")).to_have_attribute(
            "href", "/api/v1/audit/export?format=csv"
        )
        await shot(staff, "staff-audit")
        await nav.get_by_role("link", name="Account").click()
        await expect(staff.locator("#change-password")).to_be_visible()
        await shot(staff, "staff-account")

        # A new matter from the matters list opens with its portal OFF.
        await nav.get_by_role("link", name="Matters").click()
        create = staff.locator("#create-matter")
        await create.get_by_label("Title").fill("Smith purchase")
        await create.get_by_label("Matter type").fill("Conveyancing")
        await create.get_by_role("button", name="Create matter").click()
        await expect(staff.locator("#matter-page-title")).to_contain_text(
            "Smith purchase", timeout=WAIT_MS
        )
        await expect(staff.locator("#portal-control")).to_have_text("Turn portal on")

        # Before signing in: /me answers 401, and the password alone is 401 (second factor).
        assert staff_watch.problems == [
            f"HTTP 401 {base}/api/v1/me",
            f"HTTP 401 {base}/api/v1/signin",
        ]
        # The client's refusals: the dead link, the old password, the session checks.
        assert all(p.startswith(("HTTP 400", "HTTP 401")) for p in client_watch.problems), (
            client_watch.problems
        )


async def test_screen_helpers_in_the_browser(browser: Any, portal: RunningServer) -> None:
    """The screens' pure helpers, run as the page's own modules in Chromium: the
    password check, reading (and removing) link fragments, the staff routes, and
    the login secret, which must equal the server side's derivation."""
    salt = bytes(range(16))
    expected = derive_password_keys("seven quiet harbours", salt, Argon2Params(MIN_M_KIB, MIN_T, 1))
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{portal.base_url}/")
    result = await page.evaluate(
        """async ([salt, m, t]) => {
            const pw = await import('/shared/password.js');
            const login = await import('/shared/login.js');
            const account = await import('/shared/account.js');
            const app = await import('/staff/app.js');
            const take = (hash) => {
                const hist = {state: null, url: null, replaceState(s, t, u) { this.url = u; }};
                const link = login.takeFragmentLink(
                    {hash, pathname: '/', search: '?firm=harbour'}, hist);
                return [link, hist.url];
            };
            return {
                weak: ['', 'short', 'password123', 'PassWord123', 'aaaaaaaaaaaa', '123456789']
                    .map(pw.passwordProblem),
                strong: ['seven quiet harbours', 'Tr1cky-but-fine'].map(pw.passwordProblem),
                links: [take('#invite=abc'), take('#setup=s3t'), take('#token=t'),
                        take('#/matters'), take('')],
                routes: ['#/matter/ABCD1234', '#/staff', '#/nope', '#matter-ABCD1234', '',
                         '#/matter/ABCD1234/t%2F1']
                    .map(app.parseRoute),
                secret: await account.loginSecret(
                    'seven quiet harbours', {salt, m_kib: m, t, p: 1}),
                kdf: account.newKdf({m_kib: m + 1024, t: t + 1, p: 1}),
                // a server base below the library's floor never lowers a new password's kdf
                floored: account.newKdf({m_kib: 1024, t: 1, p: 1}),
                weakSecret: await account.loginSecret(
                    'seven quiet harbours', {salt, m_kib: 1024, t: 1, p: 1})
                    .then(() => 'derived', (e) => e.code),
            };
        }""",
        [base64.urlsafe_b64encode(salt).decode().rstrip("="), MIN_M_KIB, MIN_T],
    )
    await context.close()
    assert result["weak"] == ["weak_password"] * 6
    assert result["strong"] == [None, None]
    assert result["links"] == [
        [{"kind": "invite", "secret": "abc"}, "/?firm=harbour"],
        [{"kind": "setup", "secret": "s3t"}, "/?firm=harbour"],
        [{"kind": "token", "secret": "t"}, "/?firm=harbour"],
        [None, None],  # a staff route is no secret: it stays in the address bar
        [None, None],
    ]
    assert result["routes"] == [
        ["matter", "ABCD1234"],
        ["staff", None],
        [""],
        [""],
        [""],
        ["matter", "ABCD1234", "t/1"],
    ]
    secret = base64.urlsafe_b64decode(result["secret"] + "=" * (-len(result["secret"]) % 4))
    assert secret == expected.login_secret
    kdf = result["kdf"]
    assert (kdf["alg"], kdf["m_kib"], kdf["t"], kdf["p"]) == (
        "argon2id",
        MIN_M_KIB + 1024,
        MIN_T + 1,
        1,
    )
    floored = result["floored"]
    assert (floored["m_kib"], floored["t"], floored["p"]) == (MIN_M_KIB, MIN_T, 1)
    assert result["weakSecret"] == "crypto_encoding"  # sign-in refuses parameters below the floor
    assert len(base64.urlsafe_b64decode(kdf["salt"] + "==")) == 16


async def test_sign_in_fits_a_360_px_screen(browser: Any, portal: RunningServer) -> None:
    """The narrowest phone the portal supports: the sign-in page (with the firm
    field, as for a firm not known yet) needs no sideways scrolling."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True)
    page = await context.new_page()
    await page.goto(f"{portal.base_url}/")
    signin = page.locator("#signin")
    await expect(signin.get_by_label("Firm code")).to_be_visible(timeout=WAIT_MS)
    await signin.get_by_role("button", name="Forgot your password?").click()
    await expect(page.locator("#forgot-text")).to_be_visible()
    await no_sideways_scroll(page)
    await context.close()
