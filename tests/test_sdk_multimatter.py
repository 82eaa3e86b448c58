"""A client with a password invited to a second matter of the same firm.

docs/keys.md "A second matter": the contact already has an identity key (in
their key backup, certified in the first matter). The second invite's key,
derived from that link's ``R``, reads the welcome and writes at once with no
staff member online, and signs a binding (an ``RTK1`` handover) naming the
contact's existing key; a staff member later certifies that key for the
second matter too (no code to compare: it is already the contact's certified
key), moves the matter to an epoch with it, re-wraps the history and revokes
the invite key. The first matter keeps working throughout, the backup keeps
the one identity, and a removal from one matter leaves the other readable.
Driven through ``rtportal.sdk`` against a real server (SQLite, or PostgreSQL +
Redis), for both deliveries of the second invite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from rtportal import base64url
from rtportal.access.credentials import credential_of
from rtportal.access.directory import primary_email
from rtportal.crypto.certs import CertBody, Flag, Role, issue
from rtportal.db.models import Firm, KeyCert, MatterApplicant
from rtportal.demo import create_matter
from rtportal.sdk import invitekeys, records
from rtportal.sdk.bindings import widened_certificate
from rtportal.sdk.client import Client, Invited
from rtportal.sdk.clientcore import now_ms
from rtportal.sdk.epochs import current_members
from rtportal.sdk.errors import ApiError
from rtportal.sdk.login import Kdf
from tests.conftest import MakeFirm
from tests.support.logins import give_password
from tests.support.sdkworld import SdkWorld, opens_nothing_new, sdk_world, server_handover
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


async def link_of(w: SdkWorld, invited: Invited) -> str:
    """own_mail: the link the staff client built; portal: the one in the outbox."""
    if invited.link is not None:
        return invited.link
    outbox = await w.admin.http.call("GET", "/api/v1/outbox")
    bodies = [m["body"] or "" for m in outbox["messages"] if m["invite_id"] == invited.invite_id]
    [link] = [x for b in bodies for x in re.findall(r"\S+#t=\S+", b)]
    return str(link)


async def texts(client: Client, ref: str) -> list[str]:
    return [i.body.text for i in await client.read(ref)]


@pytest.mark.parametrize("delivery", ["own_mail", "portal"])
async def test_second_matter_invite_accepted_with_the_existing_password(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path, delivery: str
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        visa = await w.matter("Visa")
        contact = await w.contact("Ines", visa)
        cid, password = contact.id, "Ines password 1"
        async with kit.db.read() as session:
            email = await primary_email(session, cid)
        assert email is not None
        [first] = await w.staff.invite(visa.reference, [(cid, "Welcome", "hello visa")])
        laptop = await w.client("ines-laptop")
        await laptop.accept_invite(await link_of(w, first), password)
        identity = laptop.actor.identity
        assert await texts(laptop, visa.reference) == ["hello visa"]

        mortgage = await w.matter("Mortgage")
        [second] = await w.staff.invite(
            mortgage.reference, [(cid, "Welcome", "hello mortgage")], delivery=delivery
        )
        await w.staff.send(mortgage.reference, thread=f"welcome-{cid}", text="history 1")

        # accepted on another device with the existing password, no staff member online
        phone = await w.client("ines-phone")
        await phone.accept_invite(await link_of(w, second), password)
        assert phone.actor.kid == identity.kid  # the backup's identity, not a new one
        assert phone.verification_code is None  # nothing to compare: a binding, not a new key
        assert await texts(phone, mortgage.reference) == ["hello mortgage", "history 1"]
        await phone.send(mortgage.reference, thread=f"welcome-{cid}", text="reply mortgage")
        # the first matter keeps working on both devices
        assert await texts(phone, visa.reference) == ["hello visa"]
        await laptop.send(visa.reference, thread=f"welcome-{cid}", text="reply visa")
        assert (await texts(w.staff, mortgage.reference))[-1] == "reply mortgage"
        assert (await texts(w.staff, visa.reference))[-1] == "reply visa"

        # the staff list shows the binding; a staff member certifies the existing key for the
        # second matter (no code), the next epoch holds it, the invite key is revoked
        await w.staff.confirm_bindings(mortgage.reference)
        listed = await w.staff.http.call("GET", f"/api/v1/matters/{mortgage.reference}/invites")
        [row] = [r for r in listed["invites"] if r["contact"]["id"] == cid]
        assert row["verified"] is True
        d = await w.staff.sync([mortgage.reference])
        members = current_members(d, mortgage.reference)
        assert [m.kid for m in members if m.user == f"c{cid}"] == [identity.kid]
        # a new device signs in with the password: one identity reads both matters' history
        tablet = await w.client("ines-tablet")
        await tablet.sign_in(email, password)
        assert tablet.actor.kid == identity.kid
        assert await texts(tablet, mortgage.reference) == [
            "hello mortgage",
            "history 1",
            "reply mortgage",
        ]
        assert await texts(tablet, visa.reference) == ["hello visa", "reply visa"]
        await tablet.send(mortgage.reference, thread=f"welcome-{cid}", text="from the tablet")
        assert (await texts(w.staff, mortgage.reference))[-1] == "from the tablet"
        # the phone switches to the certified identity for the second matter
        await phone.send(mortgage.reference, thread=f"welcome-{cid}", text="phone again")
        assert (await texts(w.staff, mortgage.reference))[-1] == "phone again"

        # removal from the second matter leaves the first readable and writable
        await w.staff.remove(mortgage.reference, invite_id=second.invite_id, contact_id=cid)
        await w.staff.send(mortgage.reference, thread=f"welcome-{cid}", text="after removal")
        with pytest.raises(ApiError) as gone:
            await tablet.read(mortgage.reference)
        assert gone.value.status == 404
        await tablet.send(visa.reference, thread=f"welcome-{cid}", text="still here")
        assert await texts(tablet, visa.reference) == ["hello visa", "reply visa", "still here"]
        assert (await texts(w.staff, visa.reference))[-1] == "still here"
        # what was sent after the removal does not open with the contact's key
        await opens_nothing_new(w, mortgage.reference, f"c{cid}", identity)


async def visa_client(w: SdkWorld, name: str) -> tuple[int, str, Client]:
    """A contact who accepted a first (visa) matter's invite: (contact id, ref, client)."""
    visa = await w.matter("Visa")
    contact = await w.contact(name, visa)
    [first] = await w.staff.invite(visa.reference, [(contact.id, "Welcome", "hello visa")])
    client = await w.client(name.lower())
    await client.accept_invite(await link_of(w, first), f"{name} password 1")
    return contact.id, visa.reference, client


