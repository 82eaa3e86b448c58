"""The phase timeline in a real Chromium (Debian's, via ``executable_path``), two
browser contexts at once: an org admin builds a matter type in firm settings,
a staff member moves the matter's phase, and the client's timeline of steps
moves live; a move between two phases of one step changes nothing on the
client's page (no event, no redraw), and no phase name ever reaches it.

At desktop size and at 390 × 844; the screens are saved into
docs/screenshots/timeline-*.png. Every wait is Playwright's auto-waiting
``expect`` with a timeout: no sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import test_browser_feed as feed_test
from tests.conftest import MakeFirm
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(240)

browser = feed_test.browser  # Debian's Chromium (fails in CI when missing, never downloaded)
portal = feed_test.portal
open_portal = feed_test.open_portal
WAIT_MS = feed_test.WAIT_MS

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
LAYOUTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
STEPS = [
    ("Preparing", "We gather your documents and check them."),
    ("Lodged", "Your application is with the department."),
    ("Decided", "The department has decided."),
]
# Internal phase names, each a marker that must never reach the client's page.
PHASES = [
    ("INTERNAL intake", 0),
    ("INTERNAL chasing documents", 0),
    ("INTERNAL lodgement", 1),
    ("INTERNAL decision", 2),
]


async def shot(page: Any, name: str, layout: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # From the top: a full-page capture of a scrolled page repeats the sticky header.
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"timeline-{name}-{layout}.png"), full_page=True)


async def fits(page: Any) -> None:
    """Nothing wider than the viewport (usable at 360 px: no sideways scrolling)."""
    width = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, width


async def build_type_in_settings(page: Any) -> None:
    """The org admin's editor (#/staff, Firm settings): a new type, its steps and phases."""
    from playwright.async_api import expect

    await page.goto(page.url.split("#")[0] + "#/staff")
    editor = page.locator("#matter-types details.type-entry").last
    await expect(editor.locator("summary")).to_have_text("New matter type", timeout=WAIT_MS)
    await editor.locator("summary").click()
    await editor.get_by_label("Type name").fill("Visa application")
    for i, (name, description) in enumerate(STEPS):
        await editor.get_by_role("button", name="Add step").click()
        row = editor.get_by_role("group", name=f"Step {i + 1}", exact=True)
        await row.get_by_label("Step name").fill(name)
        await row.get_by_label("What the client reads").fill(description)
    for i, (name, step) in enumerate(PHASES):
        await editor.get_by_role("button", name="Add phase").click()
        row = editor.get_by_role("group", name=f"Phase {i + 1}", exact=True)
        await row.get_by_label("Phase name").fill(name)
        await row.get_by_label("Client step").select_option(str(step))
    await editor.get_by_role("button", name="Create type").click()
    saved = page.locator("#matter-types details.type-entry", has_text="Visa application")
    await expect(saved.locator(".form-status")).to_have_text("Saved.", timeout=WAIT_MS)


@pytest.mark.parametrize("layout", ["desktop", "mobile"])
async def test_staff_moves_the_phase_and_the_clients_timeline_moves_live(
    browser: Any, portal: RunningServer, make_firm: MakeFirm, layout: str
) -> None:
    from playwright.async_api import expect

    kit = await make_firm()
    ref = kit.ref
    admin_ctx = await browser.new_context(**LAYOUTS[layout])
    staff_ctx = await browser.new_context(**LAYOUTS[layout])
    client_ctx = await browser.new_context(**LAYOUTS[layout])
    try:
        admin, admin_watch = await open_portal(admin_ctx, portal.base_url, kit.tokens["admin"])
        await build_type_in_settings(admin)
        await shot(admin, "types-editor", layout)
        await fits(admin)

        client, client_watch = await open_portal(client_ctx, portal.base_url, kit.tokens["contact"])
        timeline = client.locator(f"#timeline-{ref}")
        # The matter has no type yet: no timeline on the client's page.
        await expect(client.locator(f"#matter-{ref}")).to_be_visible()
        await expect(timeline).to_be_hidden()

        staff, staff_watch = await open_portal(staff_ctx, portal.base_url, kit.tokens["staff"])
        control = staff.locator(f"#phase-{ref}")
        choice = control.get_by_label("Phase (internal)")

        async def move(phase: str, status: str = "Moved.") -> None:
            await choice.select_option(label=phase)
            await control.get_by_role("button", name="Move").click()
            await expect(control.locator(".form-status")).to_have_text(status, timeout=WAIT_MS)

        await expect(choice).to_be_visible(timeout=WAIT_MS)
        await move("INTERNAL intake → Preparing")
        await expect(timeline).to_be_visible(timeout=WAIT_MS)
        await expect(timeline).to_have_attribute("data-current", "0")
        await expect(timeline.locator(".step.current .step-name")).to_have_text("Preparing")
        await expect(timeline.locator(".step.current .step-description")).to_have_text(STEPS[0][1])
        await expect(timeline.locator(".step")).to_have_count(3)
        steps_seen = client.locator(f"#matter-{ref} li.event[data-kind=step]")
        await expect(steps_seen).to_have_count(1, timeout=WAIT_MS)

        # Within the step: the staff side moves, the client's page gets nothing.
        await move("INTERNAL chasing documents → Preparing")
        await expect(control.locator(".phase-summary")).to_contain_text("Step 1 of 3, Preparing")
        await move("INTERNAL lodgement → Lodged")
        await expect(timeline).to_have_attribute("data-current", "1", timeout=WAIT_MS)
        await expect(timeline.locator(".step.current .step-name")).to_have_text("Lodged")
        await expect(timeline.locator(".step.done .step-name")).to_have_text("Preparing")
        # Two steps, two step events: the within-step move sent the client nothing.
        await expect(steps_seen).to_have_count(2)
        staff_events = (
            await httpx.AsyncClient(base_url=portal.base_url).get(
                f"/api/v1/matters/{ref}/events", headers=kit.auth("staff")
            )
        ).json()["events"]
        assert [e["kind"] for e in staff_events] == ["phase", "step", "phase", "phase", "step"]
        await shot(staff, "staff-phase", layout)
        await fits(staff)
        await shot(client, "client", layout)
        await fits(client)
        body = await client.locator("body").inner_text()
        assert "INTERNAL" not in body

        # The firm hides the timeline: after a reload the client sees none.
        async with httpx.AsyncClient(base_url=portal.base_url) as http:
            hidden = await http.patch(
                "/api/v1/firm", json={"show_timeline": False}, headers=kit.auth("admin")
            )
            assert hidden.status_code == 200, hidden.text
        await client.reload()
        await expect(client.locator("#conn")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        await expect(client.locator(f"#matter-{ref}")).to_be_visible()
        await expect(timeline).to_be_hidden()
        for watch in (admin_watch, staff_watch, client_watch):
            assert watch.problems == []
    finally:
        for context in (admin_ctx, staff_ctx, client_ctx):
            await context.close()
