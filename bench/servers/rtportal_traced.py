"""rtportal's app with SQL statement timing, for finding where the time goes.

``uvicorn --factory bench.servers.rtportal_traced:create_app`` serves exactly
``rtportal.app.create_app_from_env()`` and additionally times every SQL
statement (SQLAlchemy cursor events on the ``Engine`` class, so every engine
rtportal creates is covered). On shutdown it writes a table of statements by
total time to ``$BENCH_SQL_TRACE`` (run.py --sql-trace sets it). Statement
time is wall time between the cursor events: on SQLite that includes waiting
for the single writer; on PostgreSQL the round trip.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from rtportal.app import create_app_from_env

__all__ = ["create_app"]

_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # count, total s, max s
_SPACES = re.compile(r"\s+")


def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    conn.info.setdefault("bench_t0", []).append(time.perf_counter())


def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
    stack = conn.info.get("bench_t0")
    if not stack:
        return
    took = time.perf_counter() - stack.pop()
    key = _SPACES.sub(" ", statement).strip()[:160]
    row = _stats[key]
    row[0] += 1
    row[1] += took
    row[2] = max(row[2], took)


def _dump() -> None:
    path = os.environ.get("BENCH_SQL_TRACE")
    if not path or not _stats:
        return
    rows = sorted(list(_stats.items()), key=lambda kv: kv[1][1], reverse=True)
    total = sum(r[1] for _, r in rows)
    with open(path, "w") as f:
        f.write(
            f"{'calls':>8} {'total s':>8} {'share':>6} {'mean ms':>8} {'max ms':>8}  statement\n"
        )
        for stmt, (n, tot, mx) in rows[:40]:
            f.write(
                f"{int(n):8d} {tot:8.2f} {100 * tot / total:5.1f}% {1000 * tot / n:8.2f} "
                f"{1000 * mx:8.1f}  {stmt}\n"
            )


def _dump_every(seconds: float) -> None:
    # Also while running: a server stopped with SIGKILL still leaves its table.
    while True:
        time.sleep(seconds)
        _dump()


def create_app() -> Starlette:
    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)
    atexit.register(_dump)
    threading.Thread(target=_dump_every, args=(5.0,), name="sql-trace", daemon=True).start()
    return create_app_from_env()
