"""The worker's byte budget of page reads (rtportal.bytebudget)."""

from __future__ import annotations

import asyncio

import pytest

from rtportal.bytebudget import ByteBudget
from rtportal.errors import Unavailable


async def test_reads_over_the_budget_wait_their_turn_in_order() -> None:
    budget = ByteBudget(10)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.hold(8):
            order.append("first")
            first_in.set()
            await release_first.wait()

    async def later(name: str, n: int) -> None:
        async with budget.hold(n):
            order.append(name)

    t1 = asyncio.create_task(first())
    await first_in.wait()
    t2 = asyncio.create_task(later("second", 5))  # does not fit beside the first
    t3 = asyncio.create_task(later("third", 1))  # would fit, but waits behind the second
    await asyncio.sleep(0)  # reason: one loop turn runs new tasks to their first await
    assert budget.waiting == 2
    assert order == ["first"] and budget.used == 8
    release_first.set()
    await asyncio.gather(t1, t2, t3)
    assert order == ["first", "second", "third"]
    assert budget.used == 0


async def test_a_read_larger_than_the_budget_takes_all_of_it() -> None:
    budget = ByteBudget(10)
    async with budget.hold(1_000):
        assert budget.used == 10
    assert budget.used == 0


async def test_a_cancelled_waiter_gives_back_its_place() -> None:
    budget = ByteBudget(10)
    async with budget.hold(10):
        waiter = asyncio.create_task(budget.hold(5).__aenter__())
        await asyncio.sleep(0)  # reason: one loop turn runs the new task to its first await
        assert budget.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert budget.waiting == 0
    assert budget.used == 0


async def test_the_queue_of_waiters_is_bounded() -> None:
    budget = ByteBudget(10, max_waiters=1)
    async with budget.hold(10):
        waiter = asyncio.create_task(budget.hold(1).__aenter__())
        await asyncio.sleep(0)  # reason: one loop turn runs the new task to its first await
        assert budget.waiting == 1
        with pytest.raises(Unavailable):
            async with budget.hold(1):
                pass
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
