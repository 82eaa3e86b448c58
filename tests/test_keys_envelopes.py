"""The directory's check on every message write (docs/keys.md "On every message
write"), over HTTP and the websocket: once a matter has an epoch, a message is
an envelope of the writer's certified, unrevoked key under the newest epoch."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from rtportal.crypto.envelope import Visibility
from rtportal.crypto.keys import IdentityKey
from tests.conftest import MakeFirm
from tests.support.keyfirm import KeyFirm, b64, key_firm
from tests.support.server import RunningServer
from tests.support.wsjson import HELLO

TIMEOUT = 20.0


async def _post(
    kf: KeyFirm, who: str, blob: bytes | None, *, thread: str = "t1", **extra: Any
) -> httpx.Response:
    kind = extra.pop("kind", "message")
    if kind == "message" and who != "contact":
        extra.setdefault("to", [kf.kit.contact.id])  # a staff thread names its client
    body: dict[str, Any] = {
        "kind": kind,
        "audience": extra.pop("audience", "portal"),
        "payload": {"thread": thread, **extra},
        "blob": None if blob is None else b64(blob),
        "client_id": secrets.token_hex(6),
    }
    return await kf.http.post(
        f"/api/v1/matters/{kf.ref}/events", json=body, headers=kf.kit.auth(who)
    )


def _code(response: httpx.Response) -> tuple[int, str | None]:
    if response.status_code < 300:
        return response.status_code, None
    return response.status_code, response.json()["error"]["code"]


async def test_http_writes_to_an_encrypted_matter(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    # No epoch yet: the matter is not checked (a plaintext-less message is fine).
    assert _code(await _post(kf, "staff", None)) == (201, None)
    await kf.post_epoch()
    assert _code(await _post(kf, "contact", kf.seal(kf.contact).encode())) == (201, None)
    assert _code(await _post(kf, "staff", kf.seal(kf.staff).encode())) == (201, None)
    assert _code(await _post(kf, "bot", kf.seal(kf.bot).encode())) == (201, None)
    staff_only = kf.seal(kf.staff, vis=Visibility.STAFF, thread="n1").encode()
    note = await _post(kf, "staff", staff_only, thread="n1", kind="note", audience="staff")
    assert _code(note) == (201, None)
    # Unencrypted writes are refused.
    assert _code(await _post(kf, "contact", None)) == (409, "e2ee_required")
    plain_note = await _post(
        kf, "staff", staff_only, thread="n1", kind="note", audience="staff", text="plain"
    )
    assert _code(plain_note) == (409, "e2ee_required")
    # Wrong context: another thread, visibility; garbage.
    moved = await _post(kf, "contact", kf.seal(kf.contact, thread="t2").encode())
    assert _code(moved) == (400, "bad_request")
    assert moved.json()["error"]["details"]["reason"] == "crypto_wrong_context"
    wrong_vis = await _post(kf, "staff", kf.seal(kf.staff).encode(), audience="staff")
    assert _code(wrong_vis) == (400, "bad_request")
    junk = await _post(kf, "contact", os.urandom(200))
    assert _code(junk) == (400, "bad_request")
    assert junk.json()["error"]["details"]["reason"] == "crypto_encoding"
    # An uncertified key, another principal's key or name.
    stranger = IdentityKey.generate()
    assert _code(await _post(kf, "contact", kf.seal(kf.contact, key=stranger).encode())) == (
        403,
        "key_not_certified",
    )
    as_staff = kf.seal(kf.staff, key=kf.world.ids[kf.staff]).encode()
    assert _code(await _post(kf, "contact", as_staff)) == (403, "key_not_certified")
    staff_kid = kf.seal(kf.contact, key=kf.world.ids[kf.staff]).encode()
    assert _code(await _post(kf, "contact", staff_kid)) == (403, "key_not_certified")
    # An old epoch after the next one.
    old = kf.seal(kf.contact).encode()
    await kf.post_epoch()
    stale = await _post(kf, "contact", old)
    assert _code(stale) == (409, "stale_epoch")
    assert stale.json()["error"]["details"]["epoch"] == 2
    # A revoked key is refused at once.
    record = b64(kf.client_revocation())
    await kf.call("POST", "/client-revocations", "staff", {"revocations": [record]}, 201)
    revoked = await _post(kf, "contact", kf.seal(kf.contact).encode())
    assert _code(revoked) == (403, "key_not_certified")


async def test_other_matters_are_not_checked(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kit = await make_firm()
    kf = await key_firm(kit, http)
    await kf.post_epoch()
    other = await kit.add_matter()
    response = await http.post(
        f"/api/v1/matters/{other.reference}/events",
        json={"kind": "message", "client_id": "x", "payload": {"thread": "x"}},
        headers=kit.auth("contact"),
    )
    assert response.status_code == 201, response.text


# --- the websocket ---------------------------------------------------------------------


@pytest.fixture
async def served(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> AsyncIterator[tuple[RunningServer, KeyFirm]]:
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=TIMEOUT) as client:
        kf = await key_firm(await make_firm(), client)
        await kf.post_epoch()
        yield uvicorn_server, kf


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def _send(ws: ClientConnection, kf: KeyFirm, frame_id: str, blob: bytes | None) -> Any:
    frame = {
        "type": "send",
        "id": frame_id,
        "matter": kf.ref,
        "kind": "message",
        "audience": "portal",
        "payload": {"thread": "t1"},
        "blob": None if blob is None else b64(blob),
    }
    await ws.send(json.dumps(frame))
    while True:
        answer = await _recv(ws)
        if answer.get("id") == frame_id:
            return answer


async def test_websocket_sends_are_checked(served: tuple[RunningServer, KeyFirm]) -> None:
    server, kf = served
    async with connect(
        server.ws_url, additional_headers=kf.kit.auth("contact"), proxy=None, open_timeout=TIMEOUT
    ) as ws:
        assert (await _recv(ws))["type"] == "hello"
        await ws.send(HELLO)
        good = await _send(ws, kf, "a", kf.seal(kf.contact).encode())
        assert good["type"] == "ack", good
        for frame_id, blob, code in (
            ("b", None, "e2ee_required"),
            ("c", kf.seal(kf.contact, key=IdentityKey.generate()).encode(), "key_not_certified"),
            ("d", kf.seal(kf.staff).encode(), "key_not_certified"),
            ("e", os.urandom(100), "bad_request"),
        ):
            answer = await _send(ws, kf, frame_id, blob)
            assert (answer["type"], answer["code"]) == ("error", code), answer
        old = kf.seal(kf.contact).encode()
        await kf.post_epoch()
        stale = await _send(ws, kf, "f", old)
        assert (stale["type"], stale["code"], stale["details"]) == (
            "error",
            "stale_epoch",
            {"epoch": 2},
        ), stale
        fresh = await _send(ws, kf, "g", kf.seal(kf.contact).encode())
        assert fresh["type"] == "ack", fresh
