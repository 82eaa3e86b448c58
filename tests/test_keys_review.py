"""The key directory's and the Python client's guards against a hostile user:
who may change a matter's membership (``portal.manage``), which clients a
manifest may name (live members or pending invitees), writes refused until
a removed client's epoch is replaced (``rekey_required``), ``PUT /keys/me``
only with the current login secret and a backup of the caller, own-mail
links built on the client's base URL, and the invite round's access check
before its body is read."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from rtportal.access.credentials import Kdf, set_login
from rtportal.access.directory import link_applicant
from rtportal.access.sessions import issue_token
from rtportal.crypto.backup import Argon2Params, BackupContents, create_backup
from rtportal.crypto.certs import Flag, Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.db.models import Contact, Firm, Invite, MatterMember, utcnow
from rtportal.demo import create_contact, create_staff
from rtportal.http.keys import REAUTH_LIMIT
from rtportal.sdk.client import Client
from rtportal.sdk.transport import Http
from tests.conftest import MakeFirm
from tests.support.crypto.world import NOW_MS
from tests.support.keyfirm import KeyFirm, b64, key_firm, uid


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


async def _post_message(kf: KeyFirm, who: str, blob: bytes) -> httpx.Response:
    body = {
        "kind": "message",
        "audience": "portal",
        "client_id": secrets.token_hex(6),  # an item needs its send's id (docs/threads.md)
        "payload": {"thread": "t1", "to": [kf.kit.contact.id]},  # a staff thread names its client
        "blob": b64(blob),
    }
    return await kf.http.post(
        f"/api/v1/matters/{kf.ref}/events", json=body, headers=kf.kit.auth(who)
    )


async def _try_epoch(kf: KeyFirm, who: str, members: tuple[str, ...], creator: str) -> Any:
    """Post the next epoch; the test world's chain moves on only when it is stored."""
    chain = kf.world.chains[kf.ref]
    saved = (chain.epoch, chain.last_hash)
    _, body = kf.epoch_body(members, creator=creator)
    response = await kf.call("POST", f"/matters/{kf.ref}/epochs", who, body)
    if response.status_code != 201:
        chain.epoch, chain.last_hash = saved
    return response


async def _plain_staff(kf: KeyFirm) -> str:
    """A certified staff member of the firm who is not responsible for the matter."""
    async with kf.kit.db.write() as session:
        firm = await session.get(Firm, kf.kit.firm_id)
        assert firm is not None
        plain = await create_staff(
            session, firm, email=f"plain{os.urandom(3).hex()}@firm.test", display_name="Pat"
        )
        kf.kit.tokens["plain"] = await issue_token(
            session,
            kf.kit.settings.secret_key,
            "staff",
            plain.id,
            label="test",
            ttl=timedelta(hours=1),
        )
    key = IdentityKey.generate()
    await kf.register("plain", plain, key)
    user = uid(plain)
    kf.world.add_user(user, Role.STAFF, flags=Flag.CERTIFY_CLIENTS, key=key)
    await kf.call("POST", "/certs", "admin", {"certs": [kf.cert_of(user)]}, 201)
    return user