async def test_acceptance_with_a_password_keeps_the_identity(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """A page that sends keys with an existing password is refused (``identity_exists``):
    the link is not used up, the credential keeps its identity and backup."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        cid, _, client = await visa_client(w, "Jon")
        mortgage = (await w.matter("Mortgage")).reference
        [second] = await w.staff.invite(mortgage, [(cid, "Welcome", "hello mortgage")])
        link = await link_of(w, second)
        token, secret, _ = invitekeys.parse_accept_fragment(link)
        async with kit.db.read() as session:
            before = await credential_of(session, "contact", cid)
        assert before is not None and before.key_backup is not None
        opened = await client.http.call("POST", "/api/v1/invites/open", {"token": token})
        assert opened["has_password"] is True
        keys = Kdf.from_json(opened["kdf"]).keys("Jon password 1")
        other = records.invite_identity(secret, w.slug, f"c{cid}")
        body = {
            "token": token,
            "login_secret": base64url.encode(keys.login_secret),
            "public_keys": base64url.encode(other.public.record()),
        }
        fresh = await w.client("jon-other")
        with pytest.raises(ApiError) as refused:
            await fresh.http.call("POST", "/api/v1/invites/accept", body)
        assert refused.value.server_code == "bad_request"
        assert refused.value.details.get("reason") == "identity_exists"
        async with kit.db.read() as session:
            after = await credential_of(session, "contact", cid)
        assert after is not None
        assert (after.public_keys, after.key_backup) == (before.public_keys, before.key_backup)
        # the link still works, the ordinary way
        await fresh.accept_invite(link, "Jon password 1")
        assert await texts(fresh, mortgage) == ["hello mortgage"]
        assert fresh.actor.kid == client.actor.kid


async def test_a_handover_to_another_key_is_no_binding(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """A server that knew the second link's ``R`` (portal delivery) stores a handover of
    its own naming a key it made: that key is certified nowhere, so no staff client
    confirms it without a code; the matter stays on the invite key, and the client's
    identity is not certified there."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        cid, _, _ = await visa_client(w, "Kim")
        user = f"c{cid}"
        mortgage = (await w.matter("Mortgage")).reference
        [second] = await w.staff.invite(
            mortgage, [(cid, "Welcome", "hello mortgage")], delivery="portal"
        )
        link = await link_of(w, second)
        phone = await w.client("kim-phone")
        await phone.accept_invite(link, "Kim password 1")
        await server_handover(w, user, link)
        invite_key = records.invite_identity(
            invitekeys.parse_accept_fragment(link)[1], w.slug, user
        )
        listed = await w.staff.http.call("GET", f"/api/v1/matters/{mortgage}/invites")
        [row] = [r for r in listed["invites"] if r["contact"]["id"] == cid]
        assert row["handover"]["certified_in"] == [] and row["verified"] is False
        assert await w.staff.confirm_bindings(mortgage) == []
        d = await w.staff.sync([mortgage])
        assert [m.kid for m in current_members(d, mortgage) if m.user == user] == [invite_key.kid]
        # the client still reads and writes with the invite key meanwhile
        await phone.send(mortgage, thread=f"welcome-{cid}", text="still the invite key")
        assert (await texts(w.staff, mortgage))[-1] == "still the invite key"


async def test_a_held_scope_is_no_licence_to_certify(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """A scope a client key already holds is taken as is only when a certificate widens it
    for a matter the caller manages: a staff member who manages none of a certificate's
    matters may not re-issue a client's key (a higher serial replaces it in every verifier),
    and a manager of one matter may not narrow the key out of another (the contact's key
    would stop verifying there)."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        async with kit.db.write() as session:
            firm = await session.get(Firm, kit.firm_id)
            assert firm is not None
            # the org admin's matter: the staff member has no role in it
            audit = await create_matter(session, firm, title="Audit", responsible=kit.admin)
        contact = await w.contact("Lea", audit)
        [invited] = await w.admin.invite(audit.reference, [(contact.id, "Welcome", "hello")])
        client = await w.client("lea")
        await client.accept_invite(await link_of(w, invited), "Lea password 1")
        user, kid = f"c{contact.id}", client.actor.kid
        d = await w.admin.sync([audit.reference])
        held = d.certificate(user, kid, now_ms())
        assert held.scopes == (audit.reference,)

        # re-issued by a staff member who manages no matter of it: refused
        again = widened_certificate(w.staff.actor, held, audit.reference, now_ms())
        with pytest.raises(ApiError) as refused:
            await w.staff.http.call(
                "POST", "/api/v1/keys/certs", {"certs": [base64url.encode(again.encode())]}
            )
        assert refused.value.status == 403

        # a manager of the staff member's own matter narrows the key out of the audit: refused
        visa = await w.matter("Visa")
        async with kit.db.write() as session:
            await session.execute(
                insert(MatterApplicant).values(matter_id=visa.id, contact_id=contact.id)
            )
        body = CertBody(
            w.slug, Role.CLIENT, user, held.public.x_pk, held.public.ed_pk,
            held.serial + 1, now_ms(), 0, Flag(0), (visa.reference,),
            w.staff.actor.uid, w.staff.actor.kid,
        )  # fmt: skip
        narrowed = issue(body, w.staff.actor.identity)
        with pytest.raises(ApiError) as refused:
            await w.staff.http.call(
                "POST", "/api/v1/keys/certs", {"certs": [base64url.encode(narrowed.encode())]}
            )
        assert refused.value.status == 403
        async with kit.db.read() as session:
            scopes = (
                await session.scalars(
                    select(KeyCert.scopes).where(KeyCert.principal == user, KeyCert.kid == kid)
                )
            ).all()
        assert scopes == [audit.reference]

        # the manager of the visa matter widens the key to it (the audit kept, not checked),
        # and may certify it again with the same scopes (a re-invite binding to the key)
        for serial in (held.serial + 2, held.serial + 3):
            body = CertBody(
                w.slug, Role.CLIENT, user, held.public.x_pk, held.public.ed_pk,
                serial, now_ms(), 0, Flag(0), tuple(sorted((audit.reference, visa.reference))),
                w.staff.actor.uid, w.staff.actor.kid,
            )  # fmt: skip
            widened = issue(body, w.staff.actor.identity)
            await w.staff.http.call(
                "POST", "/api/v1/keys/certs", {"certs": [base64url.encode(widened.encode())]}
            )


async def test_a_binding_revokes_the_invite_key_before_the_epoch_that_drops_it(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """The handover order (docs/keys.md): the invite key's revocation is posted before the
    epoch without it, as the staff page's binding does, so a flow cut short after the
    epoch never leaves the link's key certified and unrevoked."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        cid, _, _ = await visa_client(w, "Ada")
        mortgage = (await w.matter("Mortgage")).reference
        [second] = await w.staff.invite(mortgage, [(cid, "Welcome", "hello mortgage")])
        await w.staff.send(mortgage, thread=f"welcome-{cid}", text="history 1")
        phone = await w.client("ada-phone")
        await phone.accept_invite(await link_of(w, second), "Ada password 1")
        sent: list[str] = []
        real = w.staff.http.call

        async def recorded(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            if method == "POST":
                sent.append(path.rsplit("/", 1)[-1])
            return await real(method, path, *args, **kwargs)

        w.staff.http.call = recorded  # type: ignore[method-assign]
        assert await w.staff.confirm_bindings(mortgage) == [cid]
        assert sent == ["certs", "client-revocations", "epochs", "wraps"]


async def invited_with_old_password(w: SdkWorld, password: str) -> tuple[str, int, Invited]:
    """A contact given a password before the firm's keys (no identity, no backup), then
    invited to a new matter with portal delivery: (matter ref, contact id, invite)."""
    matter = await w.matter("Visa")
    contact = await w.contact("Noa", matter)
    async with w.kit.db.read() as session:
        email = await primary_email(session, contact.id)
    assert email is not None
    await give_password(w.kit.db, w.kit.settings, contact, email, password)
    [invited] = await w.staff.invite(
        matter.reference, [(contact.id, "Welcome", "hello visa")], delivery="portal"
    )
    return matter.reference, contact.id, invited


async def handed_over(w: SdkWorld, ref: str, contact_id: int, link: str) -> None:
    """The contact's identity is not the link's invite key, and staff see a handover of it
    waiting for its code."""
    invite_key = records.invite_identity(
        invitekeys.parse_accept_fragment(link)[1], w.slug, f"c{contact_id}"
    )
    async with w.kit.db.read() as session:
        credential = await credential_of(session, "contact", contact_id)
    assert credential is not None and credential.key_backup is not None
    assert credential.public_keys != invite_key.public.record()
    listed = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/invites")
    [row] = [r for r in listed["invites"] if r["contact"]["id"] == contact_id]
    assert row["handover"] is not None and row["verified"] is False
    assert row["handover"]["kid"] != base64url.encode(invite_key.kid)


async def test_a_password_from_before_the_keys_hands_a_portal_invite_key_over(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    """A contact whose password predates the firm's keys (no identity, no backup) accepts a
    portal-delivered invite: the server mailed ``R``, so the invite key cannot become the
    identity as it is (the server would read the matter, and every later matter bound to
    it, for good). The client hands over to a fresh key with a code to compare, as a
    first acceptance of a portal invite does."""
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        ref, cid, invited = await invited_with_old_password(w, "Noa password 1")
        link = await link_of(w, invited)
        client = await w.client("noa")
        await client.accept_invite(link, "Noa password 1")
        assert client.verification_code is not None
        await handed_over(w, ref, cid, link)
