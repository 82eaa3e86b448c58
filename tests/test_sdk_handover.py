"""Portal-delivered invites: the client's handover to a fresh key and its 6-digit code.

The server relayed the invite secret ``R`` (docs/keys.md "Portal on / client
invited", delivery ``portal``), so the client registers a fresh identity
with an ``RTK1`` handover its invite key signs; staff compare the code by
phone, certify the fresh key, revoke the invite key and move the matter to
the next epoch. Driven through ``rtportal.sdk`` against a real server (SQLite,
or PostgreSQL + Redis). A server that used ``R`` to hand over to a key of
its own is caught by the codes: the one staff see is not the client's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rtportal import base64url
from rtportal.access.directory import primary_email
from rtportal.crypto.envelope import Body
from rtportal.crypto.errors import RecoveryInvalid
from rtportal.crypto.keys import IdentityKey
from rtportal.crypto.recovery import sas_code
from rtportal.db.models import KeyHandover
from rtportal.sdk import invitekeys, messages, records, sync
from rtportal.sdk.actor import Actor
from rtportal.sdk.client import Client, identity_public
from rtportal.sdk.errors import ApiError
from tests.conftest import MakeFirm
from tests.support.sdkworld import SdkWorld, opens_nothing_new, sdk_world, server_handover
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


async def portal_invite(w: SdkWorld, name: str) -> tuple[str, int, str, Client]:
    """A portal-delivered invite accepted by a new client: (matter, contact id, link, client)."""
    matter = await w.matter(f"{name}'s visa")
    contact = await w.contact(name, matter)
    [invited] = await w.staff.invite(
        matter.reference, [(contact.id, "Welcome", f"hello {name}")], delivery="portal"
    )
    assert invited.link is None  # the portal mails it, R in the fragment
    outbox = await w.admin.http.call("GET", "/api/v1/outbox")
    bodies = [m["body"] or "" for m in outbox["messages"] if m["invite_id"] == invited.invite_id]
    [link] = [x for b in bodies for x in re.findall(r"\S+#t=\S+", b)]
    client = await w.client(name.lower())
    await client.accept_invite(link, f"{name} password 1")
    return matter.reference, contact.id, link, client


async def invite_row(w: SdkWorld, ref: str, contact_id: int) -> dict[str, Any]:
    listed = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/invites")
    [row] = [r for r in listed["invites"] if r["contact"]["id"] == contact_id]
    assert isinstance(row, dict)
    return row


def shown_code(w: SdkWorld, row: dict[str, Any], user: str) -> str:
    """The code a staff browser computes from the handover the list shows."""
    public = sync.decode(row["handover"]["public_keys"])
    return sas_code(w.slug, user, identity_public(public))


async def test_portal_invite_hands_over_and_staff_confirm_the_code(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        ref, cid, link, client = await portal_invite(w, "Cleo")
        user = f"c{cid}"
        code = client.verification_code
        assert code is not None and re.fullmatch(r"[0-9]{3} [0-9]{3}", code)
        invite_key = client.actor.identity  # reads and writes until staff confirm
        fresh = client.actor.next
        assert fresh is not None and fresh.kid != invite_key.kid

        row = await invite_row(w, ref, cid)
        assert row["sent_by"] == "portal" and row["verified"] is False
        assert row["handover"]["public_keys"] == base64url.encode(fresh.public.record())
        assert shown_code(w, row, user) == code
        # the client reads the welcome and replies with the invite key meanwhile
        assert [i.body.text for i in await client.read(ref)] == ["hello Cleo"]
        await client.send(ref, thread=f"welcome-{cid}", text="before the call")

        # a wrong code certifies nothing
        wrong = f"{(int(code.replace(' ', '')) + 1) % 1_000_000:06d}"
        with pytest.raises(RecoveryInvalid):
            await w.staff.confirm_handover(ref, contact_id=cid, code=wrong)
        assert (await invite_row(w, ref, cid))["verified"] is False

        before = (await w.staff.sync([ref])).current_epoch(ref)
        await w.staff.confirm_handover(ref, contact_id=cid, code=code)
        assert (await invite_row(w, ref, cid))["verified"] is True
        assert (await w.staff.sync([ref])).current_epoch(ref) == before + 1

        # the client switches to the fresh key and still reads what came before
        texts = [i.body.text for i in await client.read(ref)]
        assert client.actor.kid == fresh.kid and client.verification_code is None
        assert texts == ["hello Cleo", "before the call"]
        await client.send(ref, thread=f"welcome-{cid}", text="after the call")
        await w.staff.send(ref, thread=f"welcome-{cid}", text="confirmed")
        assert [i.body.text for i in await w.staff.read(ref)][-2:] == [
            "after the call",
            "confirmed",
        ]
        assert [i.body.text for i in await client.read(ref)][-1] == "confirmed"

        # nothing new opens with the invite key (what anyone holding R could derive) ...
        await assert_invite_key_opens_nothing_new(w, ref, user, link)
        # ... and the server refuses its writes (revoked)
        stale = Actor(w.slug, user, invite_key)
        d = await client.sync([ref])
        env = messages.seal(
            d,
            stale,
            matter=ref,
            thread=f"welcome-{cid}",
            body=Body("", "with the old key"),
            now_ms=client.clock(),
        )
        with pytest.raises(ApiError) as refused:
            await client.http.send_events([messages.outgoing(ref, f"welcome-{cid}", env)])
        assert refused.value.server_code == "key_not_certified"
        # and a second handover signed with the revoked invite key is refused
        again, handover = invitekeys.hand_over(stale, now_ms=client.clock())
        body = {
            "public_keys": base64url.encode(again.public.record()),
            "handover": base64url.encode(handover.encode()),
            "login_secret": base64url.encode(client._kdf.keys(client._password).login_secret),  # type: ignore[union-attr,arg-type]
        }
        with pytest.raises(ApiError) as refused:
            await client.http.call("PUT", "/api/v1/keys/me", body)
        assert refused.value.server_code == "key_not_certified"

        # a new device: the backup holds the fresh key only; it reads from the new epoch
        async with kit.db.read() as session:
            email = await primary_email(session, cid)
        assert email is not None
        device = await w.client("cleo-device")
        await device.sign_in(email, "Cleo password 1")
        assert device.actor.kid == fresh.kid
        # (earlier epochs stay with the invite key on the first device: no history re-wraps)
        d = await device.sync([ref])
        page = await device.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
        newest = [e for e in page["events"] if e["kind"] == "message"][-1]
        item = messages.open_event(d, device.state.matter(ref), newest, device.clock())
        assert item is not None and item.body.text == "confirmed"


async def assert_invite_key_opens_nothing_new(w: SdkWorld, ref: str, user: str, link: str) -> None:
    """A reader holding only the key ``R`` determines sees no MEK of the new epoch."""
    secret = invitekeys.parse_accept_fragment(link)[1]
    await opens_nothing_new(w, ref, user, records.invite_identity(secret, w.slug, user))


async def test_a_server_that_used_r_is_caught_by_the_code(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """The server read R from the email it sent: it derives the invite key, makes a key
    of its own and hands over to it. The handover verifies (R signs it), but the code
    staff see is not the one the client reads out, so staff certify nothing."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        ref, cid, link, client = await portal_invite(w, "Dan")
        user = f"c{cid}"
        client_code = client.verification_code
        assert client_code is not None
        mine = await server_handover(w, user, link)
        row = await invite_row(w, ref, cid)
        assert row["verified"] is False
        staff_code = shown_code(w, row, user)
        assert sas_code(w.slug, user, client.actor.next.public) == client_code  # type: ignore[union-attr]
        assert staff_code != client_code
        with pytest.raises(RecoveryInvalid):
            await w.staff.confirm_handover(ref, contact_id=cid, code=client_code)
        row = await invite_row(w, ref, cid)
        assert row["verified"] is False
        async with kit.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(KeyHandover.new_kid).where(KeyHandover.firm_id == kit.firm_id)
                    )
                )
                .scalars()
                .all()
            )
        assert mine.public.kid in rows


