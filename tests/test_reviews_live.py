"""The reviewer's live count (docs/reviews.md): a staff-only ``reviews`` frame to the
reviewer's connections when their counts change, never to a client, a bot or anyone else."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from rtportal.realtime.message import Ephemeral
from rtportal.reviews.live import ReviewCounts, next_window
from rtportal.reviews.rows import Queued
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
    assert next_window(0.2) == pytest.approx(4.0)


def test_the_window_has_a_ceiling() -> None:
    """A push that waited (a 30 s pool timeout, a stalled broker) does not hold every
    later count back for 20 times as long: 5 s at most."""
    assert next_window(30.0) == 5.0
    assert next_window(0.25) == 5.0


async def test_idle_pushes_at_once_after_a_slow_push(make_firm: MakeFirm) -> None:
    """Shutdown (``idle``) does not wait out a long window: what is marked is pushed
    now. The first push is slow (its publisher takes 0.3 s: a 5 s window next) and
    another change comes while it runs."""
    kit = await make_firm()
    sent: list[Ephemeral] = []
    counts: ReviewCounts

    async def slow_publish(msg: Ephemeral) -> None:
        await asyncio.sleep(0.3)  # reason: a slow broker (the push's cost)
        if not sent:
            counts.touch(Queued(kit.admin.id, kit.matter.id))  # during the push
        sent.append(msg)

    counts = ReviewCounts(kit.db, slow_publish)
    counts.touch(Queued(kit.staff.id, kit.matter.id))
    started = time.perf_counter()
    await counts.idle()
    assert time.perf_counter() - started < 2.5  # not a 6 s (or 5 s) window
    assert [m.user for m in sent] == [("staff", kit.staff.id), ("staff", kit.admin.id)]
