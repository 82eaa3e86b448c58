"""Fixtures every test module uses: settings, db, make_firm, app, http, uvicorn_server.

Backends: ``RTPORTAL_TEST_DATABASE_URL`` (default: a fresh SQLite file per
test, copied from a template migrated once per session) and
``RTPORTAL_TEST_BROKER_URL`` (default ``memory://``). A configured service
that cannot be reached fails the test in CI and skips it elsewhere
(``tests.support.procs.service_unavailable``). Tests on a shared PostgreSQL
never collide because every ``make_firm`` gets its own firm and random
matter references; nothing is truncated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from rtportal.access.removal import end_membership, remove_member
from rtportal.access.sessions import issue_token
from rtportal.crypto.backup import MIN_M_KIB, MIN_T
from rtportal.db import Database
from rtportal.db.migrate import upgrade
from rtportal.db.models import Firm, Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.principal import Principal
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from tests.support.procs import service_unavailable
from tests.support.server import RunningServer, running_server
from tests.support.stucktasks import no_stuck_tasks  # noqa: F401 - a fixture (browser journeys)

TEST_SECRET_HEX = "5e" * 32
TEST_ORIGIN = "http://127.0.0.1:8000"
# Cheap password hashing for tests (the defaults take ~64 MiB and tens of ms each). The
# browser-side Argon2id cannot go below the rtp1 library's floor (19 MiB, t=2: ~30 ms here),
# which settings enforce, so tests use exactly that floor.
FAST_LOGIN_ENV = {
    "RTPORTAL_LOGIN_HASH_MEMORY_KIB": "1024",
    "RTPORTAL_LOGIN_HASH_TIME_COST": "1",
    "RTPORTAL_LOGIN_KDF_M_KIB": str(MIN_M_KIB),
    "RTPORTAL_LOGIN_KDF_T": str(MIN_T),
    "RTPORTAL_LOGIN_KDF_MIN_M_KIB": str(MIN_M_KIB),
    "RTPORTAL_LOGIN_KDF_MIN_T": str(MIN_T),
}


def _run_sync(coro: Awaitable[Any]) -> Any:
    """Run a coroutine to completion from a sync fixture.

    In a thread of its own, so that neither a running loop nor the current
    thread's event loop (pytest-asyncio's) is touched.
    """

    async def main() -> Any:
        return await coro

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


_checked: dict[str, str | None] = {}  # url -> None if reachable, else the reason
_migrated: set[str] = set()


async def _probe_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _fresh_schema(url: str) -> None:
    """Empty the external test database before the session's first migration.

    The database is the test run's own (CI: db ``test``), but it outlives
    runs: one of another checkout may have left tables at a revision this
    checkout does not know, and Alembic would refuse to start from it.
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def _probe_redis(url: str) -> None:
    import redis.asyncio as aioredis

    from rtportal.realtime.broker.redis import split_prefix

    # ``?prefix=`` is the broker's, not redis-py's.
    client = aioredis.from_url(split_prefix(url)[0], socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _require(url: str, probe: Callable[[str], Awaitable[None]], what: str) -> None:
    """Probe a service once per session; fail (CI) or skip when it is down."""
    if url not in _checked:
        try:
            _run_sync(asyncio.wait_for(probe(url), 10))
            _checked[url] = None
        except Exception as exc:
            _checked[url] = f"{what} at {url} ({type(exc).__name__}: {exc})"
    reason = _checked[url]
    if reason is not None:
        service_unavailable(reason)


def test_database_url() -> str | None:
    """The configured external test database, or ``None`` for per-test SQLite."""
    return os.environ.get("RTPORTAL_TEST_DATABASE_URL") or None


test_database_url.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run_sync(upgrade(f"sqlite+aiosqlite:///{path}"))
    # The last connection closed: the WAL is checkpointed into the main file.
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    external = test_database_url()
    if external:
        _require(external, _probe_database, "the test database")
        if external not in _migrated:
            _run_sync(_fresh_schema(external))
            _run_sync(upgrade(external))
            _migrated.add(external)
        return external
    target = tmp_path / "rtportal.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def broker_url() -> str:
    """The test broker; on Redis each test gets its own key prefix, so what one
    test leaves in Redis (rate-limit counts of 127.0.0.1, channels) never
    reaches another test or a later run."""
    url = os.environ.get("RTPORTAL_TEST_BROKER_URL") or "memory://"
    if url.startswith("redis://"):
        _require(url, _probe_redis, "the test Redis broker")
        from rtportal.realtime.broker.redis import split_prefix

        base, prefix = split_prefix(url)
        sep = "&" if "?" in base else "?"
        url = f"{base}{sep}prefix={prefix}t{secrets.token_hex(4)}:"
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str) -> Settings:
    data_dir = tmp_path / "data"
    return Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": str(data_dir),
            "RTPORTAL_DATABASE_URL": database_url,
            "RTPORTAL_BROKER_URL": broker_url,
            "RTPORTAL_SECRET_KEY": TEST_SECRET_HEX,
            "RTPORTAL_ALLOWED_ORIGINS": f"{TEST_ORIGIN},http://localhost:8000",
            "RTPORTAL_HUB_POLL_INTERVAL": "0.5",
            **FAST_LOGIN_ENV,
        }
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """A migrated ``Database`` on the test backend."""
    database = Database(settings.database_url)
    try:
        yield database
    finally:
        await database.close()


