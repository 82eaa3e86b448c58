"""``rtportal create-firm`` as a subprocess: a firm, its org admin and a password
that sign-in verifies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from argon2 import extract_parameters
from sqlalchemy import select
from starlette.applications import Starlette

from rtportal.access.credentials import credential_of
from rtportal.db.models import Firm, StaffUser
from rtportal.settings import Settings
from tests.conftest import FAST_LOGIN_ENV, TEST_SECRET_HEX
from tests.support.logins import signin_body

PASSWORD = "a long first password"


def create_firm(
    settings: Settings, tmp_path: Path, *args: str, stdin: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPORTAL_")}
    env.update(
        {
            "RTPORTAL_DATA_DIR": str(tmp_path / "cli-data"),
            "RTPORTAL_DATABASE_URL": settings.database_url,
            "RTPORTAL_SECRET_KEY": TEST_SECRET_HEX,
            "RTPORTAL_PUBLIC_URL": "https://portal.example",
            **FAST_LOGIN_ENV,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "rtportal", "create-firm", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_firm_makes_an_admin_who_can_sign_in(
    settings: Settings, tmp_path: Path, app: Starlette, http: httpx.AsyncClient
) -> None:
    slug = f"acme-{os.getpid()}-{tmp_path.name[-6:]}".lower().replace("_", "-")
    args = ("--name", "Acme Law", "--slug", slug, "--admin-email", "Boss@Acme.test")
    done = create_firm(
        settings,
        tmp_path,
        *args,
        "--admin-name",
        "Bo Boss",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert f"sign in: https://portal.example/?firm={slug}" in done.stdout
    async with app.state.db.read() as session:
        firm = (await session.execute(select(Firm).where(Firm.slug == slug))).scalar_one()
        admin = (
            await session.execute(select(StaffUser).where(StaffUser.firm_id == firm.id))
        ).scalar_one()
    assert (admin.email, admin.role, admin.status) == ("boss@acme.test", "org_admin", "active")
    async with app.state.db.read() as session:
        credential = await credential_of(session, "staff", admin.id)
    assert credential is not None and credential.verifier is not None
    # Hashed with the configured server parameters, not the library's defaults.
    assert extract_parameters(credential.verifier).memory_cost == settings.login_hash_memory_kib
    kdf = (
        await http.post("/api/v1/prelogin", json={"firm": slug, "email": "boss@acme.test"})
    ).json()
    wrong = await http.post(
        "/api/v1/signin", json=signin_body(slug, "boss@acme.test", "nope", kdf["kdf"])
    )
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    # The password is right; an org admin needs a second factor as well.
    right = await http.post(
        "/api/v1/signin", json=signin_body(slug, "boss@acme.test", PASSWORD, kdf["kdf"])
    )
    assert right.status_code == 401, right.text
    assert right.json()["error"]["code"] == "second_factor_required"
    # The same slug again, and a short password: clear errors, nothing made.
    again = create_firm(
        settings, tmp_path, *args, "--admin-name", "Bo", "--password-stdin", stdin=PASSWORD
    )
    assert again.returncode == 1 and "[conflict]" in again.stderr
    short = create_firm(
        settings,
        tmp_path,
        "--name",
        "Tiny",
        "--admin-email",
        "t@tiny.test",
        "--admin-name",
        "T",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1 and "[precondition_failed]" in short.stderr
    bad_slug = create_firm(
        settings,
        tmp_path,
        "--name",
        "Bad",
        "--slug",
        "Not A Slug",
        "--admin-email",
        "b@b.test",
        "--admin-name",
        "B",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert bad_slug.returncode == 1 and "[bad_request]" in bad_slug.stderr
