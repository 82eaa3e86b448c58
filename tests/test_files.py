"""Files against a real server (docs/files.md): streamed uploads with the per-file limit
counted as bytes arrive (declared truthfully, falsely or not at all), the matter's quota
under concurrent uploads, nothing left behind by a refusal or a dropped connection,
attaching files to items, and downloads only for those who see the item.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from rtportal import logs
from rtportal.app import create_app
from rtportal.db.models import StoredFile, utcnow
from rtportal.files.rows import new_file_id
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.threadworld import add_applicant

pytestmark = pytest.mark.timeout(300)

MB = 1024 * 1024
LIMIT = 5 * MB
QUOTA = 200 * MB
_HEADER = b"RTA1\x01" + bytes(range(16))


def blob(size: int) -> bytes:
    """Bytes of RTA1 form (header, then filler the server cannot tell from chunks)."""
    return _HEADER + b"\x5a" * (size - len(_HEADER))


def digest_of(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def upload_headers(kit: FirmKit, who: str, data: bytes) -> dict[str, str]:
    return {
        **kit.auth(who),
        "Content-Type": "application/octet-stream",
        "Content-Digest": digest_of(data),
    }


async def pieces(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def files_dir(server: RunningServer) -> Path:
    return Path(server.app.state.settings.files_dir)


def leftovers(server: RunningServer) -> list[str]:
    """Every file under the storage directory (temporary ones included)."""
    root = files_dir(server)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def file_rows(kit: FirmKit) -> list[tuple[str, int]]:
    async with kit.db.read() as session:
        rows = await session.execute(
            select(StoredFile.state, StoredFile.size).where(StoredFile.matter_id == kit.matter.id)
        )
        return [(r.state, int(r.size)) for r in rows]


class Refusals(logging.Handler):
    """The server's ``upload_refused`` log events, awaitable (no sleep, no poll)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []
        self.why: list[str | None] = []
        self.seen = asyncio.Condition()
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, logs._FIELDS, None) or {}
        if record.getMessage() == "upload_refused":
            self.reasons.append(str(fields.get("code")))
            self.why.append(fields.get("reason"))
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._notify()))

    async def _notify(self) -> None:
        async with self.seen:
            self.seen.notify_all()

    async def wait(self, n: int) -> list[str]:
        async with self.seen:
            await asyncio.wait_for(self.seen.wait_for(lambda: len(self.reasons) >= n), 30)
        return self.reasons


@contextmanager
def refusals() -> Iterator[Refusals]:
    handler = Refusals()
    logger = logging.getLogger("rtportal.files")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture
async def client(uvicorn_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=60) as c:
        yield c


async def upload(
    c: httpx.AsyncClient, kit: FirmKit, data: bytes, who: str = "staff", **kw: object
) -> httpx.Response:
    return await c.post(
        f"/api/v1/matters/{kit.ref}/files", content=data, headers=upload_headers(kit, who, data)
    )


