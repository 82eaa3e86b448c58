"""A firm whose keys are set up through the Python client, against a real server.

``sdk_world`` gives: the running server, the firm kit, the FRK, the org
admin's and a staff member's signed-in ``Client`` (identity registered,
the staff key approved by the admin with the FRK), and helpers to make a
fresh client (a new device), a new contact with an email address, and a
contact invited and accepted on a device of their own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyotp
import pytest

from rtportal.access.credentials import credential_of
from rtportal.access.totp import start_enrolment
from rtportal.crypto.errors import WrongContext
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.crypto.recovery import HandoverBody, sign_handover
from rtportal.db.models import Firm, KeyHandover, Matter, utcnow
from rtportal.demo import create_contact, create_matter
from rtportal.events.unit import Unit
from rtportal.principal import Principal
from rtportal.sdk import invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.client import Client
from rtportal.sdk.state import TrustState
from rtportal.sdk.transport import Http
from tests.conftest import FirmKit
from tests.support.logins import firm_slug, give_password, staff_email
from tests.support.server import RunningServer

__all__ = ["Accepted", "SdkWorld", "opens_nothing_new", "sdk_world", "server_handover"]


class Accepted(NamedTuple):
    """A client who accepted an invite: their contact, the invite, their device, the link."""

    contact: Principal
    invite_id: int
    client: Client
    link: str


@dataclass
class SdkWorld:
    server: RunningServer
    kit: FirmKit
    slug: str
    frk: FirmRootKey
    admin: Client
    staff: Client
    passwords: dict[str, str]
    state_root: Path
    totp_secret: str = ""
    _open: list[Http] = field(default_factory=list)

    async def client(self, name: str) -> Client:
        """A new ``Client`` with a state directory of its own (a device)."""
        http = Http(self.server.base_url, origin=self.server.origin)
        self._open.append(http)
        state_dir = self.state_root / f"{name}-{secrets.token_hex(3)}"
        state_dir.mkdir(mode=0o700)
        return Client(http, firm=self.slug, state_dir=state_dir)

    async def contact(self, name: str, matter: Matter) -> Principal:
        email = f"{name.lower()}.{secrets.token_hex(3)}@client.test"
        async with self.kit.db.write() as session:
            firm = await session.get(Firm, self.kit.firm_id)
            assert firm is not None
            return await create_contact(session, firm, display_name=name, email=email)

    async def accepted(
        self, matter: Matter, name: str, welcome: tuple[str, str], password: str
    ) -> Accepted:
        """A new contact invited by the staff member (own mail: the link comes back to the
        caller, the server never sees its secret) and accepted on a new device."""
        contact = await self.contact(name, matter)
        [invited] = await self.staff.invite(matter.reference, [(contact.id, *welcome)])
        assert invited.link is not None and "#t=" in invited.link
        # Built on the client's own base URL (the server's ``url`` is not used).
        base = self.server.base_url.rstrip("/")
        assert invited.link.startswith(f"{base}/?firm={self.slug}#t=")
        client = await self.client(name)
        await client.accept_invite(invited.link, password)
        return Accepted(contact, invited.invite_id, client, invited.link)

    async def stored_anyway(
        self, matter: Matter, actor: Principal, thread: str, blob: bytes
    ) -> None:
        """A message appended behind the server's checks, as a server that stores what
        it should refuse would: what readers alone must catch."""
        async with Unit(self.kit.db, None) as unit:
            row = await unit.session.get(Matter, matter.id)
            assert row is not None
            await unit.append(
                matter=row,
                actor=actor,
                kind="message",
                audience="portal",
                payload={"thread": thread},
                blob=blob,
            )

    async def matter(self, title: str) -> Matter:
        async with self.kit.db.write() as session:
            firm = await session.get(Firm, self.kit.firm_id)
            assert firm is not None
            return await create_matter(session, firm, title=title, responsible=self.kit.staff)


async def _totp(kit: FirmKit, principal: Principal) -> str:
    """Enrol ``principal``'s authenticator directly (org admins need one); its secret."""
    async with kit.db.write() as session:
        credential = await credential_of(session, principal.kind, principal.id)
        assert credential is not None
        enrolment = await start_enrolment(session, kit.settings, credential)
        credential.totp_enabled_at = utcnow()
    return enrolment.secret


async def opens_nothing_new(w: SdkWorld, ref: str, user: str, key: IdentityKey) -> None:
    """A reader holding only ``key`` gets no MEK of the matter's newest epoch: the staff
    member's answer verifies for it, and the newest message does not open."""
    holder = Actor(w.slug, user, key)
    firm = await w.staff.http.call("GET", "/api/v1/keys/firm")
    data = await w.staff.http.call("GET", f"/api/v1/keys/matters/{ref}")
    now = w.staff.clock()
    state = TrustState(w.slug, user, frk_fingerprint=w.frk.public.fingerprint)
    d = sync.verify_firm(firm, state, holder, now)
    # the staff member's answer has wraps to the escrow key only; the holder's are what
    # ``key`` could open: every wrap to it is of an earlier epoch
    sync.verify_matter(d, data, state, holder, ref, now)
    page = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
    newest = [e for e in page["events"] if e["kind"] == "message"][-1]
    with pytest.raises(WrongContext):
        messages.open_event(d, state.matter(ref), newest, now)


async def server_handover(w: SdkWorld, user: str, link: str) -> IdentityKey:
    """What a server that kept the link's ``R`` (portal delivery) can do: derive the invite
    key, make a key of its own, sign a valid handover to it and store that row itself.
    Returns the server's key."""
    secret = invitekeys.parse_accept_fragment(link)[1]
    invite_key = records.invite_identity(secret, w.slug, user)
    mine = IdentityKey.generate()
    forged = sign_handover(
        HandoverBody(w.slug, user, invite_key.kid, mine.public, w.staff.clock()), invite_key
    )
    async with w.kit.db.write() as session:
        session.add(
            KeyHandover(
                firm_id=w.kit.firm_id,
                principal=user,
                old_kid=invite_key.kid,
                new_kid=mine.public.kid,
                public_keys=mine.public.record(),
                record=forged.encode(),
            )
        )
    return mine


@asynccontextmanager
async def sdk_world(
    server: RunningServer, kit: FirmKit, state_root: Path
) -> AsyncIterator[SdkWorld]:
    slug = await firm_slug(kit.db, kit.firm_id)
    passwords = {
        "admin": "admin pw " + secrets.token_hex(6),
        "staff": "staff pw " + secrets.token_hex(6),
    }
    emails = {}
    for who, principal in (("admin", kit.admin), ("staff", kit.staff)):
        emails[who] = await staff_email(kit.db, principal.id)
        await give_password(kit.db, kit.settings, principal, emails[who], passwords[who])
    secret = await _totp(kit, kit.admin)
    frk = FirmRootKey.generate()
    world = SdkWorld(server, kit, slug, frk, None, None, passwords, state_root, secret)  # type: ignore[arg-type]
    try:
        world.admin = await world.client("admin")
        await world.admin.sign_in(
            emails["admin"], passwords["admin"], totp=pyotp.TOTP(secret).now()
        )
        await world.admin.set_up_firm(frk)
        world.staff = await world.client("staff")
        await world.staff.sign_in(emails["staff"], passwords["staff"])
        await world.staff.register_identity(frk_fingerprint=frk.public.fingerprint)
        assert await world.admin.approve_pending(frk) == [f"s{kit.staff.id}"]
        await world.staff.sync()  # picks up the firm keys wrapped to the new certificate
        yield world
    finally:
        for http in world._open:
            await http.aclose()
