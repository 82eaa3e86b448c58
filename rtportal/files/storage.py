"""The storage contract of files, and the backend chosen by URL.

A backend stores opaque blobs by key. ``put`` consumes a stream into a
temporary object and makes it visible under its key only once the stream
ended without error: a reader never sees part of a blob, and a stream that
raises (a limit, a client gone) leaves nothing behind. The callers keep
the ``files`` rows; a backend knows nothing of matters or quotas.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from rtportal.errors import InvalidConfig
from rtportal.settings import Settings

__all__ = ["Storage", "storage_for"]


class Storage(Protocol):
    def prepare(self) -> None:
        """Make ready to store (the app's start, once): directories, buckets."""
        ...

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the whole stream under ``key``; its length. Nothing is kept if it raises."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes in pieces (``NotFound`` from the first step if absent)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; an absent key is not an error."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored length, or ``None`` if absent."""
        ...

    async def sweep(self, older_than: float) -> int:
        """Remove temporary objects older than ``older_than`` seconds (a dead
        worker's); how many."""
        ...


def storage_for(settings: Settings) -> Storage:
    """The backend of ``RTPORTAL_FILES_URL``: unset or ``file:///path`` the local
    directory (``files_dir`` when unset); ``s3://bucket[/prefix]?endpoint=&region=``
    an S3-compatible store (uploads spooled in ``files_dir/tmp``); anything else
    ``InvalidConfig``."""
    from rtportal.files.localstore import LocalStorage

    url = settings.files_url
    if url is None:
        return LocalStorage(settings.files_dir)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from rtportal.files.s3store import s3_from_url

        return s3_from_url(url, settings.files_dir / "tmp")
    raise InvalidConfig(f"RTPORTAL_FILES_URL: unsupported storage {parts.scheme or url!r}")
