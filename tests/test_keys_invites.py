"""Invite rounds of an end-to-end encrypted firm (docs/keys.md "Portal on / client
invited"): the crypto object is required, the welcome item is the staff
browser's envelope, ``own_mail`` sends nothing and answers the link token,
``portal`` puts R into the sent link's fragment and nowhere else."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
from sqlalchemy import select

from rtportal.base64url import encode
from rtportal.crypto.certs import Role
from rtportal.crypto.keys import IdentityKey
from rtportal.db.models import Credential, Event, Invite, OutboxMessage
from tests.conftest import MakeFirm
from tests.support.invites import acceptance, login_secret
from tests.support.keyfirm import KeyFirm, b64, key_firm


async def _new_contact(kf: KeyFirm, name: str = "Nina New") -> int:
    body = {"name": name, "emails": [f"nina.{os.urandom(4).hex()}@client.test"]}
    response = await kf.http.post("/api/v1/contacts", json=body, headers=kf.kit.auth("staff"))
    assert response.status_code == 201, response.text
    contact_id: int = response.json()["contact"]["id"]
    return contact_id


def _round(contact_id: int) -> dict[str, Any]:
    return {"invites": [{"contact_id": contact_id, "method": "email", "see_applicants": True}]}


def _crypto(kf: KeyFirm, contact_id: int, delivery: str) -> tuple[dict[str, Any], bytes]:
    """What the staff browser posts: the contact's key from a fresh R, its
    certificate, the next epoch with it, the welcome envelope (and R for ``portal``)."""
    secret = os.urandom(32)
    user = f"c{contact_id}"
    key = IdentityKey.from_invite_secret(secret, kf.slug, user)
    kf.world.add_user(user, Role.CLIENT, scopes=(kf.ref,), issuer=kf.staff, key=key)
    manifest, epoch = kf.epoch_body((kf.contact, user))
    welcome = kf.seal(kf.staff, thread=f"welcome-{contact_id}").encode()
    crypto: dict[str, Any] = {
        "delivery": delivery,
        "certs": [kf.cert_of(user)],
        "epoch": epoch,
        "welcome": {str(contact_id): b64(welcome)},
    }
    if delivery == "portal":
        crypto["secrets"] = {str(contact_id): encode(secret)}
    assert manifest.body.epoch >= 1
    return crypto, secret


async def _invite(kf: KeyFirm, body: dict[str, Any]) -> httpx.Response:
    return await kf.http.post(
        f"/api/v1/matters/{kf.ref}/invites", json=body, headers=kf.kit.auth("staff")
    )


async def test_an_encrypted_firm_needs_the_crypto_object(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    response = await _invite(kf, _round(cid))
    assert response.status_code == 409 and response.json()["error"]["code"] == "e2ee_required"
    crypto, _ = _crypto(kf, cid, "own_mail")
    # One welcome per contact; secrets only for portal delivery.
    bad = {**crypto, "welcome": {}}
    assert (await _invite(kf, {**_round(cid), "crypto": bad})).status_code == 400
    bad = {**crypto, "secrets": {str(cid): encode(os.urandom(32))}}
    assert (await _invite(kf, {**_round(cid), "crypto": bad})).status_code == 400
    bad = {**crypto, "delivery": "pigeon"}
    assert (await _invite(kf, {**_round(cid), "crypto": bad})).status_code == 400
    # Nothing of the refused rounds was kept: the epoch is still free.
    ok = await _invite(kf, {**_round(cid), "crypto": crypto})
    assert ok.status_code == 201, ok.text


async def test_a_firm_without_keys_refuses_crypto(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http, set_up=False)
    cid = await _new_contact(kf)
    malformed = {**_round(cid), "crypto": {"delivery": "own_mail", "epoch": {}, "welcome": {}}}
    assert (await _invite(kf, malformed)).status_code == 400
    epoch = {"manifest": "AAAA", "head": "AAAA"}
    crypto = {"delivery": "own_mail", "epoch": epoch, "welcome": {str(cid): "AAAA"}}
    response = await _invite(kf, {**_round(cid), "crypto": crypto})
    assert response.status_code == 409 and response.json()["error"]["code"] == "frk_missing"
    assert (await _invite(kf, _round(cid))).status_code == 201  # a round without crypto


async def test_own_mail_sends_nothing_and_answers_the_token(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    crypto, secret = _crypto(kf, cid, "own_mail")
    response = await _invite(kf, {**_round(cid), "crypto": crypto})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["delivery"] == "own_mail"
    (link,) = answer["links"]
    assert link["contact_id"] == cid and link["url"].endswith(f"?firm={kf.slug}")
    async with kf.kit.db.read() as session:
        invite = await session.get(Invite, link["invite"])
        assert invite is not None and invite.delivery == "own_mail"
        sent = await session.execute(
            select(OutboxMessage).where(OutboxMessage.invite_id == invite.id)
        )
        assert list(sent.scalars()) == []
        welcome = await session.scalar(
            select(Event).where(Event.matter_id == kf.kit.matter.id, Event.kind == "welcome")
        )
        assert welcome is not None and welcome.blob is not None
        assert json.loads(welcome.payload) == {"thread": f"welcome-{cid}", "to": [cid]}
    # The client accepts with its identity and backup, kept with its password.
    key = IdentityKey.from_invite_secret(secret, kf.slug, f"c{cid}")
    body = acceptance(link["token"], login_secret())
    body |= {"public_keys": b64(key.public.record()), "key_backup": b64(b"RTBH" + os.urandom(60))}
    accepted = await http.post("/api/v1/invites/accept", json=body)
    assert accepted.status_code == 201, accepted.text
    async with kf.kit.db.read() as session:
        credential = await session.scalar(
            select(Credential).where(
                Credential.principal_kind == "contact", Credential.principal_id == cid
            )
        )
        assert credential is not None and credential.public_keys == key.public.record()
    # Its directory: the new epoch's wrap addressed to it.
    cookie = {"Cookie": f"rtp_session={accepted.cookies['rtp_session']}"}
    http.cookies.clear()
    matter = await http.get(f"/api/v1/keys/matters/{kf.ref}", headers=cookie)
    assert matter.status_code == 200 and len(matter.json()["wraps"]) == 1
    # Its welcome item: the envelope, nothing in clear.
    events = await http.get(f"/api/v1/matters/{kf.ref}/events", headers=cookie)
    (item,) = [e for e in events.json()["events"] if e["kind"] == "welcome"]
    assert item["payload"] == {"thread": f"welcome-{cid}", "to": [cid]}
    assert item["blob"] == crypto["welcome"][str(cid)]


async def test_portal_delivery_puts_r_in_the_fragment_only(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    crypto, secret = _crypto(kf, cid, "portal")
    response = await _invite(kf, {**_round(cid), "crypto": crypto})
    assert response.status_code == 201, response.text
    assert response.json()["links"] == []
    r = encode(secret)
    async with kf.kit.db.read() as session:
        rows = await session.execute(
            select(OutboxMessage).where(OutboxMessage.firm_id == kf.kit.firm_id)
        )
        (message,) = rows.scalars()
        assert message.body is not None
        found = re.search(
            r"#t=([A-Za-z0-9_-]{43})&r=([A-Za-z0-9_-]{43})&frk=([A-Za-z0-9_-]{43})", message.body
        )
        assert found is not None and found.group(2) == r
        assert found.group(3) == kf.world.frk.public.link
        events = await session.execute(select(Event).where(Event.matter_id == kf.kit.matter.id))
        assert all(r not in e.payload for e in events.scalars())
    accepted = await http.post(
        "/api/v1/invites/accept", json=acceptance(found.group(1), login_secret())
    )
    assert accepted.status_code == 201, accepted.text
    http.cookies.clear()
    async with kf.kit.db.read() as session:
        forgotten = await session.get(OutboxMessage, message.id)
        assert forgotten is not None and forgotten.body is None  # R is gone with the used link


async def test_resend_in_an_encrypted_firm_needs_its_crypto(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    crypto, _ = _crypto(kf, cid, "own_mail")
    (invite_id,) = (await _invite(kf, {**_round(cid), "crypto": crypto})).json()["invites"]
    response = await http.post(
        f"/api/v1/invites/{invite_id}/resend", json={}, headers=kf.kit.auth("staff")
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "e2ee_required"


async def test_a_malformed_epoch_wrap_is_refused_naming_its_field_in_a_round_and_a_resend(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    crypto, _ = _crypto(kf, cid, "own_mail")
    bad_epoch = {**crypto["epoch"], "wraps": "not a list"}
    refused = await _invite(kf, {**_round(cid), "crypto": {**crypto, "epoch": bad_epoch}})
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["field"] == "crypto.epoch.wraps"
    (invite_id,) = (await _invite(kf, {**_round(cid), "crypto": crypto})).json()["invites"]
    relink = {"delivery": "own_mail", "certs": [], "epoch": bad_epoch, "revocations": []}
    refused = await http.post(
        f"/api/v1/invites/{invite_id}/resend",
        json={"crypto": relink},
        headers=kf.kit.auth("staff"),
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["field"] == "crypto.epoch.wraps"


async def test_acceptance_refuses_a_bad_identity(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    cid = await _new_contact(kf)
    crypto, _ = _crypto(kf, cid, "own_mail")
    (link,) = (await _invite(kf, {**_round(cid), "crypto": crypto})).json()["links"]
    body = acceptance(link["token"], login_secret()) | {"public_keys": b64(os.urandom(72))}
    response = await http.post("/api/v1/invites/accept", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    big = acceptance(link["token"], login_secret()) | {"key_backup": b64(os.urandom(9000))}
    response = await http.post("/api/v1/invites/accept", json=big)
    assert response.status_code == 413
