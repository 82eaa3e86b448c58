"""The S3 files backend against a real local S3-compatible server (moto's HTTP
server on loopback): an upload stored as an object only when complete, a refused
one leaving no object and no spooled file, a download streamed back, a deleted
item's object removed (docs/files.md "Storage")."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from moto.server import ThreadedMotoServer

from rtportal.app import create_app
from rtportal.files.s3store import S3Storage
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server

pytestmark = pytest.mark.timeout(300)

LIMIT = 5 * 1024 * 1024
BUCKET = "rtportal-files"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on a free loopback port with one bucket; its endpoint."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _objects(endpoint: str) -> list[str]:
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)
    return [str(o["Key"]) for o in listed.get("Contents", [])]


def _blob(size: int) -> bytes:
    return b"RTA1\x01" + bytes(16) + b"\x33" * (size - 21)


def _headers(kit: FirmKit, data: bytes) -> dict[str, str]:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {
        **kit.auth("contact"),
        "Content-Type": "application/octet-stream",
        "Content-Digest": f"sha-256=:{digest}:",
    }


@pytest.fixture
async def server(settings: Settings, s3: str) -> AsyncIterator[RunningServer]:
    on_s3 = dataclasses.replace(settings, files_url=f"s3://{BUCKET}/portal?endpoint={s3}")
    async with running_server(create_app(on_s3)) as srv:
        assert isinstance(srv.app.state.runtime.files, S3Storage)
        yield srv


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]


async def test_files_on_an_s3_compatible_store(
    server: RunningServer, s3: str, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/files"
    spool = Path(server.app.state.settings.files_dir) / "tmp"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as c:
        data = _blob(LIMIT)
        answer = await c.post(url, content=data, headers=_headers(kit, data))
        assert answer.status_code == 201, answer.text
        fid = answer.json()["file"]["id"]
        assert await asyncio.to_thread(_objects, s3) == [f"portal/{fid}"]
        got = await c.get(f"{url}/{fid}", headers=kit.auth("contact"))
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-length"] == str(LIMIT)

        # One byte over, chunked: refused, no object, nothing spooled.
        over = _blob(LIMIT + 1)
        answer = await c.post(url, content=_pieces(over), headers=_headers(kit, over))
        assert answer.json()["error"]["code"] == "file_too_large"
        assert await asyncio.to_thread(_objects, s3) == [f"portal/{fid}"]
        assert not await asyncio.to_thread(lambda: list(spool.iterdir()))

        # Attached, then the item deleted: its object goes.
        events = f"/api/v1/matters/{kit.ref}/events"
        body: dict[str, Any] = {
            "kind": "message",
            "client_id": "m",
            "payload": {"thread": "s", "files": [fid]},
        }
        item = (await c.post(events, json=body, headers=kit.auth("contact"))).json()["event"][
            "payload"
        ]["item"]
        gone = {"kind": "delete", "client_id": "d", "payload": {"item": item}}
        assert (await c.post(events, json=gone, headers=kit.auth("contact"))).status_code == 201
        assert await asyncio.to_thread(_objects, s3) == []
        assert (await c.get(f"{url}/{fid}", headers=kit.auth("contact"))).status_code == 404
