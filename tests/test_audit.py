"""The audit log: concurrent appends never fork the chain, tampering is found by
verify (and by `rtportal audit verify`), org admins read and export it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys

import httpx
from sqlalchemy import delete, select, update

from rtportal.access import audit
from rtportal.db import Database
from rtportal.db.models import AuditEntry, Firm
from rtportal.settings import Settings
from tests.conftest import TEST_SECRET_HEX, FirmKit, MakeFirm

# The export's documented columns (docs/api.md), in order.
HEADER = (
    "seq,at,actor_kind,actor_id,action,target_kind,target_id,matter_id,address,detail,prev_hash,hash"
).split(",")


async def _record(kit: FirmKit, n: int, *, action: str = "signin.ok") -> None:
    for i in range(n):
        async with kit.db.write() as session:
            await audit.record(
                session,
                firm_id=kit.firm_id,
                action=action,
                actor=kit.admin,
                target=("staff", kit.staff.id),
                address="192.0.2.7",
                detail={"n": i, "email": f"user{i}@firm.test"},
            )


async def _slug(kit: FirmKit) -> str:
    async with kit.db.read() as session:
        firm = await session.get(Firm, kit.firm_id)
        assert firm is not None
        return firm.slug


async def test_concurrent_records_never_fork(make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()

    async def one(i: int) -> None:
        async with db.write() as session:
            await audit.record(session, firm_id=kit.firm_id, action="invite.sent", detail={"i": i})

    await asyncio.gather(*(one(i) for i in range(20)))
    assert await audit.verify_firm(db, kit.firm_id) == 20
    async with db.read() as session:
        seqs = list(
            await session.scalars(
                select(AuditEntry.firm_seq)
                .where(AuditEntry.firm_id == kit.firm_id)
                .order_by(AuditEntry.firm_seq)
            )
        )
        details = sorted(
            json.loads(d)["i"]
            for d in await session.scalars(
                select(AuditEntry.detail).where(AuditEntry.firm_id == kit.firm_id)
            )
        )
    assert seqs == list(range(1, 21))
    assert details == list(range(20))


async def _broken_at(db: Database, firm_id: int) -> tuple[int, str]:
    try:
        await audit.verify_firm(db, firm_id)
    except audit.ChainBroken as broken:
        return broken.firm_seq, broken.why
    raise AssertionError("the tampered chain verified")


async def _entry(db: Database, firm_id: int, seq: int) -> AuditEntry:
    async with db.read() as session:
        row = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.firm_id == firm_id, AuditEntry.firm_seq == seq)
            )
        ).one()
    return row


async def test_tampering_is_detected(make_firm: MakeFirm, db: Database) -> None:
    kits = [await make_firm() for _ in range(3)]
    for kit in kits:
        await _record(kit, 5)
        assert await audit.verify_firm(db, kit.firm_id) == 5
    edited, rehashed, deleted = kits
    where = AuditEntry.firm_seq == 3

    try:
        async with db.write() as session:
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.firm_id == edited.firm_id, where)
                .values(detail='{"n":99}')
            )
        assert await _broken_at(db, edited.firm_id) == (3, "hash does not match the entry")

        # A forger who also recomputes the edited entry's hash breaks the next link.
        forged = await _entry(db, rehashed.firm_id, 3)
        forged.action = "signin.failed"
        async with db.write() as session:
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.firm_id == rehashed.firm_id, where)
                .values(action="signin.failed", hash=audit.entry_hash(forged.prev_hash, forged))
            )
        assert await _broken_at(db, rehashed.firm_id) == (
            4,
            "prev_hash does not match the previous entry",
        )

        async with db.write() as session:
            await session.execute(
                delete(AuditEntry).where(AuditEntry.firm_id == deleted.firm_id, where)
            )
        assert await _broken_at(db, deleted.firm_id) == (3, "sequence gap (found 4)")
    finally:
        # The shared PostgreSQL test database keeps every chain valid for other tests.
        async with db.write() as session:
            for kit in kits:
                await session.execute(delete(AuditEntry).where(AuditEntry.firm_id == kit.firm_id))


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "RTPORTAL_DATA_DIR": str(settings.data_dir),
        "RTPORTAL_DATABASE_URL": settings.database_url,
        "RTPORTAL_SECRET_KEY": TEST_SECRET_HEX,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtportal",
        "audit",
        "verify",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_verify(make_firm: MakeFirm, db: Database, settings: Settings) -> None:
    kit = await make_firm()
    await _record(kit, 4)
    slug = await _slug(kit)
    code, out = await _cli(settings, "--firm", slug)
    assert code == 0, out
    assert f"firm {slug}: 4 entries, chain ok" in out
    assert "1 firms, 4 entries verified" in out
    code, out = await _cli(settings)
    assert code == 0, out
    assert f"firm {slug}: 4 entries, chain ok" in out

    try:
        async with db.write() as session:
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.firm_id == kit.firm_id, AuditEntry.firm_seq == 2)
                .values(address="198.51.100.1")
            )
        code, out = await _cli(settings, "--firm", slug)
        assert code == 1, out
        assert f"audit chain BROKEN: firm {slug}: entry 2: hash does not match the entry" in out
    finally:
        async with db.write() as session:
            await session.execute(delete(AuditEntry).where(AuditEntry.firm_id == kit.firm_id))

    code, out = await _cli(settings, "--firm", "no-such-firm")
    assert code == 1 and "[not_found]" in out, out


async def test_audit_list_and_exports(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kit = await make_firm()
    other = await make_firm()
    await _record(kit, 7)
    await _record(other, 2, action="other.firm")

    r = await http.get("/api/v1/audit?limit=3", headers=kit.auth("admin"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [e["seq"] for e in page["entries"]] == [7, 6, 5]
    first = page["entries"][0]
    assert first["action"] == "signin.ok" and first["address"] == "192.0.2.7"
    assert first["detail"] == {"n": 6, "email": "user6@firm.test"}
    assert first["actor_kind"] == "staff" and first["actor_id"] == kit.admin.id
    assert len(first["hash"]) == 64
    r = await http.get(f"/api/v1/audit?limit=5&before={page['next']}", headers=kit.auth("admin"))
    assert [e["seq"] for e in r.json()["entries"]] == [4, 3, 2, 1]
    assert r.json()["next"] is None

    r = await http.get("/api/v1/audit/export?format=csv", headers=kit.auth("admin"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="audit-') and disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == HEADER
    assert [row[0] for row in rows[1:]] == [str(n) for n in range(1, 8)]
    assert all(row[4] == "signin.ok" for row in rows[1:])
    assert json.loads(rows[3][9]) == {"email": "user2@firm.test", "n": 2}
    assert rows[2][10] == rows[1][11]  # each row's prev_hash is the previous row's hash

    r = await http.get("/api/v1/audit/export?format=json", headers=kit.auth("admin"))
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith('.json"')
    entries = r.json()
    assert [e["seq"] for e in entries] == list(range(1, 8))
    assert not any(e["action"] == "other.firm" for e in entries)

    for who in ("staff", "contact", "bot"):
        for path in ("/api/v1/audit", "/api/v1/audit/export"):
            r = await http.get(path, headers=kit.auth(who))
            # Staff: forbidden; clients and bots: the log does not exist for them.
            expected = (403, "forbidden") if who == "staff" else (404, "not_found")
            assert (r.status_code, r.json()["error"]["code"]) == expected, (who, path)
    r = await http.get("/api/v1/audit/export?format=xml", headers=kit.auth("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = await http.get("/api/v1/audit")
    assert r.status_code == 401


async def test_empty_exports(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kit = await make_firm()
    r = await http.get("/api/v1/audit/export?format=json", headers=kit.auth("admin"))
    assert r.json() == []
    r = await http.get("/api/v1/audit/export", headers=kit.auth("admin"))
    assert r.text.splitlines() == [",".join(HEADER)]
