"""Request bodies of the HTTP API: read with a byte cap, then parsed by the JSON rule.

The body is refused (``payload_too_large``) as soon as its declared or
received size passes the endpoint's limit, before it is buffered whole;
then it must be ``application/json`` (also a CSRF guard: HTML forms cannot
send it) holding one JSON object within ``rtportal.jsonlimits``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from rtportal import jsonlimits
from rtportal.errors import BadRequest, PayloadTooLarge

__all__ = ["json_object", "read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"request body is over {limit} bytes")
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, limit: int, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object at most ``jsonlimits.MAX_DOCUMENT_DEPTH`` deep."""
    body = await read_body(request, limit)
    if not body.strip():
        if allow_empty:
            return {}
        raise BadRequest("a JSON object body is required")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest("Content-Type must be application/json")
    value = jsonlimits.loads(body, "body")
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    jsonlimits.check_depth(value, jsonlimits.MAX_DOCUMENT_DEPTH, "body")
    return value
