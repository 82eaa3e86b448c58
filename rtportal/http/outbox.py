"""``GET /api/v1/outbox``: the firm's email and SMS, newest first (org admins).

A held row (no provider configured) shows its body: that is how the
message reaches its reader in a deployment without SMTP or SMS. A row a
provider took keeps no body (it may have held a login link).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rtportal.access import roles
from rtportal.db.models import OutboxMessage
from rtportal.http.context import db_of, ok, principal_of
from rtportal.http.errors import json_endpoint
from rtportal.http.paging import newest_first, page_params

__all__ = ["message_body", "routes"]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def message_body(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "transport": row.transport,
        "recipient": row.recipient,
        "subject": row.subject,
        "body": row.body if row.status == "held" else None,
        "status": row.status,
        "error": row.error,
        "attempts": row.attempts,
        "invite_id": row.invite_id,
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
    }


@json_endpoint
async def list_outbox(request: Request) -> Response:
    page_params(request)  # a bad query string is refused before authentication work
    principal = await principal_of(request)
    roles.require(principal, "outbox.read")
    query = select(OutboxMessage).where(OutboxMessage.firm_id == principal.firm_id)
    async with db_of(request).read() as session:
        rows, cursor = await newest_first(session, query, OutboxMessage.id, request)
    return ok({"messages": [message_body(r) for r in rows], "next": cursor})


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/outbox", list_outbox, methods=["GET"])]
