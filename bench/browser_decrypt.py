"""The browser's end-to-end encryption costs, in Debian's Chromium (Playwright). Not a test.

    python bench/browser_decrypt.py [--messages N] [--runs R]

A real server (SQLite, uvicorn) holds one matter with N (default 1,000)
messages sealed by a staff member with the Python library, after a firm
set-up and a first epoch through the real key directory (/api/v1/keys/…).
A client's page then, in Chromium:

* ``backup_unlock``: ``unlockWithPassword`` on a backup with the default
  Argon2id parameters (64 MiB, t=3, p=1): Argon2id (wasm), AES-GCM, and the
  import of the identity as non-extractable WebCrypto keys into IndexedDB;
* ``directory_sync``: ``syncFirm`` + ``syncMatter`` (certificates, chain,
  head, the MEK unwrapped);
* ``decrypt_render``: the N events (already fetched) added to a MatterView:
  each envelope verified (certificate, signature, membership, replay) and
  decrypted, then its text put on the page; timed until every message shows
  as verified and laid out.

Prints one JSON object per line (figures in ms: the median over runs, the
fastest and the slowest) and the machine with its load average at the start and the end;
docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.crypto import backup as bk
from rtportal.crypto.backup import Argon2Params
from rtportal.crypto.envelope import CTYPE_BODY, Body
from rtportal.db import Database
from rtportal.db.migrate import upgrade
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.settings import Settings
from tests.conftest import FirmKit
from tests.support.crypto.world import World
from tests.support.keyfirm import KeyFirm, b64, real_now_ms
from tests.support.logins import give_password
from tests.support.procs import free_port
from tests.support.server import running_server

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench password 1234"
TEXT = "A message of about the length people write in a portal. " * 4


async def seed(settings: Settings, n: int) -> dict[str, Any]:
    """Firm, admin, client, matter; tokens; the admin's password (needed to register keys)."""
    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Benchmark & Co")
            admin = await create_staff(
                session, firm, email="admin@bench.test", display_name="Ada", role="org_admin"
            )
            client = await create_contact(session, firm, display_name="Cleo Client")
            matter = await create_matter(session, firm, title="Bench matter", responsible=admin)
            await add_member(session, matter, client)
            tokens = {
                who: await issue_token(
                    session,
                    settings.secret_key,
                    p.kind,
                    p.id,
                    label="bench",
                    ttl=timedelta(hours=2),
                )
                for who, p in (("admin", admin), ("client", client))
            }
            slug, ref = firm.slug, matter.reference
            # the firm as the tests' KeyFirm knows one (the admin is its only staff member)
            kit = FirmKit(
                db, settings, firm.id, firm.name, admin, admin, client, admin, matter,
                {"admin": tokens["admin"], "contact": tokens["client"]},
            )  # fmt: skip
        kdf = await give_password(db, settings, admin, "admin@bench.test", PASSWORD)
    finally:
        await db.close()
    # PUT /keys/me asks for the admin's login secret (what their browser derives at sign-in)
    params = Argon2Params(kdf.m_kib, kdf.t, kdf.p)
    login_secret = bk.derive_password_keys(PASSWORD, kdf.salt, params).login_secret
    return {
        "slug": slug, "ref": ref, "admin": admin, "client": client, "tokens": tokens, "n": n,
        "login_secret": login_secret, "kit": kit,
    }  # fmt: skip


