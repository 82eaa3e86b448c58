"""The browser journeys' guard against a task that never finishes once cancelled
(tests/support/stucktasks.py): it warns with the task's stack and takes it off
the loop's task list, so the loop's teardown cannot hang on it."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import stucktasks
from tests.support.stucktasks import StuckTaskWarning, clear_left_tasks


async def test_a_stuck_task_is_reported_and_unhooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stucktasks, "STUCK_AFTER", 0.2)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await never  # a cleanup whose awaitable never completes

    async def polite() -> None:
        await asyncio.Event().wait()

    before = asyncio.all_tasks()
    stuck = asyncio.create_task(stubborn())
    fine = asyncio.create_task(polite())
    await started.wait()
    with pytest.warns(StuckTaskWarning, match="stubborn"):
        assert await clear_left_tasks(before) == 1
    assert fine.cancelled()
    assert stuck not in asyncio.all_tasks() and not stuck.done()
    never.set_result(None)  # let it end now (the loop would otherwise warn at close)
    await stuck


async def test_nothing_left_is_nothing_to_do() -> None:
    assert await clear_left_tasks(asyncio.all_tasks()) == 0