async def test_epochs_and_wraps_need_portal_manage_a_head_refresh_does_not(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    first = await kf.post_epoch()
    plain = await _plain_staff(kf)
    # A staff member who may not invite here may not drop (lock out) the client either.
    error = _error(await _try_epoch(kf, "plain", (), plain), 403, "forbidden")
    assert "portal.manage" in error["message"]
    _, body = kf.epoch_body((kf.contact,), creator=plain)
    _error(
        await kf.call("POST", f"/matters/{kf.ref}/wraps", "plain", {"wraps": body["wraps"]}),
        403,
        "forbidden",
    )
    # Not even a body is read first: garbage gets the same 403.
    _error(await kf.call("POST", f"/matters/{kf.ref}/epochs", "plain", {"x": 1}), 403, "forbidden")
    # A head refresh of the current epoch changes no membership: any staff member.
    head = {"head": b64(kf.head(first, signer=plain, ts_ms=NOW_MS + 1000))}
    assert (await kf.call("PUT", f"/matters/{kf.ref}/head", "plain", head, 200)).json()[
        "epoch"
    ] == 1
    # The responsible staff member and an org admin may.
    chain = kf.world.chains[kf.ref]
    chain.epoch, chain.last_hash = 1, first.body.hash
    assert (await _try_epoch(kf, "admin", (kf.contact,), kf.admin)).status_code == 201


async def test_a_manifest_names_only_live_clients(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    await kf.post_epoch()
    # A pending invitee counts (invited, not yet accepted): a second client, certified.
    async with kf.kit.db.write() as session:
        firm = await session.get(Firm, kf.kit.firm_id)
        assert firm is not None
        other = await create_contact(session, firm, display_name="Otto Other")
        row = await session.get(Contact, other.id)
        assert row is not None
        await link_applicant(session, kf.kit.matter, row)
        session.add(
            Invite(
                firm_id=firm.id,
                matter_id=kf.kit.matter.id,
                contact_id=other.id,
                method="email",
                status="pending",
                subject="s",
                body="b",
                created_by=kf.kit.staff.id,
            )
        )
    other_uid = uid(other)
    kf.world.add_user(other_uid, Role.CLIENT, scopes=(kf.ref,), issuer=kf.staff)
    await kf.call("POST", "/certs", "staff", {"certs": [kf.cert_of(other_uid)]}, 201)
    response = await _try_epoch(kf, "staff", (kf.contact, other_uid), kf.staff)
    assert response.status_code == 201, response.text
    # Removed: no epoch may name them again, not even the responsible staff member's.
    await kf.kit.remove_member(kf.kit.contact)
    error = _error(
        await _try_epoch(kf, "staff", (kf.contact, other_uid), kf.staff), 400, "bad_request"
    )
    assert error["details"]["reason"] == "not_a_member"
    assert error["details"]["users"] == [kf.contact]
    # Their invite withdrawn: the pending invitee is no longer live either.
    async with kf.kit.db.write() as session:
        await session.execute(
            update(Invite).where(Invite.contact_id == other.id).values(status="removed")
        )
    error = _error(await _try_epoch(kf, "staff", (other_uid,), kf.staff), 400, "bad_request")
    assert error["details"]["users"] == [other_uid]
    assert (await _try_epoch(kf, "staff", (), kf.staff)).status_code == 201


@pytest.mark.parametrize("how", ["removed", "expired"])
async def test_writes_wait_for_the_epoch_after_a_client_leaves(
    make_firm: MakeFirm, http: httpx.AsyncClient, how: str
) -> None:
    kf = await key_firm(await make_firm(), http)
    await kf.post_epoch()
    assert (await _post_message(kf, "staff", kf.seal(kf.staff).encode())).status_code == 201
    if how == "removed":
        await kf.kit.remove_member(kf.kit.contact)
    else:
        async with kf.kit.db.write() as session:
            await session.execute(
                update(MatterMember)
                .where(MatterMember.principal_kind == "contact")
                .where(MatterMember.principal_id == kf.kit.contact.id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
    # The client: no access at all.
    _error(await _post_message(kf, "contact", kf.seal(kf.contact).encode()), 404, "not_found")
    # Everyone else: not under an epoch the client who left can still read.
    for who, user in (("staff", kf.staff), ("bot", kf.bot)):
        error = _error(await _post_message(kf, who, kf.seal(user).encode()), 409, "stale_epoch")
        assert error["details"] == {"epoch": 1, "reason": "rekey_required", "users": [kf.contact]}
    assert (await _try_epoch(kf, "staff", (), kf.staff)).status_code == 201
    assert (await _post_message(kf, "staff", kf.seal(kf.staff).encode())).status_code == 201


async def test_put_me_needs_the_login_secret_and_a_backup_of_mine(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    staff = kf.kit.staff
    before = (await kf.call("GET", "/me", "staff", status=200)).json()
    key = IdentityKey.generate()
    good = kf.me_body(staff, key)
    # A session alone is not enough.
    no_secret = {k: v for k, v in good.items() if k != "login_secret"}
    _error(await kf.call("PUT", "/me", "staff", no_secret), 400, "bad_request")
    wrong = {**good, "login_secret": b64(os.urandom(32))}
    _error(await kf.call("PUT", "/me", "staff", wrong), 401, "invalid_credentials")
    # A backup of someone else, or not made with this login's salt.
    theirs = {**good, "backup": b64(kf.backup(staff, key, user=kf.admin))}
    error = _error(await kf.call("PUT", "/me", "staff", theirs), 400, "bad_request")
    assert error["details"]["reason"] == "crypto_wrong_context"
    kdf, _ = kf.logins[kf.staff]
    contents = BackupContents(key, kf.world.frk.public.fingerprint)
    params = Argon2Params(kdf.m_kib, kdf.t, kdf.p)
    salted = create_backup(
        kf.slug, kf.staff, os.urandom(32), contents, params=params, salt=b"s" * 16
    )
    error = _error(
        await kf.call("PUT", "/me", "staff", {**good, "backup": b64(salted.encode())}),
        400,
        "bad_request",
    )
    assert error["details"]["reason"] == "crypto_wrong_context"
    _error(await kf.call("PUT", "/me", "staff", {**good, "backup": "AAAA"}), 400, "bad_request")
    assert (await kf.call("GET", "/me", "staff", status=200)).json() == before
    await kf.call("PUT", "/me", "staff", good, 200)
    mine = (await kf.call("GET", "/me", "staff", status=200)).json()
    assert mine["public_keys"] == good["public_keys"] and mine["backup"] == good["backup"]


async def test_put_me_refuses_a_backup_below_the_argon2_floor(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http, set_up=False)
    weak, secret = Kdf(os.urandom(16), 1024, 1, 1), os.urandom(32)
    async with kf.kit.db.write() as session:
        await set_login(
            session,
            firm_id=kf.kit.firm_id,
            principal_kind="staff",
            principal_id=kf.kit.staff.id,
            email=f"weak{os.urandom(3).hex()}@keys.test",
            kdf=weak,
            login_secret=secret,
        )
    key = IdentityKey.generate()
    blob = create_backup(
        kf.slug,
        kf.staff,
        os.urandom(32),
        BackupContents(key, bytes(32)),
        params=Argon2Params(1024, 1, 1),
        salt=weak.salt,
    )
    body = {
        "public_keys": b64(key.public.record()),
        "backup": b64(blob.encode()),
        "login_secret": b64(secret),
    }
    error = _error(await kf.call("PUT", "/me", "staff", body), 400, "bad_request")
    assert error["details"]["reason"] == "crypto_encoding"


async def test_put_me_wrong_secrets_are_rate_limited(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    good = kf.me_body(kf.kit.staff, IdentityKey.generate())
    wrong = {**good, "login_secret": b64(os.urandom(32))}
    for _ in range(REAUTH_LIMIT):
        _error(await kf.call("PUT", "/me", "staff", wrong), 401, "invalid_credentials")
    _error(await kf.call("PUT", "/me", "staff", good), 429, "rate_limited")


async def test_invite_round_access_is_checked_before_the_body(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    await _plain_staff(kf)
    url = f"/api/v1/matters/{kf.ref}/invites"
    junk = b"{" + b"x" * 1024
    headers = {**kf.kit.auth("plain"), "Content-Type": "application/json"}
    _error(await http.post(url, content=junk, headers=headers), 403, "forbidden")
    headers = {**kf.kit.auth("contact"), "Content-Type": "application/json"}
    _error(await http.post(url, content=junk, headers=headers), 404, "not_found")
    # The responsible staff member gets the body's own refusal.
    headers = {**kf.kit.auth("staff"), "Content-Type": "application/json"}
    _error(await http.post(url, content=junk, headers=headers), 400, "bad_request")


async def test_sdk_own_mail_link_ignores_the_servers_url(tmp_path: Path) -> None:
    http = Http("https://portal.example/")
    try:
        client = Client(http, firm="demo", state_dir=tmp_path)
        frk = FirmRootKey.generate()
        answer = {
            "links": [
                {"invite": 7, "contact_id": 3, "token": "tok", "url": "https://evil.example/x"}
            ]
        }
        invited = client._invited(3, 7, b"\x01" * 32, answer, Directory("demo", frk.public))
    finally:
        await http.aclose()
    assert invited.link is not None
    assert invited.link.startswith("https://portal.example/?firm=demo#t=tok&r=")
    assert "evil" not in invited.link
