"""Sign-in is rate limited: failed authentications per source address, exchanges
per token, and an unknown token never takes the database's write lock."""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from rtportal.access.sessions import EXCHANGE_LIMIT
from rtportal.app import create_app
from rtportal.db import Database
from rtportal.errors import RateLimited
from rtportal.limits import AuthFailures
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server


def _bogus() -> str:
    return secrets.token_urlsafe(32)  # well formed, never issued


async def test_unknown_tokens_do_not_take_the_write_lock(
    settings: Settings,
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite's process-wide write lock (PostgreSQL has none): the test runs on a
    SQLite database of its own whatever the suite's backend, so it never skips."""
    target = tmp_path / "writelock.db"
    shutil.copyfile(sqlite_template, target)
    settings = dataclasses.replace(
        settings, database_url=f"sqlite+aiosqlite:///{target}", auth_failure_burst=1000
    )
    async with running_server(create_app(settings)) as server:
        db: Database = server.app.state.db
        assert db.backend == "sqlite"
        taken = 0
        original: Callable[[], AbstractAsyncContextManager[None]] = db.write_lock

        def counting() -> AbstractAsyncContextManager[None]:
            nonlocal taken
            taken += 1
            return original()

        monkeypatch.setattr(db, "write_lock", counting)
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for _ in range(5):
                token = _bogus()
                r = await http.post("/api/v1/session", json={"token": token})
                assert r.status_code == 401, r.text
                r = await http.delete(
                    "/api/v1/session", headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status_code == 401, r.text
        assert taken == 0


async def test_failed_authentications_are_limited_per_address(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    settings = dataclasses.replace(settings, auth_failure_burst=3, auth_failure_rate=0.01)
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            # Failures of the exchange and of bearer requests share one bucket.
            for attempt in (
                http.post("/api/v1/session", json={"token": _bogus()}),
                http.get("/api/v1/me", headers={"Authorization": f"Bearer {_bogus()}"}),
                http.delete("/api/v1/session", headers={"Authorization": f"Bearer {_bogus()}"}),
            ):
                assert (await attempt).status_code == 401
            # Empty: refused before the lookup, even with a good token.
            for refused in (
                await http.post("/api/v1/session", json={"token": _bogus()}),
                await http.post("/api/v1/session", json={"token": kit.tokens["contact"]}),
                await http.get("/api/v1/me", headers=kit.auth("contact")),
            ):
                assert refused.status_code == 429, refused.text
                assert refused.json()["error"]["code"] == "rate_limited"
                assert int(refused.headers["Retry-After"]) >= 1
            # A request without any token is not metered: a plain 401.
            assert (await http.get("/api/v1/me")).status_code == 401


async def test_a_token_makes_a_bounded_number_of_sessions(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit: FirmKit = await make_firm()
    async with running_server(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for _ in range(EXCHANGE_LIMIT):
                made = await http.post("/api/v1/session", headers=kit.auth("contact"))
                assert made.status_code == 201, made.text
                http.cookies.clear()
            refused = await http.post("/api/v1/session", headers=kit.auth("contact"))
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) > 0
            # Another token of the same user is not affected.
            assert (
                await http.post("/api/v1/session", headers=kit.auth("staff"))
            ).status_code == 201


def test_failure_buckets_by_address_are_bounded(settings: Settings) -> None:
    now = [0.0]
    failures = AuthFailures(
        dataclasses.replace(settings, auth_failure_burst=2, auth_failure_rate=1.0),
        clock=lambda: now[0],
    )
    # One IPv6 host's /64 is one bucket; IPv4 addresses are their own.
    failures.failed("2001:db8::1")
    failures.failed("2001:db8::ffff:1")
    with pytest.raises(RateLimited) as raised:
        failures.check("2001:db8::2")
    assert raised.value.details["retry_after"] == 1.0
    failures.check("2001:db8:0:1::1")  # another /64
    failures.check("192.0.2.1")
    now[0] = 1.0
    failures.check("2001:db8::3")  # refilled
    # Many addresses, none refilled: the oldest buckets are evicted, memory stays bounded.
    for n in range(30_000):
        failures.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
    assert len(failures) <= 10_000
