"""The files peer: a minimal starlette app that stores a request body and serves it back.

What a Python team writes first for uploads, and the floor bench.files
measures rtportal's files against: ``POST /files`` streams the body
(``request.stream()``) with aiofiles into ``<dir>/tmp/<id>.part`` and renames it
into place (as rtportal's local storage does); ``GET /files/{id}`` is a
``FileResponse``. No auth, no database, no quota, no hashing, no format check:
whatever rtportal does on top is the overhead measured against this.
``BENCH_FILES_DIR`` is the directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import aiofiles
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

__all__ = ["app"]

ROOT = Path(os.environ["BENCH_FILES_DIR"])
TMP = ROOT / "tmp"
TMP.mkdir(parents=True, exist_ok=True)


async def upload(request: Request) -> Response:
    key = secrets.token_urlsafe(16)
    part = TMP / f"{key}.part"
    size = 0
    async with aiofiles.open(part, "wb") as out:
        async for chunk in request.stream():
            await out.write(chunk)
            size += len(chunk)
    os.replace(part, ROOT / key)
    return JSONResponse({"file": {"id": key, "size": size}}, status_code=201)


async def download(request: Request) -> Response:
    key = request.path_params["file"]
    path = ROOT / key
    if "/" in key or not path.is_file():
        return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
    return FileResponse(path, media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/files", upload, methods=["POST"]),
        Route("/files/{file}", download, methods=["GET"]),
    ]
)
