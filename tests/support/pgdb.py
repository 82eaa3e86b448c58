"""A new, empty PostgreSQL database for one test, dropped after it."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.procs import service_unavailable

__all__ = ["PG_URL", "new_pg_database"]

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
