"""The dump canary's search: unique known plaintexts looked for in everything the server keeps.

A scenario drives unique strings (messages, subjects, notes, passwords,
invite secrets) through the real server; ``search`` then reads the database
as stored (the SQLite file with its side files, or ``pg_dump --data-only``),
every file under the file store directory and every log line the in-process
server wrote (``server_log``, at DEBUG), and reports each haystack's size and
hit count, so a test prints what it searched and asserts 0 hits. Secrets that
are bytes are looked for raw, base64url and hex.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rtportal import base64url


def canary(what: str) -> str:
    """A unique plaintext no code writes by chance."""
    return f"canary-{what}-{secrets.token_hex(8)}"


def needles(texts: Sequence[str], raw: Sequence[bytes] = ()) -> list[bytes]:
    """What to look for: each text, and each secret raw, base64url and hex."""
    out = [t.encode() for t in texts]
    for r in raw:
        out += [r, base64url.encode(r).encode(), r.hex().encode()]
    return out


def sqlite_bytes(path: Path) -> bytes:
    """The database file and its side files (the WAL holds recent pages)."""
    sides = [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal")]
    return b"".join(p.read_bytes() for p in [path, *sides] if p.exists())


async def database_dump(url: str) -> tuple[str, bytes]:
    """(what was read, its bytes): the SQLite file, or the PostgreSQL database's data."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return f"SQLite file {path.name} (+ -wal/-journal)", await asyncio.to_thread(
            sqlite_bytes, path
        )
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    proc = await asyncio.to_thread(
        subprocess.run, ["pg_dump", "--data-only", plain], capture_output=True, check=True
    )
    return "pg_dump --data-only", proc.stdout


def file_store(root: Path) -> tuple[str, bytes, int]:
    """Every file under the file store: (what, their bytes, how many files)."""
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return f"file store {root}", b"".join(p.read_bytes() for p in files), len(files)


@dataclass
class Haystack:
    what: str
    data: bytes
    found: list[bytes] = field(default_factory=list)  # the needles in it

    @property
    def hits(self) -> int:
        return len(self.found)


class _Capture(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@contextmanager
def server_log() -> Iterator[list[str]]:
    """Every log line of the in-process server (rtportal, uvicorn, root) at DEBUG."""
    lines: list[str] = []
    handler = _Capture(lines)
    loggers = [logging.getLogger(n) for n in ("rtportal", "uvicorn", "uvicorn.access", "")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The server's log lines while the test runs (ask for it before the server)."""
    with server_log() as lines:
        yield lines


async def search(
    database_url: str, files_dir: Path, log: list[str], found: list[bytes]
) -> list[Haystack]:
    """Each haystack with the number of ``found`` needles in it; printed for the test log."""
    db_what, db_data = await database_dump(database_url)
    fs_what, fs_data, n_files = await asyncio.to_thread(file_store, files_dir)
    stacks = [
        Haystack(db_what, db_data),
        Haystack(f"{fs_what} ({n_files} files)", fs_data),
        Haystack(f"server log ({len(log)} lines)", "\n".join(log).encode("utf-8", "replace")),
    ]
    for stack in stacks:
        stack.found = [n for n in found if n in stack.data]
    print(f"dump canary: {len(found)} needles (texts; secrets raw, base64url and hex)")
    for stack in stacks:
        print(f"  {stack.what}: {len(stack.data)} bytes, {stack.hits} hits {stack.found[:3]!r}")
    return stacks
