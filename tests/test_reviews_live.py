"""The reviewer's live count (docs/reviews.md): a staff-only ``reviews`` frame to the
reviewer's connections when their counts change, never to a client, a bot or anyone else."""

from __future__ import annotations

import httpx
import pytest

from rtportal.reviews.live import next_window
from tests.conftest import MakeFirm
from tests.support.recorder import Live, is_
from tests.support.reviewworld import client_says
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(120)


async def test_the_reviewers_count_goes_up_and_down_live(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    srv = uvicorn_server
    lives = {
        who: await Live.bearer(srv, kit.tokens[who], who)
        for who in ("staff", "admin", "contact", "bot")
    }
    try:
        for live in lives.values():
            assert (await live.subscribe(kit.ref))["type"] == "subscribed"
        async with httpx.AsyncClient(base_url=srv.base_url) as http:
            sent = await client_says(http, kit, "live", "l1")
            assert sent.status_code == 201, sent.text
            up = await lives["staff"].until(is_("reviews"))
            assert up == {"type": "reviews", "open": 1, "due": 1, "overdue": 0}
            # A staff reply reaches the client after the frame was fanned out: had the
            # client (or the bot) been sent a ``reviews`` frame, it would be there before it.
            reply = {"kind": "message", "audience": "portal", "payload": {"thread": "live"}}
            answered = await http.post(
                f"/api/v1/matters/{kit.ref}/events", json=reply, headers=kit.auth("admin")
            )
            assert answered.status_code == 201, answered.text
            for who in ("contact", "bot", "admin"):
                await lives[who].until(
                    lambda f: f.get("type") == "event" and f["actor"]["kind"] == "staff"
                )
            rows = (await http.get("/api/v1/reviews", headers=kit.auth("staff"))).json()
            rid = rows["reviews"][0]["id"]
            start = len(lives["staff"].frames)
            given = await http.post(
                f"/api/v1/reviews/{rid}/reassign",
                json={"reviewer": kit.admin.id},
                headers=kit.auth("staff"),
            )
            assert given.status_code == 200, given.text
            down = await lives["staff"].until(is_("reviews"), start)
            assert down == {"type": "reviews", "open": 0, "due": 0, "overdue": 0}
            got = await lives["admin"].until(is_("reviews"))
            assert got == {"type": "reviews", "open": 1, "due": 1, "overdue": 0}
            start = len(lives["admin"].frames)
            done = await http.post(f"/api/v1/reviews/{rid}/reviewed", headers=kit.auth("admin"))
            assert done.status_code == 200, done.text
            assert (await lives["admin"].until(is_("reviews"), start))["open"] == 0
            # And the client hears of none of it, up to another item it does see.
            again = await http.post(
                f"/api/v1/matters/{kit.ref}/events", json=reply, headers=kit.auth("staff")
            )
            assert again.status_code == 201, again.text
            await lives["contact"].until(
                lambda f: (
                    f.get("type") == "event"
                    and f["actor"]["id"] == kit.staff.id
                    and f["actor"]["kind"] == "staff"
                )
            )
    finally:
        for live in lives.values():
            await live.close()
    for who in ("contact", "bot"):
        assert not any("reviews" in text for text in lives[who].texts), who


def test_a_slow_count_push_widens_the_next_window() -> None:
    """Pushes take at most a twentieth of the worker's time, however long the
    counts take to read (a reviewer with hundreds of thousands open)."""
    assert next_window(0.001) == 0.2  # the usual: a window of 0.2 s
    assert next_window(0.045) == pytest.approx(0.9)  # 45 ms of counting: 0.9 s apart
    assert next_window(0.5) == pytest.approx(10.0)
