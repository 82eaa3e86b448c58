"""The demo seed and the CLI (real subprocesses, a real ``rtportal serve``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from argon2 import PasswordHasher
from sqlalchemy import func, select
from websockets.typing import Origin

from rtportal.access import invitelist, membership
from rtportal.access.credentials import credential_of
from rtportal.access.sessions import authenticate
from rtportal.crypto.backup import Argon2Params, derive_password_keys
from rtportal.db import Database
from rtportal.db import migrate as migrate_mod
from rtportal.db.models import Firm, Invite
from rtportal.demo import DEMO_FIRM, DEMO_MATTER, DEMO_PASSWORD, format_demo, seed_demo, slug_of
from rtportal.demoportal import (
    DEMO_CLIENT_PASSWORD,
    DOCS_TEXT,
    NOTE_TEXT,
    REPLY_TEXT,
    WELCOME_TEXT,
)
from rtportal.errors import Unauthenticated
from rtportal.events import log as stream
from rtportal.events.audience import view_for
from rtportal.sdk.client import Client
from rtportal.sdk.transport import Http
from rtportal.settings import Settings
from tests.conftest import FAST_LOGIN_ENV, TEST_SECRET_HEX
from tests.support.procs import ManagedProcess, free_port
from tests.support.wsjson import HELLO

TOKEN_RE = re.compile(r"^(org admin|staff|bot|client): .*?\n  login link: \S+#token=(\S+)", re.M)
API_RE = re.compile(
    r"^(org admin|staff|bot|client): .*?\n.*?\n  API: +curl -H 'Authorization: Bearer (\S+)'",
    re.M,
)


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTPORTAL_")}
    env.update(
        {
            "RTPORTAL_DATA_DIR": str(tmp_path / "cli-data"),
            "RTPORTAL_DATABASE_URL": settings.database_url,
            "RTPORTAL_BROKER_URL": "memory://",
            "RTPORTAL_SECRET_KEY": TEST_SECRET_HEX,
            "PYTHONUNBUFFERED": "1",
            **FAST_LOGIN_ENV,
        }
    )
    return env


async def test_seed_is_idempotent_and_tokens_work(db: Database, settings: Settings) -> None:
    first = await seed_demo(db, settings)
    second = await seed_demo(db, settings)
    assert [u.role for u in first] == ["org admin", "staff", "bot", "client"]
    assert [u.principal for u in first] == [u.principal for u in second]
    async with db.read() as session:
        firms = await session.scalar(
            select(func.count()).select_from(Firm).where(Firm.name == DEMO_FIRM)
        )
        assert firms == 1
        client = first[3].principal
        for user in first + second:
            assert await authenticate(session, settings.secret_key, user.token) == user.principal
            with pytest.raises(Unauthenticated):  # a login link is no bearer token
                await authenticate(session, settings.secret_key, user.login)
        matter = await membership.can_access(session, client, DEMO_MATTER)
        events = await stream.read_since(session, matter.id, 0, 100)
    content = [e for e in events if e.kind != "keys"]
    assert [(e.kind, e.audience) for e in content if e.kind != "access"] == [
        ("phase", "staff"),  # the demo matter waits on documents (its visa type's timeline)
        ("step", "portal"),
        ("welcome", "portal"),
        ("message", "portal"),
        ("message", "portal"),
        ("note", "staff"),
    ]
    step = content[1]
    assert step.payload == {
        "index": 1,
        "total": 4,
        "name": "Gathering documents",
        "description": "Send us the documents we ask for; we check each one.",
    }
    # end-to-end encrypted: every content event is an rtp1 envelope, its payload a thread
    for e in content:
        if e.kind in ("welcome", "message", "note"):
            assert e.blob is not None and e.blob.startswith(b"RTMX"), e
            assert set(e.payload) <= {"thread", "to", "item", "parent"}, e.payload
    assert [view_for(e, client) is None for e in content if e.kind != "access"] == [
        True,
        False,
        False,
        False,
        False,
        True,
    ]
    # the root key file is written where the keys were first set up (owner-only); a test
    # database shared across tests may have been seeded from another data directory
    key_file = settings.data_dir / "demo-frk.key"
    assert not key_file.exists() or key_file.stat().st_mode & 0o777 == 0o600
    text = format_demo(first, "http://127.0.0.1:8000")
    assert len(TOKEN_RE.findall(text)) == len(API_RE.findall(text)) == 4
    assert "?token=" not in text and "curl -H 'Authorization: Bearer " in text
    admin = next(u for u in first if u.role == "org admin")
    assert f"curl -H 'Authorization: Bearer {admin.token}' http://127.0.0.1:8000/api/v1/outbox" in (
        text
    )


async def test_the_demo_client_signs_in_with_the_printed_password(
    db: Database, settings: Settings
) -> None:
    """The demo matter's portal is on: Amira's invite is active, and the password
    printed by the demo derives (as the browser does) the login secret her
    credential verifies."""
    users = await seed_demo(db, settings)
    await seed_demo(db, settings)  # idempotent: one invite
    client = users[3].principal
    text = format_demo(users, "http://127.0.0.1:8000")
    assert f"amira@client.example, password {DEMO_CLIENT_PASSWORD}" in text
    async with db.read() as session:
        (invite,) = (
            await session.execute(select(Invite).where(Invite.contact_id == client.id))
        ).scalars()
        assert invite.status == "active"
        matter = await membership.can_access(session, client, DEMO_MATTER)
        assert await invitelist.portal_on(session, [matter.id]) == {matter.id}
        credential = await credential_of(session, "contact", client.id)
    assert credential is not None and credential.verifier is not None
    params = json.loads(credential.kdf_params)
    keys = derive_password_keys(
        DEMO_CLIENT_PASSWORD, credential.kdf_salt, Argon2Params(params["m_kib"], params["t"])
    )
    assert PasswordHasher().verify(credential.verifier, keys.login_secret)


def test_cli_migrate_and_seed_demo(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings, tmp_path)
    migrate = subprocess.run(
        [sys.executable, "-m", "rtportal", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert f"database at revision {migrate_mod.head_revision()}" in migrate.stdout
    seed = subprocess.run(
        [sys.executable, "-m", "rtportal", "seed-demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seed.returncode == 0, seed.stderr
    assert {role for role, _ in TOKEN_RE.findall(seed.stdout)} == {
        "org admin",
        "staff",
        "bot",
        "client",
    }


def test_cli_reports_bad_settings_and_refuses_memory_broker_for_workers(
    settings: Settings, tmp_path: Path
) -> None:
    env = {**_env(settings, tmp_path), "RTPORTAL_DATABASE_URL": "mysql://nope"}
    bad = subprocess.run(
        [sys.executable, "-m", "rtportal", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "error [invalid_config]" in bad.stderr
    workers = subprocess.run(
        [sys.executable, "-m", "rtportal", "serve", "--workers", "2", "--port", "1"],
        env=_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert workers.returncode != 0 and "RTPORTAL_BROKER_URL=redis://" in workers.stderr


async def test_serve_demo_end_to_end(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = ManagedProcess(
        [
            sys.executable,
            "-m",
            "rtportal",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=_env(settings, tmp_path),
        log_path=log,
    )
    proc.start()
    try:
        tokens: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = asyncio.get_running_loop().time() + 60
            while True:  # poll until the server answers (it migrates and seeds first)
                assert proc.proc is not None and proc.proc.poll() is None, log.read_text()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, log.read_text()
                await asyncio.sleep(0.1)  # reason: polling a port that has no event to await
            printed = log.read_text()
            tokens = dict(API_RE.findall(printed))
            logins = dict(TOKEN_RE.findall(printed))
            assert "firm-keys approve" in printed and "demo-frk.key" in printed
            # The printed links and the allowed origins follow --port.
            assert f"login link: http://127.0.0.1:{port}/#token=" in printed
            # A login link works once.
            for status in (201, 401):
                exchanged = await client.post("/api/v1/session", json={"token": logins["client"]})
                assert exchanged.status_code == status, exchanged.text
            client.cookies.clear()
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws",
                origin=Origin(f"http://127.0.0.1:{port}"),
                additional_headers={"Authorization": f"Bearer {tokens['client']}"},
            ) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert hello["type"] == "hello"
                await ws.send(HELLO)
            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {tokens['client']}"}
            )
            assert me.json()["principal"]["name"] == "Amira Haddad"
            history = await client.get(
                f"/api/v1/matters/{DEMO_MATTER}/events",
                headers={"Authorization": f"Bearer {tokens['client']}"},
            )
            kinds = [e["kind"] for e in history.json()["events"] if e["kind"] != "keys"]
            assert kinds == ["step", "welcome", "message", "message"]
            # the printed passwords open the demo people's keys: the conversation decrypts
            base = f"http://127.0.0.1:{port}"
            for email, password, expected in (
                (
                    "amira@client.example",
                    DEMO_CLIENT_PASSWORD,
                    [WELCOME_TEXT, DOCS_TEXT, REPLY_TEXT],
                ),
                (
                    "sam@harbourfinch.example",
                    DEMO_PASSWORD,
                    [WELCOME_TEXT, DOCS_TEXT, REPLY_TEXT, NOTE_TEXT],
                ),
            ):
                sdk_http = Http(base, origin=base)
                try:
                    person = Client(sdk_http, firm=slug_of(DEMO_FIRM), state_dir=tmp_path)
                    await person.sign_in(email, password)
                    assert [i.body.text for i in await person.read(DEMO_MATTER)] == expected
                finally:
                    await sdk_http.aclose()
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode is not None
