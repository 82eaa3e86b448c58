"""Damaged records at every key-directory endpoint: truncated, extended, bit-flipped,
random. Each is answered with a stable client error (4xx with a code), never a
500 or 503, on every backend; nothing half-written (the chain still takes the
next good epoch)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx

from rtportal.crypto.certs import Role
from rtportal.crypto.keys import FirmEscrowKey
from tests.conftest import MakeFirm
from tests.support.keyfirm import KeyFirm, b64, key_firm

CLIENT_ERRORS = {400, 403, 404, 409, 413, 422}


def damaged(record: bytes, rng: random.Random) -> Iterator[bytes]:
    """A dozen broken copies of ``record``."""
    yield b""
    yield record[:4]
    yield record[:-1]
    yield record + b"\x00"
    yield bytes(rng.randrange(256) for _ in range(len(record)))
    yield record[:4] + b"\xff\xff" + record[6:]
    for _ in range(6):
        i = rng.randrange(len(record))
        yield record[:i] + bytes([record[i] ^ (1 << rng.randrange(8))]) + record[i + 1 :]


def _check(response: httpx.Response, label: str) -> None:
    if response.status_code < 300:
        return  # a flip that still makes a valid record (a key's bytes): fine
    assert response.status_code in CLIENT_ERRORS, (label, response.text)
    assert response.json()["error"]["code"] not in ("internal", "unavailable"), label


async def test_damaged_records_are_client_errors(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    rng = random.Random(11)
    kf = await key_firm(await make_firm(), http)
    manifest, epoch = kf.epoch_body((kf.contact,))
    revocation = kf.client_revocation(7)
    fresh = await key_firm(await make_firm(), http, set_up=False)
    me_body = kf.me_body(kf.kit.staff, kf.world.ids[kf.staff])

    cases: list[tuple[KeyFirm, str, str, str, bytes, Any]] = [
        (fresh, "PUT", "/root", "frk", kf.world.frk.public.record(), None),
        (kf, "POST", "/certs", "certs", kf.world.certs[kf.bot].encode(), list),
        (kf, "PUT", "/revocations", "list", kf.revocation_list(2, []), None),
        (kf, "POST", "/escrow", "record", kf.escrow(2), None),
        (kf, "POST", "/client-revocations", "revocations", revocation, list),
        (kf, "PUT", "/me", "public_keys", kf.world.ids[kf.staff].public.record(), me_body),
        (kf, "PUT", "/me", "backup", kf.backup(kf.kit.staff, kf.world.ids[kf.staff]), me_body),
    ]
    decode_b64 = __import__("rtportal.base64url", fromlist=["decode"]).decode
    for field in ("manifest", "head"):
        raw = decode_b64(epoch[field], 70_000)
        assert raw is not None
        cases.append((kf, "POST", f"/matters/{kf.ref}/epochs", field, raw, epoch))
    wrap = decode_b64(epoch["wraps"][0], 2048)
    assert wrap is not None
    cases.append((kf, "POST", f"/matters/{kf.ref}/epochs", "wraps", wrap, epoch))
    cases.append((kf, "POST", f"/matters/{kf.ref}/wraps", "wraps", wrap, list))
    for target, method, path, field, record, shape in cases:
        who = "admin" if path in ("/root", "/certs", "/revocations", "/escrow") else "staff"
        for broken in damaged(record, rng):
            value: Any = b64(broken)
            if isinstance(shape, dict):
                body = {**shape, field: [value] if field == "wraps" else value}
            else:
                body = {field: [value] if shape is list else value}
            response = await target.call(method, path, who, body)
            _check(response, f"{method} {path} {field} {broken.hex()}")
    # Messages: damaged envelopes on a matter with an epoch.
    await kf.call("POST", f"/matters/{kf.ref}/epochs", "staff", epoch, 201)
    envelope = kf.seal(kf.contact).encode()
    for broken in damaged(envelope, rng):
        response = await http.post(
            f"/api/v1/matters/{kf.ref}/events",
            json={"kind": "message", "payload": {"thread": "t1"}, "blob": b64(broken)},
            headers=kf.kit.auth("contact"),
        )
        _check(response, f"envelope {broken.hex()}")
    assert manifest.body.epoch == 1


async def test_values_beyond_the_columns_are_refused(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    """rtp1's u64 serials and u32 versions exceed the tables' integers: refused, not 5xx."""
    kf = await key_firm(await make_firm(), http)
    kf.world._serial = 2**64 - 2  # the next certificate's serial: 2**64 - 1
    kf.world.add_user(kf.bot, Role.BOT, key=kf.world.ids[kf.bot])
    response = await kf.call("POST", "/certs", "admin", {"certs": [kf.cert_of(kf.bot)]})
    assert response.status_code == 400, response.text
    kf.world.fek = FirmEscrowKey.generate(kf.slug, 2**32 - 1)
    wrap = kf.world.wrap_firm_keys(kf.staff, wrapper=kf.admin)
    body = {"certs": [kf.cert_of(kf.staff)], "wraps": [b64(wrap.encode())]}
    response = await kf.call("POST", "/certs", "admin", body)
    assert response.status_code == 400, response.text
    huge = {"list": b64(kf.revocation_list(2**32 - 1, []))}
    response = await kf.call("PUT", "/revocations", "admin", huge)
    assert response.status_code == 409, response.text
