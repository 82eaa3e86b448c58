"""Files over HTTP (docs/files.md): the streamed upload and the download.

``POST /api/v1/matters/{ref}/files`` streams the request body into the
storage (``rtportal.files.upload``): never whole in memory, counted as it
arrives. ``GET /api/v1/matters/{ref}/files/{id}`` streams a stored blob to
those who see the item that attaches it (``rtportal.files.readable``), as
an attachment the browser never renders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from rtportal.access.membership import can_access
from rtportal.errors import BadRequest, NotFound
from rtportal.files.readable import readable_file
from rtportal.files.rows import file_body, firm_limits
from rtportal.files.upload import parse_digest, receive
from rtportal.http.context import db_of, ok, principal_of, runtime_of
from rtportal.http.errors import json_endpoint

__all__ = ["DOWNLOAD_HEADERS", "routes"]

# A download is bytes to save, never a page: no sniffing, no rendering in the
# portal's origin (an HTML or SVG blob is ciphertext here, but the rule holds
# for whatever the server is made to hold).
DOWNLOAD_HEADERS = {
    "Content-Type": "application/octet-stream",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "no-store",
}


def _declared(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest("invalid Content-Length")
    return int(raw)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The body's pieces as they arrive; a client gone mid-body is an error here."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise BadRequest("the client went away", reason="upload_interrupted") from None


@json_endpoint
async def upload(request: Request) -> Response:
    principal = await principal_of(request)
    runtime = runtime_of(request)
    # The matter first: a caller who may not see it learns nothing from the body's checks.
    async with db_of(request).read() as session:
        matter = await can_access(session, principal, request.path_params["ref"])
        limits = await firm_limits(session, principal.firm_id, runtime.settings)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/octet-stream":
        raise BadRequest("Content-Type must be application/octet-stream")
    digest = parse_digest(request.headers.get("content-digest"))
    declared = _declared(request)
    # One upload spends one write token, as a send does (rtportal.limits).
    runtime.limits.check_write(principal)
    row = await receive(
        runtime.db,
        runtime.files,
        principal,
        matter.id,
        limits,
        _body(request),
        declared=declared,
        digest=digest,
        idle=runtime.settings.upload_idle_timeout,
    )
    return ok({"file": file_body(row)}, status=201)


@json_endpoint
async def download(request: Request) -> Response:
    principal = await principal_of(request)
    runtime = runtime_of(request)
    file_id = request.path_params["file"]
    async with db_of(request).read() as session:
        row = await readable_file(session, principal, request.path_params["ref"], file_id)
    size = await runtime.files.size(row.id)
    if size is None:  # a row whose blob is gone (removed by hand): nothing to serve
        raise NotFound("no such file")
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{row.id}.rta1"',
    }
    return StreamingResponse(runtime.files.open(row.id), headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/matters/{ref}/files", upload, methods=["POST"]),
        Route("/api/v1/matters/{ref}/files/{file}", download, methods=["GET"]),
    ]
