"""Files in an S3-compatible object store (``s3://bucket/prefix?endpoint=&region=``).

An upload streams into a local temporary file first (``<files dir>/tmp/``,
as the local backend does: counted and checked as it arrives, never whole
in memory), then goes up with one ``upload_file`` (boto3 switches to a
multipart upload for large files by itself): the object appears under its
key only once the upload is complete, and a stream that fails never
reaches the store. Reads stream the object's body a piece at a time.
boto3 is synchronous: every call runs in a worker thread. Credentials come
from boto3's usual sources (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
a profile, an instance role), never from the URL. Needs the ``s3`` extra
(``pip install rtportal[s3]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rtportal.datafiles import private_dir
from rtportal.errors import InvalidConfig, NotFound
from rtportal.files.localstore import READ_CHUNK, spool, sweep_parts

__all__ = ["S3Storage", "s3_from_url"]

_MISSING = ("404", "NoSuchKey", "NotFound")


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return str(code) in _MISSING


class S3Storage:
    """``Storage`` on a bucket (keys under ``prefix``); ``tmp`` spools uploads."""

    __slots__ = ("bucket", "client", "prefix", "tmp")

    def __init__(self, client: Any, bucket: str, prefix: str, tmp: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.tmp = tmp

    def prepare(self) -> None:
        private_dir(self.tmp)

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        part, size = await spool(self.tmp, chunks)
        try:
            await asyncio.to_thread(self.client.upload_file, str(part), self.bucket, self._key(key))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            got = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except Exception as exc:
            if _missing(exc):
                raise NotFound("no such file") from None
            raise
        body = got["Body"]
        try:
            while piece := await asyncio.to_thread(body.read, READ_CHUNK):
                yield piece
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(
                self.client.head_object, Bucket=self.bucket, Key=self._key(key)
            )
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(sweep_parts, self.tmp, older_than)


def s3_from_url(url: str, tmp: Path) -> S3Storage:
    """``s3://bucket[/prefix]?endpoint=<url>&region=<name>`` (both optional)."""
    try:
        import boto3  # type: ignore[import-untyped]  # no stubs: the client is typed Any here
    except ImportError:
        raise InvalidConfig(
            "RTPORTAL_FILES_URL s3:// needs boto3 (pip install rtportal[s3])"
        ) from None
    parts = urlsplit(url)
    if not parts.netloc:
        raise InvalidConfig("RTPORTAL_FILES_URL: s3://<bucket>[/prefix] names a bucket")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"endpoint", "region"}
    if unknown:
        raise InvalidConfig(f"RTPORTAL_FILES_URL: unknown parameters {sorted(unknown)}")
    prefix = parts.path.strip("/")
    client = boto3.client("s3", endpoint_url=query.get("endpoint"), region_name=query.get("region"))
    return S3Storage(client, parts.netloc, f"{prefix}/" if prefix else "", tmp)
