"""The review inbox's screens (static/staff/reviews.js, reviewcount.js) in Chromium at
360 px and desktop, fed the answers of docs/reviews.md by the recording stand-ins of
static/staff/browser/reviews_check.html (not served by the app; the server side of the
inbox is tested by tests/test_reviews.py, the whole journey by
tests/test_browser_documents.py): rows labelled Portal Doc / Portal Message with
their due and overdue markers, the matter linked, server text as text; paging; mark
reviewed, reassign and change date, each with its call and the row's answer; a
refused date in its own words; the filter; the live count's link and the "new items"
line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import test_threads_dom as threads_dom
from tests.support.staticsite import served_repository

browser = threads_dom.browser
ROWS = "#review-list li.review-row"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with served_repository() as base:
        yield f"{base}/static/staff/browser/reviews_check.html"


def open_inbox(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    page, errors = threads_dom.open_page(browser, url, width, height)
    page.wait_for_selector("#review-inbox[data-loaded='1']")
    return page, errors


def rows(page: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.eval_on_selector_all(
        ROWS,
        "els => els.map(e => ({id: e.dataset.id, kind: e.dataset.kind, due: e.dataset.due,"
        " overdue: e.dataset.overdue, label: e.querySelector('.review-kind').textContent,"
        " marker: (e.querySelector('.review-due-badge') || {}).textContent || '',"
        " open: e.querySelector('.review-open').getAttribute('href'),"
        " matter: e.querySelector('.review-open').textContent,"
        " facts: e.querySelector('.facts').textContent}))",
    )
    return found


def calls(page: Any) -> list[list[Any]]:
    found: list[list[Any]] = page.evaluate("check.calls()")
    return found


@pytest.mark.parametrize("size", [(360, 740), (1280, 800)])
def test_the_inbox_lists_pages_and_acts(browser: Any, base_url: str, size: tuple[int, int]) -> None:
    page, errors = open_inbox(browser, base_url, *size)
    shown = rows(page)
    assert [(r["id"], r["kind"], r["label"], r["marker"]) for r in shown] == [
        ("1", "document", "Portal Doc", "Overdue"),
        ("2", "message", "Portal Message", "Due"),
    ]
    # a document opens its matter's page (the checklist), a message its thread there
    assert [r["open"] for r in shown] == ["#/matter/AAAA0000", "#/matter/AAAA0000/t1"]
    # the matter's title and the client's name hold markup: shown as text, nothing run
    assert shown[0]["matter"] == 'Visa <img src=x onerror="window.pwned=1"> (AAAA0000)'
    assert "Cleo <script>window.pwned=2</script>" in shown[0]["facts"]
    assert "Files2" in shown[0]["facts"] and "Files" not in shown[1]["facts"]
    assert page.locator("#review-list img, #review-list script").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]

    # the next page, then no more
    page.click("#review-more")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 3")
    assert page.is_hidden("#review-more")
    assert calls(page)[:2] == [["page", "all", None], ["page", "all", "2026-12-07.2"]]

    # mark reviewed: the row leaves, the status says so, focus stays in the list
    page.click(f"{ROWS}[data-id='1'] button.review-done")
    page.wait_for_selector(f"{ROWS}[data-id='1']", state="detached")
    assert page.text_content("#review-status") == "Marked reviewed."
    assert page.evaluate("document.activeElement.className") == "review-open"

    # reassign: colleagues by name as text (not me); the row leaves
    page.click(f"{ROWS}[data-id='2'] button.review-reassign")
    form = f"{ROWS}[data-id='2'] form.review-form[data-form=reassign]"
    page.wait_for_selector(form)
    options = page.eval_on_selector_all(
        f"{form} select[name=reviewer] option", "os => os.map(o => [o.value, o.textContent])"
    )
    assert options == [["", ""], ["4", "Tess <b>Staff</b>"]]
    page.select_option(f"{form} select[name=reviewer]", "4")
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"{ROWS}[data-id='2']", state="detached")

    # change date: refused in its own words, then moved (the row shows the new date)
    row = f"{ROWS}[data-id='3']"
    page.click(f"{row} button.review-date")
    page.fill(f"{row} input[name=review_on]", "1999-01-01")
    page.click(f"{row} form.review-form button[type=submit]")
    page.wait_for_function(
        f"document.querySelector(\"{row} .form-status\").dataset.kind === 'error'"
    )
    assert page.text_content(f"{row} .form-status") == (
        "Choose a real date within ten years of today."
    )
    page.fill(f"{row} input[name=review_on]", "2027-01-15")
    page.click(f"{row} form.review-form button[type=submit]")
    page.wait_for_selector(f"{row} form.review-form", state="detached")
    assert page.get_attribute(row, "data-due") == "0"
    assert page.get_attribute(f"{row} time.review-on", "datetime") == "2027-01-15"
    assert page.text_content(f"{row} .form-status") == "Review date changed."
    assert [c for c in calls(page) if c[0] != "page"] == [
        ["reviewed", 1],
        ["reviewers"],
        ["reassign", 2, 4],
        ["move", 3, "1999-01-01"],
        ["move", 3, "2027-01-15"],
    ]
    assert errors == []


def test_the_filter_the_count_and_new_items(browser: Any, base_url: str) -> None:
    page, errors = open_inbox(browser, base_url, 360, 740)
    page.select_option("#review-filter select[name=due]", "overdue")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 1")
    assert calls(page)[-1] == ["page", "overdue", None]
    assert page.is_hidden("#review-more")

    # the count's link: unknown until read, then its numbers, the overdue marked
    link = "#review-count"
    assert page.get_attribute(link, "data-open") == ""
    assert page.get_attribute(link, "href") == "#/reviews"
    assert page.evaluate("check.counts({type: 'reviews', open: 3, due: 2, overdue: 1})")
    assert page.text_content(f"{link} .review-count-open") == "3"
    assert page.is_visible(f"{link} .review-count-due")
    assert page.text_content(f"{link} .review-count-overdue") == "1 overdue"
    assert page.get_attribute(link, "aria-label") == (
        "Reviews: 3 awaiting review, 2 due, 1 overdue"
    )
    # a frame that is not a count changes nothing
    assert not page.evaluate("check.counts({type: 'reviews', open: -1, due: 0, overdue: 0})")
    assert not page.evaluate("check.counts({type: 'reviews', open: '4', due: 0, overdue: 0})")
    assert page.get_attribute(link, "data-open") == "3"

    # fewer (someone else acted): no line; more than the list accounts for: the line
    assert page.evaluate("check.counts({type: 'reviews', open: 2, due: 1, overdue: 0})")
    assert page.is_hidden("#review-changed")
    assert page.is_hidden(f"{link} .review-count-overdue")
    assert page.evaluate("check.counts({type: 'reviews', open: 4, due: 3, overdue: 0})")
    assert page.is_visible("#review-changed")
    page.click("#review-changed button.review-reload")
    page.wait_for_selector("#review-changed", state="hidden")
    assert calls(page)[-1] == ["page", "overdue", None]
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert errors == []
