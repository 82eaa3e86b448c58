"""The web client's files, served from an allow-list of what a page needs.

The ``static/`` tree also holds what only developers use: the crypto
library's tests and tools, its browser self-check page, READMEs, package
manifests. Those are not served: a path through a folder named in
``HIDDEN_DIRS`` (or any dot folder or dot file) and any file whose suffix
is not in ``SERVED_SUFFIXES`` answers 404, as if it did not exist. The rule
names kinds of files, not paths, so it holds however ``static/`` is laid out.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["HIDDEN_DIRS", "SERVED_SUFFIXES", "PortalStatic", "served"]

# What pages load: markup, modules, styles, images, fonts, WebAssembly.
SERVED_SUFFIXES = frozenset(
    {".html", ".js", ".css", ".svg", ".png", ".ico", ".webp", ".woff2", ".wasm"}
)
# Folders of development tooling, never part of a page.
HIDDEN_DIRS = frozenset({"test", "tests", "tools", "browser", "node_modules", "bench"})


def served(path: str) -> bool:
    """Whether the file at ``path`` (relative to the static root) may be served.

    A path without a suffix is a directory: ``html`` mode serves its
    ``index.html`` (or 404).
    """
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if any(p in HIDDEN_DIRS or (p.startswith(".") and p not in (".", "..")) for p in parts):
        return False
    suffix = PurePosixPath(parts[-1]).suffix if parts else ""
    return suffix == "" or suffix in SERVED_SUFFIXES


class PortalStatic(StaticFiles):
    """``StaticFiles`` serving only what ``served`` allows (404 otherwise)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not served(path):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)
