"""The firm's audit log for org admins: ``GET /api/v1/audit`` (newest first,
paged) and ``GET /api/v1/audit/export?format=csv|json`` (the whole chain,
oldest first, streamed a page at a time as an attachment)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from rtportal.access import audit, roles
from rtportal.db import Database
from rtportal.db.models import AuditEntry, Firm, utcnow
from rtportal.errors import BadRequest, NotFound
from rtportal.http.context import db_of, ok, principal_of
from rtportal.http.errors import json_endpoint
from rtportal.http.paging import newest_first, page_params

__all__ = ["CSV_COLUMNS", "entry_body", "routes"]

CSV_COLUMNS = (
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "action",
    "target_kind",
    "target_id",
    "matter_id",
    "address",
    "detail",
    "prev_hash",
    "hash",
)


def _detail(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a tampered row still shows (verify names it)


def entry_body(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.firm_seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target_id": entry.target_id,
        "matter_id": entry.matter_id,
        "address": entry.address,
        "detail": _detail(entry.detail),
        "prev_hash": entry.prev_hash.hex(),
        "hash": entry.hash.hex(),
    }


@json_endpoint
async def list_audit(request: Request) -> Response:
    page_params(request)  # a bad query string is refused before authentication work
    principal = await principal_of(request)
    roles.require(principal, "audit.read")
    query = select(AuditEntry).where(AuditEntry.firm_id == principal.firm_id)
    async with db_of(request).read() as session:
        rows, cursor = await newest_first(session, query, AuditEntry.firm_seq, request)
    return ok({"entries": [entry_body(e) for e in rows], "next": cursor})


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


async def _csv(db: Database, firm_id: int) -> AsyncIterator[str]:
    yield _csv_line(list(CSV_COLUMNS))
    async for rows in audit.chain_pages(db, firm_id):
        chunk = io.StringIO()
        writer = csv.writer(chunk, lineterminator="\r\n")
        for entry in rows:
            body = entry_body(entry)
            body["detail"] = entry.detail  # the stored text, exactly as hashed
            writer.writerow(["" if body[c] is None else body[c] for c in CSV_COLUMNS])
        yield chunk.getvalue()


async def _json(db: Database, firm_id: int) -> AsyncIterator[str]:
    yield "["
    first = True
    async for rows in audit.chain_pages(db, firm_id):
        parts = [json.dumps(entry_body(e), separators=(",", ":")) for e in rows]
        yield ("" if first else ",") + ",".join(parts)
        first = False
    yield "]"


@json_endpoint
async def export_audit(request: Request) -> Response:
    kind = request.query_params.get("format", "csv")
    if kind not in ("csv", "json"):
        raise BadRequest("format must be csv or json")
    principal = await principal_of(request)
    roles.require(principal, "audit.read")
    db = db_of(request)
    async with db.read() as session:
        firm = await session.get(Firm, principal.firm_id)
    if firm is None:
        raise NotFound("no such firm")
    name = f"audit-{firm.slug}-{utcnow():%Y%m%dT%H%M%SZ}.{kind}"
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    body = _csv(db, firm.id) if kind == "csv" else _json(db, firm.id)
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/audit", list_audit, methods=["GET"]),
        Route("/api/v1/audit/export", export_audit, methods=["GET"]),
    ]
