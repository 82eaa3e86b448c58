"""The key directory's firm endpoints (docs/keys.md "HTTP API"), on every backend:
root, registration, pending approvals, certificates, revocations, escrow, and
the ``keys`` events each change appends with its audience."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from sqlalchemy import select

from rtportal.base64url import decode
from rtportal.crypto.certs import (
    FRK_ISSUER,
    CertBody,
    Flag,
    Reason,
    RevocationEntry,
    Role,
    issue,
)
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.db.models import Event, KeyCert
from tests.conftest import MakeFirm
from tests.support.crypto.world import NOW_MS
from tests.support.keyfirm import KeyFirm, b64, key_firm


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


async def _keys_events(kf: KeyFirm) -> list[tuple[str, str, dict[str, Any]]]:
    """(audience, what, payload) of the kit matter's ``keys`` events, in order."""
    async with kf.kit.db.read() as session:
        rows = await session.execute(
            select(Event)
            .where(Event.matter_id == kf.kit.matter.id, Event.kind == "keys")
            .order_by(Event.seq)
        )
        return [
            (e.audience, json.loads(e.payload)["what"], json.loads(e.payload))
            for e in rows.scalars()
        ]


async def test_set_up_stores_every_record_and_announces_it(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    firm = (await kf.call("GET", "/firm", "staff", status=200)).json()
    assert decode(firm["frk"], 256) == kf.world.frk.public.record()
    assert len(firm["certs"]) == 3  # admin, staff, bot (client certs live with matters)
    assert len(firm["escrow"]) == 1 and firm["revocations"]["list"] is not None
    assert len(firm["wraps"]) == 1  # the firm keys wrapped to this staff member only
    events = await _keys_events(kf)
    whats = [(audience, what) for audience, what, _ in events]
    assert whats[0] == ("portal", "root")
    assert ("staff", "pending") in whats  # registrations: staff only
    assert ("staff", "escrow") in whats
    assert ("portal", "revocations") in whats
    assert whats[-1] == ("portal", "cert")  # the client certificate, in its matter
    assert events[-1][2]["user"] == kf.contact
    # A client reads the firm's root, staff and bot certificates, no firm wraps.
    client = (await kf.call("GET", "/firm", "contact", status=200)).json()
    assert client["frk"] == firm["frk"] and client["wraps"] == []
    assert client["revocations"]["client"] == []
    # The client's view of the stream hides staff-audience key events.
    history = await http.get(f"/api/v1/matters/{kf.ref}/events", headers=kf.kit.auth("contact"))
    seen = [e["payload"]["what"] for e in history.json()["events"] if e["kind"] == "keys"]
    assert "pending" not in seen and "escrow" not in seen and "cert" in seen


async def test_root_is_set_once_by_an_org_admin(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http, set_up=False)
    record = b64(FirmRootKey.generate().public.record())
    _error(await kf.call("PUT", "/root", "staff", {"frk": record}), 403, "forbidden")
    _error(await kf.call("PUT", "/root", "contact", {"frk": record}), 404, "not_found")
    _error(await kf.call("PUT", "/root", "bot", {"frk": record}), 404, "not_found")
    answer = (await kf.call("PUT", "/root", "admin", {"frk": record}, 201)).json()
    assert len(answer["fingerprint"].split()) == 8
    _error(await kf.call("PUT", "/root", "admin", {"frk": record}), 409, "frk_exists")
    # Garbage: a stable code, never a 500.
    other = await key_firm(await make_firm(), http, set_up=False)
    for junk in ("AAAA", b64(os.urandom(36)), b64(b"RTKR" + os.urandom(40))):
        error = _error(await other.call("PUT", "/root", "admin", {"frk": junk}), 400, "bad_request")
        assert error["details"]["reason"] == "crypto_encoding"
    _error(
        await other.call("PUT", "/root", "admin", {"frk": b64(os.urandom(300))}),
        413,
        "payload_too_large",
    )


async def test_frk_signed_records_need_the_root_key(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http, set_up=False)
    body = {"record": b64(kf.escrow(1))}
    _error(await kf.call("POST", "/escrow", "admin", body), 409, "frk_missing")
    listed = {"list": b64(kf.revocation_list(1, []))}
    _error(await kf.call("PUT", "/revocations", "admin", listed), 409, "frk_missing")


async def test_registration_pending_and_approval(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    # No password yet: nowhere to keep the backup.
    key = IdentityKey.generate()
    body = {"public_keys": b64(key.public.record()), "login_secret": b64(kf.logins[kf.staff][1])}
    new_staff, _ = kf.kit.staff, None
    _error(await kf.call("PUT", "/me", "bot", body), 404, "not_found")
    # A second staff key: the staff member re-registers (a new device's key).
    await kf.call("PUT", "/me", "staff", body, 200)
    pending = (await kf.call("GET", "/pending", "admin", status=200)).json()["pending"]
    assert [p["user"] for p in pending] == [kf.staff]
    assert pending[0]["public_keys"] == body["public_keys"]
    _error(await kf.call("GET", "/pending", "staff"), 403, "forbidden")
    _error(await kf.call("GET", "/pending", "contact"), 404, "not_found")
    # A certificate of keys the staff member did not register is refused.
    stranger = IdentityKey.generate()
    kf.world.add_user(kf.staff, Role.STAFF, key=stranger)
    error = _error(
        await kf.call("POST", "/certs", "admin", {"certs": [kf.cert_of(kf.staff)]}),
        400,
        "bad_request",
    )
    assert error["details"]["reason"] == "keys_not_registered"
    kf.world.add_user(kf.staff, Role.STAFF, key=key, flags=Flag.CERTIFY_CLIENTS)
    wrap = kf.world.wrap_firm_keys(kf.staff, wrapper=kf.admin)
    approve = {"certs": [kf.cert_of(kf.staff)], "wraps": [b64(wrap.encode())]}
    await kf.call("POST", "/certs", "admin", approve, 201)
    assert (await kf.call("GET", "/pending", "admin", status=200)).json()["pending"] == []
    me = (await kf.call("GET", "/me", "staff", status=200)).json()
    assert me["user"] == kf.staff and me["public_keys"] == body["public_keys"]
    assert len(me["certs"]) == 2 and me["backup"] is not None
    assert new_staff.kind == "staff"


async def test_staff_and_bot_certificates_are_frk_signed(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    # Signed by another root key: refused early.
    rogue = FirmRootKey.generate()
    key = IdentityKey.generate()
    body = CertBody(
        kf.slug,
        Role.BOT,
        kf.bot,
        key.public.x_pk,
        key.public.ed_pk,
        99,
        NOW_MS,
        0,
        Flag(0),
        (),
        FRK_ISSUER,
        rogue.kid,
    )
    forged = b64(issue(body, rogue).encode())
    error = _error(
        await kf.call("POST", "/certs", "admin", {"certs": [forged]}), 400, "bad_request"
    )
    assert error["details"]["reason"] == "crypto_wrong_context"
    # Another firm's certificate, a bot certificate for a staff member, garbage.
    other = await key_firm(await make_firm(), http)
    error = _error(
        await kf.call("POST", "/certs", "admin", {"certs": [other.cert_of(other.bot)]}),
        400,
        "bad_request",
    )
    assert error["details"]["reason"] == "crypto_wrong_context"
    for junk in ("AAAA", b64(os.urandom(200)), b64(b"RTCX" + os.urandom(100))):
        _error(await kf.call("POST", "/certs", "admin", {"certs": [junk]}), 400, "bad_request")
    _error(
        await kf.call("POST", "/certs", "admin", {"certs": [b64(os.urandom(5000))]}),
        413,
        "payload_too_large",
    )
    # A plain staff member may not post staff or bot certificates; clients never see the route.
    _error(
        await kf.call("POST", "/certs", "staff", {"certs": [kf.cert_of(kf.bot)]}), 403, "forbidden"
    )
    _error(
        await kf.call("POST", "/certs", "contact", {"certs": [kf.cert_of(kf.bot)]}),
        404,
        "not_found",
    )


async def test_client_certificates_name_a_client_of_the_matter(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    stranger, _ = await kf.kit.add_contact("Not A Client")
    user = f"c{stranger.id}"
    kf.world.add_user(user, Role.CLIENT, scopes=(kf.ref,), issuer=kf.staff)
    error = _error(
        await kf.call("POST", "/certs", "staff", {"certs": [kf.cert_of(user)]}), 400, "bad_request"
    )
    assert error["details"]["reason"] == "not_a_client"
    # Issued by a staff member who is not the caller: not theirs to post.
    kf.world.add_user(kf.contact, Role.CLIENT, scopes=(kf.ref,), issuer=kf.admin)
    _error(
        await kf.call("POST", "/certs", "staff", {"certs": [kf.cert_of(kf.contact)]}),
        403,
        "key_not_certified",
    )


async def test_revocation_list_versions_and_revoked_keys(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    stale = {"list": b64(kf.revocation_list(1, []))}
    error = _error(await kf.call("PUT", "/revocations", "admin", stale), 409, "version_conflict")
    assert error["details"]["version"] == 1
    skip = {"list": b64(kf.revocation_list(3, []))}
    _error(await kf.call("PUT", "/revocations", "admin", skip), 409, "version_conflict")
    entry = RevocationEntry(kf.bot, kf.world.ids[kf.bot].kid, NOW_MS, Reason.LEFT)
    await kf.put_revocations([entry])
    async with kf.kit.db.read() as session:
        row = await session.scalar(select(KeyCert).where(KeyCert.principal == kf.bot))
        assert row is not None and row.revoked_at is not None
    firm = (await kf.call("GET", "/firm", "contact", status=200)).json()
    assert decode(firm["revocations"]["list"], 300_000) == kf.revocation_list(2, [entry])
    # Signed by someone else: refused; too big: 413.
    rogue = FirmRootKey.generate()
    forged = kf.revocation_list(3, [])[:-64] + rogue.sign(b"x")
    error = _error(
        await kf.call("PUT", "/revocations", "admin", {"list": b64(forged)}), 400, "bad_request"
    )
    assert error["details"]["reason"] == "crypto_signature"
    big = {"list": b64(os.urandom(256 * 1024 + 1))}
    _error(await kf.call("PUT", "/revocations", "admin", big), 413, "payload_too_large")
    _error(await kf.call("PUT", "/revocations", "staff", stale), 403, "forbidden")


async def test_escrow_versions_only_go_up_and_only_org_admins_add_them(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    again = {"record": b64(kf.escrow(1))}
    error = _error(await kf.call("POST", "/escrow", "admin", again), 409, "version_conflict")
    assert error["details"]["version"] == 1
    await kf.call("POST", "/escrow", "admin", {"record": b64(kf.escrow(2))}, 201)
    firm = (await kf.call("GET", "/firm", "admin", status=200)).json()
    assert len(firm["escrow"]) == 2
    _error(await kf.call("POST", "/escrow", "staff", again), 403, "forbidden")
    _error(await kf.call("POST", "/escrow", "bot", again), 404, "not_found")


async def test_client_revocations_come_from_staff_signing_as_themselves_and_reach_the_matter(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    record = b64(kf.client_revocation())
    _error(
        await kf.call("POST", "/client-revocations", "contact", {"revocations": [record]}),
        404,
        "not_found",
    )
    await kf.call("POST", "/client-revocations", "staff", {"revocations": [record]}, 201)
    matter = (await kf.call("GET", f"/matters/{kf.ref}", "contact", status=200)).json()
    assert matter["revocations"] == [record]
    firm = (await kf.call("GET", "/firm", "staff", status=200)).json()
    assert firm["revocations"]["client"] == [record]
    # Signed by the admin's key but posted by the staff member: not the caller's.
    forged = kf.client_revocation(2, issuer=kf.admin)
    _error(
        await kf.call("POST", "/client-revocations", "staff", {"revocations": [b64(forged)]}),
        403,
        "key_not_certified",
    )


async def test_unknown_fields_and_malformed_records_are_bad_request_and_anonymous_is_401(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http, set_up=False)
    _error(await kf.call("PUT", "/root", "admin", {"frk": "AAAA", "x": 1}), 400, "bad_request")
    _error(await kf.call("PUT", "/root", "admin", {"frk": 5}), 400, "bad_request")
    _error(await kf.call("POST", "/certs", "admin", {"certs": "AAAA"}), 400, "bad_request")
    _error(await kf.call("POST", "/certs", "admin", {"certs": []}), 400, "bad_request")
    many = {"certs": ["AAAA"] * 101}
    _error(await kf.call("POST", "/certs", "admin", many), 400, "bad_request")
    _error(await kf.call("PUT", "/me", "staff", {"public_keys": "AAAA"}), 400, "bad_request")
    anon = await http.get("/api/v1/keys/firm")
    _error(anon, 401, "unauthenticated")


async def test_keys_events_go_to_the_right_streams_and_audiences(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kit = await make_firm()
    other = await kit.add_matter()
    kf = await key_firm(kit, http)
    await kf.post_epoch()
    manifest = kf.world.chains[kf.ref].manifests[1]
    head = {"head": b64(kf.head(manifest, ts_ms=NOW_MS + 1))}
    await kf.call("PUT", f"/matters/{kf.ref}/head", "staff", head, 200)
    wrap = kf.world.wrap_mek(kf.ref, 1, kf.contact, wrapper=kf.staff)
    await kf.call("POST", f"/matters/{kf.ref}/wraps", "staff", {"wraps": [b64(wrap.encode())]}, 201)

    async def stream(matter_id: int) -> list[tuple[str, str, str | None]]:
        async with kit.db.read() as session:
            rows = await session.execute(
                select(Event)
                .where(Event.matter_id == matter_id, Event.kind == "keys")
                .order_by(Event.seq)
            )
            out = []
            for e in rows.scalars():
                payload = json.loads(e.payload)
                out.append((e.audience, payload["what"], payload.get("user")))
            return out

    firm_wide = [
        ("portal", "root", None),
        ("staff", "pending", kf.admin),
        ("staff", "pending", kf.staff),
        ("portal", "cert", kf.admin),
        ("portal", "cert", kf.staff),
        ("staff", "escrow", None),
        ("portal", "revocations", None),
        ("portal", "cert", kf.bot),
    ]
    assert await stream(other.id) == firm_wide
    assert await stream(kit.matter.id) == [
        *firm_wide,
        ("portal", "cert", kf.contact),
        ("portal", "epoch", None),
        ("portal", "head", None),
        ("portal", "wraps", None),
    ]
