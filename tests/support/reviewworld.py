"""The review inbox's test helpers: a client's message over HTTP, the inbox's reads."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import FirmKit


async def client_says(
    http: httpx.AsyncClient,
    kit: FirmKit,
    thread: str,
    client_id: str,
    *,
    headers: dict[str, str] | None = None,
    ref: str | None = None,
) -> httpx.Response:
    """A client's message item (a new thread or a reply) through the HTTP API."""
    body = {
        "kind": "message",
        "audience": "portal",
        "payload": {"thread": thread},
        "client_id": client_id,
    }
    return await http.post(
        f"/api/v1/matters/{ref or kit.ref}/events",
        json=body,
        headers=headers or kit.auth("contact"),
    )


async def inbox(
    http: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every row of the caller's inbox, page after page."""
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = dict(params)
        if after is not None:
            query["after"] = after
        response = await http.get("/api/v1/reviews", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["reviews"])
        after = body["next"]
        if after is None:
            return rows


async def counts(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    response = await http.get("/api/v1/reviews/count", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, int] = response.json()
    return body