async def publish(base_url: str, s: dict[str, Any]) -> KeyFirm:
    """Firm set-up, the client's certificate and epoch 1 (real API), then N sealed messages."""
    admin, client, ref = f"s{s['admin'].id}", f"c{s['client'].id}", s["ref"]
    auth = {"Authorization": f"Bearer {s['tokens']['admin']}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        keys = KeyFirm(s["kit"], http, World(s["slug"], now_ms=real_now_ms()), s["slug"])
        await keys.set_up_by_admin(s["login_secret"])
        keys.invite_client(client)
        crypto = keys.round_crypto(s["client"].id, "Welcome", "own_mail")
        answer = await http.post(
            "/api/v1/keys/certs", json={"certs": crypto["certs"]}, headers=auth
        )
        assert answer.status_code == 201, answer.text
        answer = await http.post(
            f"/api/v1/keys/matters/{ref}/epochs", json=crypto["epoch"], headers=auth
        )
        assert answer.status_code in (200, 201), answer.text
        sealer = keys.reader(admin)
        me = keys.world.ids[admin]

        async def post(i: int) -> None:
            env = sealer.seal_message(
                me, sender_id=admin, matter=ref, thread="t-1",
                plaintext=Body("", f"{i}: {TEXT}", ()).encode(),
                ts_ms=int(time.time() * 1000), ctype=CTYPE_BODY,
            )  # fmt: skip
            body = {"kind": "message", "payload": {"thread": "t-1"}, "blob": b64(env.encode())}
            r = await http.post(f"/api/v1/matters/{ref}/events", json=body, headers=auth)
            assert r.status_code == 201, r.text

        for start in range(0, s["n"], 50):
            await asyncio.gather(*(post(i) for i in range(start, min(s["n"], start + 50))))
    return keys


# the portal page shows its newest 100 events, every envelope verified and decrypted
LATEST_PAGE_SHOWN = """() => {
    const all = document.querySelectorAll('.message-body');
    return all.length >= 100 && [...all].every((b) => b.dataset.crypto === 'ok');
}"""

# the in-page half (an async arrow function for page.evaluate)
PAGE_SCRIPT = (Path(__file__).resolve().parent / "browser_decrypt_page.js").read_text()


async def run(n: int, runs: int) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    load_start = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="rtp-bench-"))
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": str(tmp / "data"),
            "RTPORTAL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
            "RTPORTAL_SECRET_KEY": "11" * 32,
            "RTPORTAL_ALLOWED_ORIGINS": origin,
            "RTPORTAL_WRITE_RATE": "10000",
            "RTPORTAL_WRITE_BURST": "10000",
        }
    )
    s = await seed(settings, n)
    results = []
    async with running_server(create_app(settings), port=port) as server:
        keys = await publish(server.base_url, s)
        client = f"c{s['client'].id}"
        # the backup with the default parameters a browser makes (64 MiB, t=3, p=1)
        params = Argon2Params(**{"m_kib": 65536, "t": 3, "p": 1})
        salt = keys.world.rng(16)
        pk = bk.derive_password_keys(PASSWORD, salt, params)
        contents = bk.BackupContents(keys.world.ids[client], keys.world.frk.public.fingerprint)
        backup = bk.create_backup(s["slug"], client, pk.kek, contents, params=params, salt=salt)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--headless"]
            )
            for _ in range(runs):
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(f"{server.base_url}/#token={s['tokens']['client']}")
                await page.wait_for_selector("#conn[data-state=live]", timeout=60_000)
                arg = {
                    "firm": s["slug"],
                    "user": client,
                    "password": PASSWORD,
                    "backup": b64(backup.encode()),
                    "ref": s["ref"],
                }
                results.append(await page.evaluate(PAGE_SCRIPT, arg))
                # Opening the portal page on the matter (keys already on this device): the
                # stream shows the newest page (100 events), each verified and decrypted.
                t0 = time.perf_counter()
                await page.goto(f"{server.base_url}/")
                await page.wait_for_function(
                    LATEST_PAGE_SHOWN,
                    timeout=60_000,
                    polling="raf",
                )
                results[-1]["page"] = (time.perf_counter() - t0) * 1000
                await context.close()
            version = browser.version
            await browser.close()
    for r in results:
        assert r["shown"] == n and r["failed"] == 0, r
    keys_ = ("unlock", "sync", "render", "openOnly", "page")
    med = {k: statistics.median(r[k] for r in results) for k in keys_}
    # the spread: a shared machine's load moves single runs a lot
    lo = {k: min(r[k] for r in results) for k in keys_}
    hi = {k: max(r[k] for r in results) for k in keys_}

    def line(op: str, k: str, target: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"op": op, "ms": round(med[k], 1)}
        out.update(min_ms=round(lo[k], 1), max_ms=round(hi[k], 1))
        return out if target is None else {**out, "target_ms": target}

    machine = {
        "cpu": _cpu(),
        "cores": _cores(),
        "python": platform.python_version(),
        "loadavg_start": load_start,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    return [
        line("backup_unlock", "unlock", 1500),
        line("directory_sync", "sync"),
        line(f"decrypt_render_{n}", "render", 1000),
        line(f"open_only_{n}", "openOnly"),
        line("page_open_latest_100", "page", 1000),
        {"runs": runs, "chromium": version, **machine},
    ]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for line in asyncio.run(run(args.messages, args.runs)):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
