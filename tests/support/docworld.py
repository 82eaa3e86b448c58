"""The document checklist through its HTTP API, for tests (docs/documents.md).

``Docs`` wraps an httpx client and a ``FirmKit``: document types, a
matter's checklist, add to portal, uploads against requests, decisions,
shares. Files are uploaded through the real files endpoint (RTA1-shaped
bytes; the server checks only the header's form) and envelopes are opaque
bytes to the server, so tests send random ones.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from rtportal import base64url
from tests.conftest import FirmKit

__all__ = ["Docs", "envelope", "rta1", "upload_rta1"]

_HEADER = b"RTA1\x01"


def rta1(size: int = 512) -> bytes:
    """Bytes of RTA1 form, distinct each call (a random ``att_id``)."""
    return _HEADER + secrets.token_bytes(16) + b"\x5a" * (size - 21)


def envelope(size: int = 200) -> str:
    """An opaque envelope as the wire carries it (base64url)."""
    return base64url.encode(secrets.token_bytes(size))


async def upload_rta1(http: httpx.AsyncClient, ref: str, headers: dict[str, str]) -> str:
    """A new file of the matter ``ref`` through the files endpoint: its id."""
    data = rta1()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = await http.post(
        f"/api/v1/matters/{ref}/files",
        content=data,
        headers={
            **headers,
            "Content-Type": "application/octet-stream",
            "Content-Digest": f"sha-256=:{digest}:",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["file"]["id"])


@dataclass
class Docs:
    http: httpx.AsyncClient
    kit: FirmKit

    def headers(self, who: str | dict[str, str]) -> dict[str, str]:
        return who if isinstance(who, dict) else self.kit.auth(who)

    def path(self, ref: str | None = None) -> str:
        return f"/api/v1/matters/{ref or self.kit.ref}/documents"

    async def new_type(self, label: str, *, disclosure: bool = False, description: str = "") -> int:
        r = await self.http.post(
            "/api/v1/firm/document-types",
            json={"label": label, "description": description, "is_disclosure": disclosure},
            headers=self.headers("admin"),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["document_type"]["id"])

    async def add(self, types: list[int], **extra: Any) -> list[dict[str, Any]]:
        r = await self.http.post(
            self.path(), json={"types": types, **extra}, headers=self.headers("staff")
        )
        assert r.status_code == 201, r.text
        items: list[dict[str, Any]] = r.json()["documents"]
        return items

    async def request(
        self, items: list[str], to: list[int] | None = None, who: str | dict[str, str] = "staff"
    ) -> httpx.Response:
        body: dict[str, Any] = {"items": items}
        if to is not None:
            body["to"] = to
        return await self.http.post(f"{self.path()}/request", json=body, headers=self.headers(who))

    async def upload_file(self, who: str | dict[str, str] = "contact") -> str:
        return await upload_rta1(self.http, self.kit.ref, self.headers(who))

    async def upload(
        self, item: str, files: list[str], who: str | dict[str, str] = "contact"
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.path()}/{item}/upload",
            json={"files": files, "blob": envelope()},
            headers=self.headers(who),
        )

    async def accept(self, item: str, who: str | dict[str, str] = "staff") -> httpx.Response:
        return await self.http.post(f"{self.path()}/{item}/accept", headers=self.headers(who))

    async def reject(
        self, item: str, reason: str | None = None, who: str | dict[str, str] = "staff"
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.path()}/{item}/reject",
            json={"reason": reason or envelope(64)},
            headers=self.headers(who),
        )

    async def share(
        self, item: str, files: list[str], who: str | dict[str, str] = "staff"
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.path()}/{item}/share",
            json={"files": files, "blob": envelope()},
            headers=self.headers(who),
        )

    async def checklist(self, who: str | dict[str, str] = "staff") -> dict[str, dict[str, Any]]:
        r = await self.http.get(self.path(), headers=self.headers(who))
        assert r.status_code == 200, r.text
        return {d["id"]: d for d in r.json()["documents"]}