async def test_exactly_the_limit_is_stored_and_read_back(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    data = blob(LIMIT)
    answer = await upload(client, kit, data, "contact")
    assert answer.status_code == 201, answer.text
    file = answer.json()["file"]
    assert file["size"] == LIMIT and len(file["id"]) == 22
    assert await file_rows(kit) == [("stored", LIMIT)]
    got = await client.get(
        f"/api/v1/matters/{kit.ref}/files/{file['id']}", headers=kit.auth("contact")
    )
    assert got.status_code == 200
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["content-disposition"] == f'attachment; filename="{file["id"]}.rta1"'
    assert got.headers["content-length"] == str(LIMIT)
    assert not [p for p in leftovers(uvicorn_server) if p.startswith("tmp")]
    # Stored owner-only, like every data file.
    stored = files_dir(uvicorn_server) / file["id"][:2] / file["id"]
    assert stored.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("declared", ["truthful", "absent", "larger"])
async def test_one_byte_over_the_limit_is_refused(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm, declared: str
) -> None:
    kit = await make_firm()
    data = blob(LIMIT + 1)
    headers = upload_headers(kit, "contact", data)
    url = f"/api/v1/matters/{kit.ref}/files"
    with refusals() as seen:
        if declared == "truthful":
            answer = await client.post(url, content=data, headers=headers)
        elif declared == "absent":  # chunked: the count alone refuses it
            answer = await client.post(url, content=pieces(data), headers=headers)
        else:
            headers["Content-Length"] = str(LIMIT + 100)
            answer = await _raw_post(uvicorn_server, url, headers, data, close=True)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "file_too_large"
        assert answer.json()["error"]["details"] == {"limit": LIMIT}
        assert await seen.wait(1) == ["file_too_large"]
    assert await file_rows(kit) == []
    assert leftovers(uvicorn_server) == []


async def _raw_post(
    server: RunningServer, path: str, headers: dict[str, str], body: bytes, *, close: bool
) -> httpx.Response:
    """A request written by hand (a ``Content-Length`` that lies), its answer parsed.

    ``close``: the client says it sends no more (the server waits for bytes it
    was promised otherwise)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {server.host}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    try:
        writer.write(body)
        await writer.drain()
        if close:
            writer.write_eof()
    except ConnectionError:
        pass  # the server answered and stopped reading: the answer is what counts
    raw_head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, head_raw = raw_head.partition(b"\r\n")
    hdrs = dict(line.decode().split(": ", 1) for line in head_raw.split(b"\r\n") if b": " in line)
    length = int({k.lower(): v for k, v in hdrs.items()}.get("content-length", "0"))
    content = await reader.readexactly(length)
    writer.close()
    return httpx.Response(int(status_line.split()[1]), headers=hdrs, content=content)


async def test_a_false_smaller_length_never_stores_more(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """``Content-Length: LIMIT`` and LIMIT + 1 bytes: HTTP framing makes the body
    LIMIT bytes; they are not the bytes the client hashed, so nothing is stored."""
    kit = await make_firm()
    data = blob(LIMIT + 1)
    headers = {**upload_headers(kit, "contact", data), "Content-Length": str(LIMIT)}
    with refusals() as seen:
        answer = await _raw_post(
            uvicorn_server, f"/api/v1/matters/{kit.ref}/files", headers, data, close=False
        )
        # The LIMIT bytes are refused (not what was hashed), or, if uvicorn reads the
        # byte after them as a malformed next request first, the body ends cut.
        assert await seen.wait(1) == ["bad_request"]
        assert seen.why[0] in ("digest_mismatch", "upload_interrupted")
    assert answer.status_code == 400
    assert await file_rows(kit) == []
    assert leftovers(uvicorn_server) == []


async def test_a_dropped_connection_leaves_nothing(
    uvicorn_server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    data = blob(LIMIT)
    headers = upload_headers(kit, "contact", data)
    _, writer = await asyncio.open_connection(uvicorn_server.host, uvicorn_server.port)
    head = [f"POST /api/v1/matters/{kit.ref}/files HTTP/1.1", "Host: x"]
    head += [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {LIMIT}"]
    with refusals() as seen:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data[: 2 * MB])
        await writer.drain()
        # The pending row exists while the body arrives: the reservation is made.
        async with kit.db.read() as session:
            pending = await session.scalar(
                select(func.count()).select_from(StoredFile).where(StoredFile.state == "pending")
            )
        writer.close()
        await writer.wait_closed()
        assert await seen.wait(1) == ["bad_request"]
        assert seen.why == ["upload_interrupted"]
    assert pending in (0, 1)  # 0 if the server had not read the headers yet
    assert await file_rows(kit) == []
    assert leftovers(uvicorn_server) == []


@pytest.mark.parametrize("declared", [True, False])
async def test_concurrent_uploads_never_pass_the_quota(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm, declared: bool
) -> None:
    """190 MiB used, 45 uploads of 5 MiB at once: exactly 2 fit in 200 MiB."""
    kit = await make_firm()
    async with kit.db.write() as session:
        session.add(
            StoredFile(
                id=new_file_id(),
                matter_id=kit.matter.id,
                uploader_kind="staff",
                uploader_id=kit.staff.id,
                state="stored",
                size=190 * MB,
            )
        )
    data = blob(LIMIT)
    headers = upload_headers(kit, "staff", data)
    url = f"/api/v1/matters/{kit.ref}/files"

    async def one() -> httpx.Response:
        body = data if declared else pieces(data, 1024 * 1024)
        return await client.post(url, content=body, headers=headers)

    answers = await asyncio.gather(*(one() for _ in range(45)))
    codes = sorted(
        a.json()["error"]["code"] if a.status_code >= 400 else str(a.status_code) for a in answers
    )
    assert codes == ["201"] * 2 + ["portal_quota_exceeded"] * 43
    rows = await file_rows(kit)
    assert sum(size for _, size in rows) == 200 * MB
    assert sorted(rows) == sorted([("stored", 190 * MB)] + [("stored", LIMIT)] * 2)
    assert not [p for p in leftovers(uvicorn_server) if p.startswith("tmp")]


async def test_not_rta1_and_a_wrong_digest_are_refused(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/files"
    html = b"<html><script>alert(1)</script></html>" * 10
    answer = await client.post(url, content=html, headers=upload_headers(kit, "staff", html))
    assert (answer.status_code, answer.json()["error"]["details"]["reason"]) == (400, "not_rta1")
    data = blob(1000)
    wrong = {**upload_headers(kit, "staff", data), "Content-Digest": digest_of(b"other")}
    answer = await client.post(url, content=data, headers=wrong)
    assert answer.json()["error"]["details"]["reason"] == "digest_mismatch"
    answer = await client.post(
        url, content=data, headers={**kit.auth("staff"), "Content-Type": "application/octet-stream"}
    )
    assert answer.json()["error"]["details"]["reason"] == "digest_required"
    short = blob(30)
    answer = await client.post(url, content=short, headers=upload_headers(kit, "staff", short))
    assert answer.json()["error"]["details"]["reason"] == "not_rta1"
    assert await file_rows(kit) == []
    assert leftovers(uvicorn_server) == []


async def test_a_firm_sets_its_own_limits(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    patched = await client.patch(
        "/api/v1/firm",
        json={"file_max_bytes": 1000, "portal_quota_bytes": 1500},
        headers=kit.auth("admin"),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["firm"]["file_max_bytes"] == 1000
    assert (await upload(client, kit, blob(1001))).json()["error"]["code"] == "file_too_large"
    assert (await upload(client, kit, blob(1000))).status_code == 201
    answer = await upload(client, kit, blob(600))
    assert answer.json()["error"] == {
        "code": "portal_quota_exceeded",
        "message": "the portal has no room left for this file",
        "details": {"quota": 1500},
    }
    assert (await upload(client, kit, blob(500))).status_code == 201
    for bad in (0, -1, 2**40 + 1, "5", True, 1.5):
        refused = await client.patch(
            "/api/v1/firm", json={"file_max_bytes": bad}, headers=kit.auth("admin")
        )
        assert refused.status_code == 400, bad
    # null: the server's defaults again.
    reset = await client.patch(
        "/api/v1/firm",
        json={"file_max_bytes": None, "portal_quota_bytes": None},
        headers=kit.auth("admin"),
    )
    assert reset.json()["firm"]["file_max_bytes"] is None
    assert (await upload(client, kit, blob(4000))).status_code == 201
    staff = await client.patch(
        "/api/v1/firm", json={"file_max_bytes": 10}, headers=kit.auth("staff")
    )
    assert staff.status_code == 403


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _send(thread: str, cid: str, files: list[str], **payload: object) -> dict[str, object]:
    return {
        "kind": "message",
        "client_id": cid,
        "payload": {"thread": thread, "files": files, **payload},
    }


async def test_download_only_for_those_who_see_the_item(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    other = await make_firm()
    # b: a co-applicant who does not see the others' threads; c: one who does.
    b, b_token = await add_applicant(kit, "Bea", sees=False)
    c, c_token = await add_applicant(kit, "Cal", sees=True)
    removed, removed_token = await kit.add_contact("Rex", matter=kit.matter)
    stranger_matter = await kit.add_matter(title="Elsewhere", members=())
    stranger, stranger_token = await kit.add_contact("Sid", matter=stranger_matter)
    events = f"/api/v1/matters/{kit.ref}/events"

    data = blob(4000)
    fid = (await upload(client, kit, data)).json()["file"]["id"]
    # Unattached: its uploader only.
    assert (
        await client.get(f"/api/v1/matters/{kit.ref}/files/{fid}", headers=kit.auth("contact"))
    ).status_code == 404
    sent = await client.post(
        events, json=_send("t1", "m1", [fid], to=[kit.contact.id]), headers=kit.auth("staff")
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["event"]["payload"]["files"] == [fid]
    # A retry of the same send: the same event, its files still its own.
    again = await client.post(
        events, json=_send("t1", "m1", [fid], to=[kit.contact.id]), headers=kit.auth("staff")
    )
    assert again.status_code == 200, again.text
    await kit.remove_member(removed)

    url = f"/api/v1/matters/{kit.ref}/files/{fid}"
    allowed = {
        "staff": kit.auth("staff"),
        "bot": kit.auth("bot"),
        "the addressee": kit.auth("contact"),
        "a co-applicant who sees applicants": bearer(c_token),
    }
    refused = {
        "a co-applicant who does not": bearer(b_token),
        "a removed client": bearer(removed_token),
        "another matter's client": bearer(stranger_token),
        "staff of another firm": other.auth("staff"),
        "org admin of another firm": other.auth("admin"),
    }
    for who, headers in allowed.items():
        got = await client.get(url, headers=headers)
        assert got.status_code == 200, who
        assert got.content == data, who
    missing = await client.get(
        f"/api/v1/matters/{kit.ref}/files/{new_file_id()}", headers=kit.auth("staff")
    )
    assert missing.status_code == 404
    leaks = 0
    for who, headers in refused.items():
        for path in (
            url,
            f"/api/v1/matters/{kit.ref}/files/{new_file_id()}",
            f"/api/v1/matters/{stranger_matter.reference}/files/{fid}",
        ):
            got = await client.get(path, headers=headers)
            if got.status_code != 404 or data[:64] in got.content:
                leaks += 1
            body = got.json()["error"]
            assert body["code"] == "not_found", (who, path)
    assert leaks == 0
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url)).json()["error"]["code"] == "unauthenticated"
    # Another matter's path for this file: not found even for staff.
    assert (
        await client.get(
            f"/api/v1/matters/{stranger_matter.reference}/files/{fid}", headers=kit.auth("staff")
        )
    ).status_code == 404
    # Uploading: a removed client and another firm's staff find no matter.
    for headers in (bearer(removed_token), other.auth("staff")):
        answer = await client.post(
            f"/api/v1/matters/{kit.ref}/files",
            content=data,
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Content-Digest": digest_of(data),
            },
        )
        assert answer.json()["error"]["code"] == "not_found"
    assert (await client.post(f"/api/v1/matters/{kit.ref}/files", content=data)).status_code == 401
    del b, c, stranger


async def test_an_item_names_only_its_senders_free_files(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    events = f"/api/v1/matters/{kit.ref}/events"
    mine = (await upload(client, kit, blob(100), "contact")).json()["file"]["id"]
    theirs = (await upload(client, kit, blob(100), "staff")).json()["file"]["id"]
    elsewhere_matter = await kit.add_matter(title="Other")
    elsewhere = (
        await client.post(
            f"/api/v1/matters/{elsewhere_matter.reference}/files",
            content=blob(100),
            headers=upload_headers(kit, "contact", blob(100)),
        )
    ).json()["file"]["id"]

    async def send(cid: str, files: object, thread: str = "c1") -> httpx.Response:
        body = {"kind": "message", "client_id": cid, "payload": {"thread": thread, "files": files}}
        return await client.post(events, json=body, headers=kit.auth("contact"))

    for cid, files in (
        ("a", [theirs]),
        ("b", [elsewhere]),
        ("c", [mine, theirs]),
        ("d", [new_file_id()]),
    ):
        answer = await send(cid, files)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["details"]["reason"] == "no_such_file"
    malformed: list[tuple[str, object]] = [
        ("e", []),
        ("f", [mine, mine]),
        ("g", ["short"]),
        ("h", "x"),
    ]
    for cid, bad in malformed:
        answer = await send(cid, bad)
        assert answer.status_code == 400, answer.text
    assert (await send("ok", [mine])).status_code == 201
    # Attached once: another item cannot take it.
    answer = await send("again", [mine], thread="c2")
    assert answer.json()["error"]["details"]["reason"] == "no_such_file"
    # Nothing half-written by the refusals: one message in the matter's log.
    page = (await client.get(events, params={"after": 0}, headers=kit.auth("staff"))).json()
    assert [e["kind"] for e in page["events"]] == ["message"]


async def test_a_deleted_items_files_are_gone(
    uvicorn_server: RunningServer, client: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    events = f"/api/v1/matters/{kit.ref}/events"
    fid = (await upload(client, kit, blob(2000), "contact")).json()["file"]["id"]
    sent = await client.post(events, json=_send("d1", "m1", [fid]), headers=kit.auth("contact"))
    item = sent.json()["event"]["payload"]["item"]
    deleted = await client.post(
        events,
        json={"kind": "delete", "client_id": "del1", "payload": {"item": item}},
        headers=kit.auth("contact"),
    )
    assert deleted.status_code == 201, deleted.text
    got = await client.get(f"/api/v1/matters/{kit.ref}/files/{fid}", headers=kit.auth("staff"))
    assert got.status_code == 404
    assert await file_rows(kit) == []
    assert leftovers(uvicorn_server) == []


async def test_a_stalled_upload_is_refused_and_leaves_nothing(
    settings: Settings, make_firm: MakeFirm
) -> None:
    """A body that stops arriving: refused after RTPORTAL_UPLOAD_IDLE_TIMEOUT, cleaned up."""
    kit = await make_firm()
    quick = dataclasses.replace(settings, upload_idle_timeout=0.3)
    async with running_server(create_app(quick)) as server:
        data = blob(LIMIT)
        headers = {**upload_headers(kit, "contact", data), "Content-Length": str(LIMIT)}
        _, writer = await asyncio.open_connection(server.host, server.port)
        head = [f"POST /api/v1/matters/{kit.ref}/files HTTP/1.1", "Host: x"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        with refusals() as seen:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data[:MB])
            await writer.drain()
            assert await seen.wait(1) == ["bad_request"]
            assert seen.why == ["upload_stalled"]
        writer.close()
        assert await file_rows(kit) == []
        assert leftovers(server) == []


async def test_a_dead_workers_upload_is_swept_at_start(
    settings: Settings, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    old = utcnow() - timedelta(hours=2)
    async with kit.db.write() as session:
        for state, created in (("pending", old), ("pending", utcnow()), ("stored", old)):
            session.add(
                StoredFile(
                    id=new_file_id(),
                    matter_id=kit.matter.id,
                    uploader_kind="staff",
                    uploader_id=kit.staff.id,
                    state=state,
                    size=100,
                    created_at=created,
                )
            )
    tmp = Path(settings.files_dir) / "tmp"
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    stale, fresh = tmp / "dead.part", tmp / "live.part"
    for part in (stale, fresh):
        await asyncio.to_thread(part.write_bytes, b"RTA1")
    stamp = old.timestamp()
    await asyncio.to_thread(os.utime, stale, (stamp, stamp))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    # The stale pending row and temporary file went; a fresh upload's and stored rows stay.
    assert sorted(await file_rows(kit)) == [("pending", 100), ("stored", 100)]
    assert not await asyncio.to_thread(stale.exists)
    assert await asyncio.to_thread(fresh.exists)
