"""The thin network layer: one signed-in HTTP session (cookie, CSRF, Origin) and websocket sends.

Everything above it is sans-I/O or calls ``Http.call``; a server error
becomes ``ApiError`` with the server's stable code. Sends go over the
websocket of docs/protocol.md (wait for ``hello``, one ``send`` frame per
event, the ``ack`` or ``error`` with the same id).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Origin

from rtportal.sdk.errors import ApiError

__all__ = ["Http", "Outgoing"]

TIMEOUT_S = 30.0
_PIECE = 64 * 1024  # bytes per read of a file being uploaded
PROTOCOL_VERSION = 2  # the websocket protocol this client speaks (docs/protocol.md)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to send: ``message``/``note``/``edit`` with the envelope as unpadded
    base64url, or a ``delete`` (no blob)."""

    matter: str
    kind: str
    audience: str
    payload: dict[str, Any]
    blob: str | None
    id: str = field(default_factory=lambda: "sdk-" + secrets.token_hex(8))

    def frame(self) -> dict[str, Any]:
        return {
            "type": "send",
            "id": self.id,
            "matter": self.matter,
            "kind": self.kind,
            "audience": self.audience,
            "payload": self.payload,
            "blob": self.blob,
        }


def _api_error(response: httpx.Response) -> ApiError:
    try:
        err = response.json()["error"]
        return ApiError(
            str(err["code"]),
            str(err.get("message", "")),
            response.status_code,
            **err.get("details", {}),
        )
    except (ValueError, KeyError, TypeError):
        return ApiError("http_error", response.text[:200], response.status_code)


class Http:
    """A cookie session against one rtportal server."""

    def __init__(
        self,
        base_url: str,
        *,
        origin: str | None = None,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Origin": origin} if origin else {}
        if token is not None:  # an API token (bots, scripts, the demo seed): no cookie, no CSRF
            headers["Authorization"] = f"Bearer {token}"
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.origin = origin
        self.csrf: str | None = None
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, transport=transport, timeout=TIMEOUT_S
        )

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any
    ) -> Any:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf and method != "GET" else {}
        query = {k: v for k, v in params.items() if v is not None}
        response = await self._client.request(
            method, path, json=body, params=query or None, headers=headers
        )
        if response.status_code >= 400:
            raise _api_error(response)
        data = response.json()
        if isinstance(data, dict) and "csrf_token" in data:
            self.csrf = str(data["csrf_token"])
        return data

    async def post_events(self, events: Sequence[Outgoing]) -> list[int | str]:
        """The same sends over ``POST /matters/{ref}/events`` (the server checks them alike)."""
        seqs: list[int | str] = []
        for e in events:
            body = {
                "kind": e.kind,
                "audience": e.audience,
                "payload": e.payload,
                "blob": e.blob,
                "client_id": e.id,
            }
            answer = await self.call("POST", f"/api/v1/matters/{e.matter}/events", body)
            seqs.append(_at(answer))
        return seqs

    async def upload(self, path: str, src: Path, digest: bytes) -> Any:
        """POST the file ``src`` as a streamed ``application/octet-stream`` body
        (read a piece at a time, never whole) with its ``Content-Digest``."""

        async def pieces() -> AsyncIterator[bytes]:
            with src.open("rb") as fh:
                while piece := await asyncio.to_thread(fh.read, _PIECE):
                    yield piece

        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
            "Content-Length": str(await asyncio.to_thread(os.path.getsize, src)),
        }
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        response = await self._client.post(path, content=pieces(), headers=headers)
        if response.status_code >= 400:
            raise _api_error(response)
        return response.json()

    async def download(self, path: str) -> AsyncIterator[bytes]:
        """GET ``path`` as a stream of pieces (an error answer raises ``ApiError``)."""
        async with self._client.stream("GET", path) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _api_error(response)
            async for piece in response.aiter_bytes():
                yield piece

    def _auth_headers(self) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self._client.cookies.jar)}

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest + "/ws"

    async def send_events(self, events: Sequence[Outgoing]) -> list[int | str]:
        """Send over one websocket; returns where each event is (in order) once acked:
        its seq, or a contact's cursor token (protocol v2)."""
        origin = Origin(self.origin) if self.origin else None
        seqs: dict[str, int | str] = {}
        async with asyncio.timeout(TIMEOUT_S):
            async with connect(
                self.ws_url, additional_headers=self._auth_headers(), origin=origin
            ) as ws:
                hello = json.loads(await ws.recv())
                if hello.get("type") != "hello":
                    raise ApiError("protocol", f"expected hello, got {hello.get('type')}")
                await ws.send(json.dumps({"type": "hello", "id": "hello", "v": PROTOCOL_VERSION}))
                for event in events:
                    await ws.send(json.dumps(event.frame()))
                wanted = {e.id for e in events}
                while wanted - seqs.keys():
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "ack" and frame.get("id") in wanted:
                        seqs[frame["id"]] = _at(frame)
                    elif frame.get("type") == "error" and frame.get("id") in wanted:
                        details = frame.get("details")
                        raise ApiError(
                            str(frame.get("code")),
                            str(frame.get("message", "")),
                            0,
                            **(details if isinstance(details, dict) else {}),
                            matter=frame.get("matter"),
                        )
        return [seqs[e.id] for e in events]

    async def aclose(self) -> None:
        await self._client.aclose()


def _at(answer: dict[str, Any]) -> int | str:
    """An ack's (or a POST answer's) event: ``seq`` (staff, bots) or ``cursor`` (contacts)."""
    if "cursor" in answer:
        return str(answer["cursor"])
    return int(answer["seq"])
