"""A test's leftover asyncio tasks, cancelled and waited for with a bound.

A task that never finishes once cancelled makes the event loop's teardown
wait forever and hangs the whole run (one such case, SQLAlchemy's close
of a terminated aiosqlite connection, is bounded in rtportal/db/engine.py).
``no_stuck_tasks`` (used by every ``test_browser_*`` module,
tests/conftest.py) cancels the tasks a test left behind, waits up to
``STUCK_AFTER`` seconds, and for a task still pending then: a warning with
its stack (in the run's warnings summary) and the task taken off the loop's
task list, so the loop's own teardown does not wait for it.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator

import pytest

__all__ = ["STUCK_AFTER", "StuckTaskWarning", "clear_left_tasks", "no_stuck_tasks"]

STUCK_AFTER = 10.0  # seconds a cancelled task may take to finish


class StuckTaskWarning(UserWarning):
    """A task did not finish within STUCK_AFTER seconds of being cancelled."""


async def clear_left_tasks(before: set[asyncio.Task[object]]) -> int:
    """Cancel the running tasks not in ``before``; unhook those stuck (above).
    Returns how many were stuck."""
    current = asyncio.current_task()
    pending: set[asyncio.Task[object]] = set()
    for _ in range(3):  # a task cancelled here may start another (a connection's close)
        left = [
            t for t in asyncio.all_tasks() - before - pending if t is not current and not t.done()
        ]
        if not left:
            break
        for task in left:
            task.cancel()
        _, still = await asyncio.wait(left, timeout=STUCK_AFTER)
        pending |= still
    for task in pending:
        stack = io.StringIO()
        task.print_stack(file=stack)
        warnings.warn(
            f"a task did not finish {STUCK_AFTER:.0f} s after being cancelled: {stack.getvalue()}",
            StuckTaskWarning,
            stacklevel=1,
        )
        # private, on purpose: the loop's teardown (asyncio.runners._cancel_all_tasks)
        # would wait for it forever
        getattr(asyncio.tasks, "_unregister_task")(task)  # noqa: B009
    return len(pending)


@pytest.fixture
async def no_stuck_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await clear_left_tasks(before)
