"""Sign-in of a deployment with exactly one firm, where the firm may be left out
(attacker review findings 1 and 2): naming the firm or not must not tell an
account from nobody, nor double the account's sign-in limit.

These tests need a database holding one firm: on PostgreSQL each gets a new
database (the suite's shared one holds every test's firms).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rtportal.db.migrate import upgrade
from rtportal.settings import Settings
from tests.conftest import MakeFirm
from tests.conftest import test_database_url as external_database_url
from tests.support.logins import (
    firm_slug,
    give_password,
    prelogin_kdf,
    signin_body,
    staff_email,
)
from tests.support.pgdb import new_pg_database

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def database_url(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[str]:
    """A database of this test alone (one firm in it once the test made it)."""
    if external_database_url():
        async with new_pg_database("rtp_onefirm") as url:
            await upgrade(url)
            yield url
        return
    target = tmp_path / "rtportal.db"
    shutil.copyfile(sqlite_template, target)
    yield f"sqlite+aiosqlite:///{target}"


async def test_prelogin_does_not_tell_an_account_from_nobody_by_naming_the_firm_or_not(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    """With one firm, a sign-in may leave the firm out. A real account's salt is
    the same either way; nobody's must be too, or two prelogins enumerate accounts."""
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    real_named = await prelogin_kdf(http, {"firm": slug, "email": email})
    real_unnamed = await prelogin_kdf(http, {"email": email})
    assert real_named == real_unnamed
    nobody_named = await prelogin_kdf(http, {"firm": slug, "email": "nobody@firm.test"})
    nobody_unnamed = await prelogin_kdf(http, {"email": "nobody@firm.test"})
    assert nobody_named == nobody_unnamed


async def test_the_account_sign_in_limit_is_one_count_whether_the_firm_is_named_or_not(
    http: httpx.AsyncClient, make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    slug = await firm_slug(kit.db, kit.firm_id)
    email = await staff_email(kit.db, kit.staff.id)
    await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    kdf = await prelogin_kdf(http, {"firm": slug, "email": email})
    wrong = signin_body(slug, email, "wrong password entirely", kdf)
    codes = []
    for i in range(2 * settings.signin_account_limit):
        body = dict(wrong) if i % 2 else {k: v for k, v in wrong.items() if k != "firm"}
        response = await http.post("/api/v1/signin", json=body)
        codes.append(response.json()["error"]["code"])
    assert codes.count("invalid_credentials") == settings.signin_account_limit, codes
