"""The demo matter's portal: keys, invite and conversation, made through ``rtportal.sdk``.

The demo seed runs the app in-process and drives it with ``rtportal.sdk``
over API tokens, exactly as a firm would: the org admin sets up the firm's
keys with a root key file kept in the data directory (owner-only, so the
demo admin can approve staff later), the demo staff register identity keys
whose backups open with their printed password, the demo client is invited
and accepts with her printed password, and the sample conversation is
encrypted. Nothing of it is stored in plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from rtportal.datafiles import private_dir
from rtportal.sdk.client import Client
from rtportal.sdk.keyfile import init_key_file, read_key_file
from rtportal.sdk.transport import Http
from rtportal.settings import Settings

__all__ = ["DEMO_CLIENT_PASSWORD", "DemoKeyUser", "frk_path", "seed_portal"]

# Printed by `rtportal serve --demo`: a demo-only account, never a real one.
DEMO_CLIENT_PASSWORD = "harbour-demo-client"  # noqa: S105

DEMO_BASE = "http://demo.invalid"  # in-process: the app answers through httpx's ASGI transport


@dataclass(frozen=True, slots=True)
class DemoKeyUser:
    email: str
    token: str  # an API token of the user
    password: str


def frk_path(settings: Settings) -> Path:
    return settings.data_dir / "demo-frk.key"


async def seed_portal(
    settings: Settings,
    *,
    firm: str,
    matter: str,
    admin: DemoKeyUser,
    staff: DemoKeyUser,
    client_contact_id: int,
    client_password: str = DEMO_CLIENT_PASSWORD,
) -> None:
    """Set up the demo firm's keys, invite the demo client (she accepts with her printed
    password) and write the encrypted sample conversation; once."""
    from rtportal.app import create_app  # the app sits beside the demo, not below it

    private_dir(settings.data_dir)
    state_dir = settings.data_dir / "demo-keys"
    private_dir(state_dir)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        opened: list[Http] = []

        def person(token: str | None) -> Client:
            http = Http(DEMO_BASE, token=token, transport=transport)
            opened.append(http)
            c = Client(http, firm=firm, state_dir=state_dir)
            c.websocket = False  # in-process: the events go over HTTP (checked alike)
            return c

        try:
            boss = person(admin.token)
            await boss.use_token(admin.email, admin.password)
            if (await boss.http.call("GET", "/api/v1/keys/firm")).get("frk") is not None:
                return  # seeded on an earlier start
            path = frk_path(settings)
            frk = read_key_file(path, firm=firm)[1] if path.exists() else init_key_file(path, firm)
            await boss.set_up_firm(frk)
            sam = person(staff.token)
            await sam.use_token(staff.email, staff.password)
            await sam.register_identity(frk_fingerprint=frk.public.fingerprint)
            await boss.approve_pending(frk)
            [invited] = await boss.invite(
                matter, [(client_contact_id, "Welcome to your secure portal", WELCOME_TEXT)]
            )
            assert invited.link is not None
            amira = person(None)
            await amira.accept_invite(invited.link, client_password)
            thread = f"welcome-{client_contact_id}"
            await boss.send(
                matter,
                thread="documents",
                subject="Documents we need",
                text=DOCS_TEXT,
                to=[client_contact_id],
            )
            await amira.send(matter, thread=thread, text=REPLY_TEXT)
            await sam.send(matter, thread=thread, text=NOTE_TEXT, staff_only=True)
        finally:
            for http in opened:
                await http.aclose()


WELCOME_TEXT = (
    "Dear Amira, welcome to the Harbour & Finch secure client portal. Everything you write"
    " here is end-to-end encrypted: only you and our team can read it."
)
DOCS_TEXT = "Please upload a certified copy of your passport and your skills assessment."
NOTE_TEXT = "Client prefers phone calls before 5pm"
REPLY_TEXT = "Thank you! I will upload my passport today."