@dataclass
class FirmKit:
    """A firm with an org admin, a staff member, a client contact, a bot and a matter."""

    db: Database
    settings: Settings
    firm_id: int
    name: str
    admin: Principal
    staff: Principal
    contact: Principal
    bot: Principal
    matter: Matter
    tokens: dict[str, str] = field(default_factory=dict)  # admin/staff/contact/bot

    @property
    def ref(self) -> str:
        return self.matter.reference

    def auth(self, who: str) -> dict[str, str]:
        """``Authorization`` header of ``who`` (admin/staff/contact/bot)."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def _firm(self, session: AsyncSession) -> Firm:
        firm = await session.get(Firm, self.firm_id)
        assert firm is not None
        return firm

    async def add_matter(
        self, *, title: str = "Another matter", members: tuple[Principal, ...] | None = None
    ) -> Matter:
        """A new matter of this firm; by default the contact and the bot are members."""
        async with self.db.write() as session:
            firm = await self._firm(session)
            matter = await create_matter(session, firm, title=title, responsible=self.staff)
            for principal in members if members is not None else (self.contact, self.bot):
                await add_member(session, matter, principal)
        return matter

    async def add_contact(
        self, name: str = "Another Client", *, matter: Matter | None = None
    ) -> tuple[Principal, str]:
        """A new contact (member of ``matter`` if given) and a bearer token for it."""
        async with self.db.write() as session:
            firm = await self._firm(session)
            contact = await create_contact(session, firm, display_name=name)
            if matter is not None:
                await add_member(session, matter, contact)
            token = await issue_token(
                session, self.settings.secret_key, "contact", contact.id, label="test", ttl=None
            )
        return contact, token

    async def remove_member(
        self, principal: Principal, matter: Matter | None = None, *, hub: Hub | None = None
    ) -> None:
        """End ``principal``'s membership of ``matter`` (default: the kit's matter).

        With ``hub``: ``rtportal.access.removal.remove_member`` (its live
        websockets holding the matter close at once on every worker).
        Without: the database change only, as when the control message is lost.
        """
        target = matter or self.matter
        if hub is not None:
            await remove_member(self.db, hub, target.id, principal.kind, principal.id)
            return
        async with self.db.write() as session:
            await end_membership(session, target.id, principal.kind, principal.id)


MakeFirm = Callable[..., Awaitable[FirmKit]]


@pytest.fixture
def make_firm(db: Database, settings: Settings) -> MakeFirm:
    """Factory: ``kit = await make_firm(name="...")`` builds a fresh firm."""
    counter = 0

    async def factory(name: str | None = None) -> FirmKit:
        nonlocal counter
        counter += 1
        label = name or f"Test Firm {counter}"
        async with db.write() as session:
            firm = await create_firm(session, label)
            tag = f"{firm.id}.{counter}"
            admin = await create_staff(
                session,
                firm,
                email=f"admin{tag}@firm.test",
                display_name="Ada Admin",
                role="org_admin",
            )
            staff = await create_staff(
                session, firm, email=f"staff{tag}@firm.test", display_name="Sam Staff"
            )
            bot = await create_staff(
                session, firm, email=f"bot{tag}@firm.test", display_name="Robo", role="bot"
            )
            contact = await create_contact(session, firm, display_name="Cleo Client")
            matter = await create_matter(session, firm, title="Visa application", responsible=staff)
            await add_member(session, matter, contact)
            await add_member(session, matter, bot)
            tokens = {}
            for key, principal in (
                ("admin", admin),
                ("staff", staff),
                ("contact", contact),
                ("bot", bot),
            ):
                tokens[key] = await issue_token(
                    session,
                    settings.secret_key,
                    principal.kind,
                    principal.id,
                    label="test",
                    ttl=timedelta(hours=1),
                )
        return FirmKit(db, settings, firm.id, label, admin, staff, contact, bot, matter, tokens)

    return factory


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The rtportal app with its lifespan (migrations, db, broker, hub) running."""
    from rtportal.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in-process (no sockets)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def uvicorn_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """A fresh app served by a real uvicorn on a free port (lifespan run by uvicorn)."""
    from rtportal.app import create_app

    async with running_server(create_app(settings)) as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser journeys clear the tasks they leave behind (tests/support/stucktasks.py)."""
    for item in items:
        if item.path.name.startswith("test_browser_"):
            item.add_marker(pytest.mark.usefixtures("no_stuck_tasks"))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Captured logs (shown with a failing test) in the operator's text format,
    fields included: ``backend_unavailable cause=...`` says which backend error
    it was, where pytest's own format would print the event name alone."""
    from rtportal.logs import TextFormatter

    plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("caplog_handler", "report_handler"):
        handler = getattr(plugin, name, None)
        if handler is not None:
            handler.setFormatter(TextFormatter())
