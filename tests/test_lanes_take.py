"""``lanes.take``, the group commit's choice of the next batch, without a database:
the sends it holds back keep their order, and a flood of sends to a busy matter
costs each call a bounded look."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any, cast

from rtportal.events.lanes import BATCH_MAX, Request, take


def _request(who: int, matter: str) -> Request:
    principal = SimpleNamespace(kind="contact", id=who)
    send = SimpleNamespace(matter=matter)
    return Request(cast(Any, principal), cast(Any, send), None, None, None)


def test_a_flood_to_a_busy_matter_is_looked_at_a_batch_at_a_time() -> None:
    flood = [_request(i, "BUSY") for i in range(3 * BATCH_MAX)]
    other = _request(10_000, "FREE")
    queue = deque([*flood, other])
    assert take(queue, {"BUSY"}, None) == []  # the first BATCH_MAX held back, the rest not read
    assert list(queue) == [*flood, other]  # nothing lost or reordered
    # once the matter is free, its sends go first, in the order they came
    batch = take(queue, set(), None)
    assert batch == flood[:BATCH_MAX]
    assert list(queue) == [*flood[BATCH_MAX:], other]


def test_held_back_sends_keep_their_order_and_their_principals_wait_too() -> None:
    a1, b1, a2, c1 = (
        _request(1, "BUSY"),
        _request(2, "FREE"),
        _request(1, "FREE"),
        _request(3, "OTHER"),
    )
    queue = deque([a1, b1, a2, c1])
    # a2 waits behind its principal's a1 (and holds FREE from then on); b1 came
    # before it and is taken, and so is c1, to a matter nothing holds
    assert take(queue, {"BUSY"}, None) == [b1, c1]
    assert list(queue) == [a1, a2]
