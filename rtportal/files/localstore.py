"""Files in a local directory, written with aiofiles.

Layout: ``<dir>/tmp/<random>.part`` while a blob arrives, then
``<dir>/<first 2 chars of the key>/<key>`` (``os.replace``: atomic on one
file system, and ``tmp/`` is inside the directory so it is the same one).
Directories are 0700 and files 0600 (``rtportal.datafiles``): other local
users read nothing, even ciphertext.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os

from rtportal.datafiles import DIR_MODE, FILE_MODE, private_dir
from rtportal.errors import NotFound

__all__ = ["READ_CHUNK", "LocalStorage", "spool", "sweep_parts"]

READ_CHUNK = 64 * 1024  # one RTA1 chunk and its tag fit in two reads
_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


async def spool(tmp: Path, chunks: AsyncIterable[bytes]) -> tuple[Path, int]:
    """The whole stream in a new 0600 file of ``tmp``: its path and length. If the
    stream raises (a limit, a client gone, a cancelled task) the file is removed."""
    part = tmp / f"{secrets.token_hex(12)}.part"
    size = 0
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        async with aiofiles.open(fd, "wb") as out:
            async for chunk in chunks:
                await out.write(chunk)
                size += len(chunk)
    except BaseException:
        # Not awaited in a thread: a cancelled task may not get to run another await.
        part.unlink(missing_ok=True)
        raise
    return part, size


def sweep_parts(tmp: Path, older_than: float) -> int:
    """Remove ``tmp``'s temporary files older than ``older_than`` seconds; how many."""
    cutoff = time.time() - older_than
    removed = 0
    for part in tmp.glob("*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class LocalStorage:
    """``Storage`` on a directory of this machine."""

    __slots__ = ("root", "tmp")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def prepare(self) -> None:
        """Create the directories (0700); the app's start calls it once."""
        private_dir(self.root)
        private_dir(self.tmp)

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):  # never a path of the caller's making
            raise NotFound("no such file")
        return self.root / key[:2] / key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self.path(key)
        part, size = await spool(self.tmp, chunks)
        try:
            await aiofiles.os.makedirs(final.parent, mode=DIR_MODE, exist_ok=True)
            await aiofiles.os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            async with aiofiles.open(self.path(key), "rb") as handle:
                while piece := await handle.read(READ_CHUNK):
                    yield piece
        except FileNotFoundError:  # only its opening can be: nothing was yielded
            raise NotFound("no such file") from None

    async def delete(self, key: str) -> None:
        try:
            await aiofiles.os.remove(self.path(key))
        except FileNotFoundError:
            pass

    async def size(self, key: str) -> int | None:
        try:
            return (await aiofiles.os.stat(self.path(key))).st_size
        except FileNotFoundError:
            return None

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(sweep_parts, self.tmp, older_than)