async def test_the_directory_checks_a_handover(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """Refusals of ``PUT /keys/me {handover}``: staff, another key than registered, a key
    not certified, garbage, too large; each a stable code, nothing stored."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        ref, cid, link, client = await portal_invite(w, "Eve")
        user = f"c{cid}"
        secret = invitekeys.parse_accept_fragment(link)[1]
        invite = Actor(w.slug, user, records.invite_identity(secret, w.slug, user))
        fresh, handover = invitekeys.hand_over(invite, now_ms=client.clock())
        other = IdentityKey.generate()
        good = base64url.encode(handover.encode())

        async def put(who: Any, public: bytes, record: str) -> str:
            # with the caller's current login secret: each refusal is about the handover
            secret = who._kdf.keys(who._password).login_secret
            body = {
                "public_keys": base64url.encode(public),
                "handover": record,
                "login_secret": base64url.encode(secret),
            }
            with pytest.raises(ApiError) as refused:
                await who.http.call("PUT", "/api/v1/keys/me", body)
            return str(refused.value.server_code)

        assert await put(w.staff, fresh.public.record(), good) == "bad_request"
        assert await put(client, other.public.record(), good) == "bad_request"
        assert await put(client, fresh.public.record(), "AAAA") == "bad_request"
        assert await put(client, fresh.public.record(), "A" * 2000) in {
            "bad_request",
            "payload_too_large",
        }
        stranger = Actor(w.slug, user, other)
        _, unsigned = invitekeys.hand_over(stranger, now_ms=client.clock())
        code = await put(client, fresh.public.record(), base64url.encode(unsigned.encode()))
        assert code == "key_not_certified"
        async with kit.db.read() as session:
            stored = await session.execute(
                select(KeyHandover.id).where(KeyHandover.firm_id == kit.firm_id)
            )
        assert len(stored.scalars().all()) == 1  # the client's own, at acceptance
        row = await invite_row(w, ref, cid)
        assert row["handover"]["public_keys"] == base64url.encode(
            client.actor.next.public.record()  # type: ignore[union-attr]
        )
