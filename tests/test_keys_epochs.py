"""A matter's epochs in the key directory: the compare-and-set chain (one of two
concurrent writers wins, the other gets ``epoch_conflict`` with the head), heads,
wraps, and who reads what (a client only its matters and its own wraps)."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
from sqlalchemy import select

from rtportal.base64url import decode
from rtportal.crypto.certs import Role
from rtportal.crypto.manifest import Manifest
from rtportal.crypto.wrap import FEK_RECIPIENT, Wrap
from rtportal.db.models import Event
from tests.conftest import MakeFirm
from tests.support.crypto.world import NOW_MS
from tests.support.keyfirm import DAY_MS, b64, key_firm


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _wraps(body: dict[str, Any]) -> list[Wrap]:
    return [Wrap.decode(decode(w, 2048) or b"") for w in body["wraps"]]


async def test_epochs_chain_and_each_reader_gets_its_own_wraps(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    first = await kf.post_epoch()
    second = await kf.post_epoch()
    staff = (await kf.call("GET", f"/matters/{kf.ref}", "staff", status=200)).json()
    assert [decode(m, 70_000) for m in staff["manifests"]] == [first.encode(), second.encode()]
    assert decode(staff["head"], 4096) == kf.head(second)
    assert {w.info.recipient for w in _wraps(staff)} == {FEK_RECIPIENT}  # staff read through #fek
    assert len(staff["certs"]) == 1  # the client's certificate
    client = (await kf.call("GET", f"/matters/{kf.ref}", "contact", status=200)).json()
    assert {w.info.recipient for w in _wraps(client)} == {kf.contact}
    assert [w.info.epoch for w in _wraps(client)] == [1, 2]
    since = (await kf.call("GET", f"/matters/{kf.ref}?since=2", "contact", status=200)).json()
    assert len(since["manifests"]) == 1 and [w.info.epoch for w in _wraps(since)] == [2]
    _error(await kf.call("GET", f"/matters/{kf.ref}?since=0", "contact"), 400, "bad_request")
    # The matter's stream carries the epochs (portal audience).
    async with kf.kit.db.read() as session:
        rows = await session.execute(
            select(Event).where(Event.matter_id == kf.kit.matter.id, Event.kind == "keys")
        )
        epochs = [
            (e.audience, json.loads(e.payload))
            for e in rows.scalars()
            if json.loads(e.payload)["what"] == "epoch"
        ]
    assert epochs == [
        ("portal", {"what": "epoch", "epoch": 1}),
        ("portal", {"what": "epoch", "epoch": 2}),
    ]


async def test_clients_see_only_their_matters(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kf = await key_firm(await make_firm(), http)
    await kf.post_epoch()
    other, token = await kf.kit.add_contact("Other Client")
    response = await http.get(
        f"/api/v1/keys/matters/{kf.ref}", headers={"Authorization": f"Bearer {token}"}
    )
    _error(response, 404, "not_found")
    foreign = await key_firm(await make_firm(), http, set_up=False)
    _error(await foreign.call("GET", f"/matters/{kf.ref}", "admin"), 404, "not_found")
    _error(await foreign.call("GET", f"/matters/{kf.ref}", "contact"), 404, "not_found")
    # Staff actions on the matter do not exist for its client or bot.
    _, body = kf.epoch_body((kf.contact,))
    for who in ("contact", "bot"):
        _error(await kf.call("POST", f"/matters/{kf.ref}/epochs", who, body), 404, "not_found")
        _error(
            await kf.call("PUT", f"/matters/{kf.ref}/head", who, {"head": body["head"]}),
            404,
            "not_found",
        )
        _error(
            await kf.call("POST", f"/matters/{kf.ref}/wraps", who, {"wraps": body["wraps"]}),
            404,
            "not_found",
        )
    assert other.kind == "contact"


async def test_two_concurrent_epochs_one_wins(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kf = await key_firm(await make_firm(), http)
    await kf.post_epoch()
    # The staff member and the admin each make epoch 2 from the same head.
    chain = kf.world.chains[kf.ref]
    saved = (chain.epoch, chain.last_hash)
    mine, body_a = kf.epoch_body((kf.contact,), creator=kf.staff)
    chain.epoch, chain.last_hash = saved
    theirs, body_b = kf.epoch_body((kf.contact,), creator=kf.admin)
    url = f"/matters/{kf.ref}/epochs"
    a, b = await asyncio.gather(
        kf.call("POST", url, "staff", body_a), kf.call("POST", url, "admin", body_b)
    )
    statuses = sorted((a.status_code, b.status_code))
    assert statuses == [201, 409], (a.text, b.text)
    loser, winner = (a, theirs) if a.status_code == 409 else (b, mine)
    error = _error(loser, 409, "epoch_conflict")
    assert error["details"]["epoch"] == 2
    head = decode(error["details"]["head"], 4096)
    assert head is not None and head == kf.head(winner)
    stored = (await kf.call("GET", f"/matters/{kf.ref}?since=2", "staff", status=200)).json()
    assert [decode(m, 70_000) for m in stored["manifests"]] == [winner.encode()]


async def test_an_epoch_must_chain_be_signed_by_the_caller_name_certified_members_and_fit(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    url = f"/matters/{kf.ref}/epochs"
    # Epoch 2 before epoch 1: a conflict, with no head yet.
    kf.world.new_epoch(kf.ref, (kf.contact,), creator=kf.staff)
    _, body = kf.epoch_body((kf.contact,))
    error = _error(await kf.call("POST", url, "staff", body), 409, "epoch_conflict")
    assert error["details"] == {"epoch": 0, "head": None}
    # A manifest signed by the staff member, posted by the admin: not the caller's.
    kf.world.chains.pop(kf.ref)
    _, body = kf.epoch_body((kf.contact,))
    _error(await kf.call("POST", url, "admin", body), 403, "key_not_certified")
    # A member whose key is not certified for the matter.
    kf.world.chains.pop(kf.ref)
    stranger, _ = await kf.kit.add_contact("Uncertified", matter=kf.kit.matter)
    kf.world.add_user(f"c{stranger.id}", Role.CLIENT, scopes=(kf.ref,), issuer=kf.staff)
    _, body = kf.epoch_body((kf.contact, f"c{stranger.id}"))
    error = _error(await kf.call("POST", url, "staff", body), 400, "bad_request")
    assert error["details"]["reason"] == "crypto_uncertified"
    # Posting its certificate with the epoch makes it fine.
    body["certs"] = [kf.cert_of(f"c{stranger.id}")]
    await kf.call("POST", url, "staff", body, 201)
    # Garbage manifests, heads and wraps: 400 with a stable reason, never 500.
    for field, junk in (
        ("manifest", "AAAA"),
        ("manifest", b64(b"RTEX" + os.urandom(300))),
        ("head", b64(os.urandom(100))),
        ("wraps", [b64(os.urandom(300))]),
    ):
        _, good = kf.epoch_body((kf.contact,))
        chain = kf.world.chains[kf.ref]
        chain.epoch -= 1
        chain.last_hash = Manifest.decode(decode(good["manifest"], 70_000) or b"").body.prev_hash
        response = await kf.call("POST", url, "staff", {**good, field: junk})
        assert response.status_code == 400, (field, response.text)
        assert response.json()["error"]["details"]["reason"].startswith("crypto_"), response.text
    # Another matter's manifest on this matter's URL.
    matter_b = await kf.kit.add_matter()
    manifest, body = kf.epoch_body((), matter=matter_b.reference)
    error = _error(await kf.call("POST", url, "staff", body), 400, "bad_request")
    assert error["details"]["reason"] == "crypto_wrong_context"
    # Size limits: a manifest over 64 KiB, more than 1,000 wraps.
    big = {**body, "manifest": b64(os.urandom(64 * 1024 + 1))}
    _error(await kf.call("POST", url, "staff", big), 413, "payload_too_large")
    many = {**body, "wraps": ["AAAA"] * 1001}
    _error(await kf.call("POST", url, "staff", many), 400, "bad_request")
    assert manifest.body.matter == matter_b.reference


async def test_a_head_moves_only_forward_signed_by_its_sender_and_wraps_reach_only_members(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    _error(
        await kf.call("PUT", f"/matters/{kf.ref}/head", "staff", {"head": "AAAA"}),
        409,
        "epoch_conflict",
    )
    manifest = await kf.post_epoch()
    fresh = b64(kf.head(manifest, ts_ms=NOW_MS + DAY_MS))
    await kf.call("PUT", f"/matters/{kf.ref}/head", "staff", {"head": fresh}, 200)
    older = b64(kf.head(manifest, ts_ms=NOW_MS))
    error = _error(
        await kf.call("PUT", f"/matters/{kf.ref}/head", "staff", {"head": older}),
        400,
        "bad_request",
    )
    assert error["details"]["reason"] == "stale_head"
    # Signed by the admin but sent by the staff member.
    by_admin = b64(kf.head(manifest, signer=kf.admin, ts_ms=NOW_MS + 2 * DAY_MS))
    _error(
        await kf.call("PUT", f"/matters/{kf.ref}/head", "staff", {"head": by_admin}),
        403,
        "key_not_certified",
    )
    await kf.call("PUT", f"/matters/{kf.ref}/head", "admin", {"head": by_admin}, 200)
    # More wraps: history for the contact (epoch 1 again), wrapped by the admin.
    wrap = kf.world.wrap_mek(kf.ref, 1, kf.contact, wrapper=kf.admin)
    body = {"wraps": [b64(wrap.encode())]}
    assert (await kf.call("POST", f"/matters/{kf.ref}/wraps", "admin", body, 201)).json()[
        "wraps"
    ] == 1
    client = (await kf.call("GET", f"/matters/{kf.ref}", "contact", status=200)).json()
    assert len(_wraps(client)) == 2
    # A wrap to someone who is not a member of that epoch.
    outsider = kf.world.wrap_mek(kf.ref, 1, kf.staff, wrapper=kf.staff)
    error = _error(
        await kf.call(
            "POST", f"/matters/{kf.ref}/wraps", "staff", {"wraps": [b64(outsider.encode())]}
        ),
        400,
        "bad_request",
    )
    assert "member" in error["message"]
