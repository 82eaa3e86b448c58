"""A new, empty PostgreSQL database for one test, dropped after it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from rtportal.db.migrate import upgrade
from tests.support.procs import service_unavailable

__all__ = [
    "PG_URL",
    "migrated_pg_database",
    "nested_plans",
    "new_pg_database",
    "waiting_on_locks",
]

# The machine's PostgreSQL (trust auth); each test creates its own database there.
PG_URL = os.environ.get("RTPORTAL_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def new_pg_database(prefix: str) -> AsyncIterator[str]:
    """The URL of a new database named ``<prefix>_<random>``; dropped on exit
    (``WITH (FORCE)``: connections a failing test left open do not stop it)."""
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server, missing rights
        await admin.dispose()
        service_unavailable(f"PostgreSQL at {PG_URL} ({type(exc).__name__}: {exc})")
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def nested_plans(conn: Any, call: Awaitable[Any]) -> str:
    """The plans PostgreSQL runs for ``call``'s statements, the nested ones inside
    functions included (``auto_explain`` notices on the asyncpg ``conn``), as text."""
    notices: list[str] = []
    conn.add_log_listener(lambda _conn, msg: notices.append(str(msg.message)))
    await conn.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
        " SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice;"
        " SET client_min_messages = notice"
    )
    await call
    await conn.execute("SET auto_explain.log_min_duration = -1")
    return "\n".join(notices)


@asynccontextmanager
async def migrated_pg_database(prefix: str) -> AsyncIterator[str]:
    """``new_pg_database`` brought to the newest revision: its tables are empty, so
    the plans a test makes there first are made for small tables."""
    async with new_pg_database(prefix) as url:
        await upgrade(url)
        yield url


async def waiting_on_locks(conn: Any, n: int) -> None:
    """Until ``n`` other backends of ``conn``'s database (an asyncpg connection) wait
    for a lock (polled: what is awaited happens in the server, which says so only
    when asked)."""
    async with asyncio.timeout(30):
        while True:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if waiting >= n:
                return
