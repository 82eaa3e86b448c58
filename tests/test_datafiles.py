"""Data files are owner-only: the app's startup on a data directory leaves
the directories 0700 and the database (with its WAL and SHM), and the
generated secret 0600, whether the directory is new or was left permissive
by an older version or a loose umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rtportal.app import create_app
from rtportal.settings import Settings
from tests.support.server import running_server


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask (022): files would be world-readable without care."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _env(data_dir: Path) -> dict[str, str]:
    # No secret and no database URL: the generated secret.key and the
    # default SQLite database both go into the data directory.
    return {"RTPORTAL_DATA_DIR": str(data_dir), "RTPORTAL_BROKER_URL": "memory://"}


async def _start_and_write(settings: Settings) -> None:
    """Run the app's startup in a real server and make it write (WAL in use)."""
    async with (
        running_server(create_app(settings)) as srv,
        httpx.AsyncClient(base_url=srv.base_url) as http,
    ):
        # An unknown token is refused after a database read: the server's
        # connection has the database open in WAL mode, with its WAL and SHM.
        response = await http.get("/api/v1/me", headers={"Authorization": "Bearer " + "x" * 43})
        assert response.status_code == 401
        data_dir = settings.data_dir
        assert (data_dir / "rtportal.db-wal").exists()
        assert (data_dir / "rtportal.db-shm").exists()
        _assert_private(data_dir, settings.files_dir)


def _assert_private(data_dir: Path, files_dir: Path) -> None:
    modes = {
        p.name: _mode(p)
        for p in (
            data_dir,
            files_dir,
            data_dir / "secret.key",
            data_dir / "rtportal.db",
            data_dir / "rtportal.db-wal",
            data_dir / "rtportal.db-shm",
        )
    }
    assert modes == {
        data_dir.name: 0o700,
        files_dir.name: 0o700,
        "secret.key": 0o600,
        "rtportal.db": 0o600,
        "rtportal.db-wal": 0o600,
        "rtportal.db-shm": 0o600,
    }


@pytest.mark.usefixtures("loose_umask")
async def test_a_fresh_data_dir_is_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    await _start_and_write(Settings.from_env(_env(data_dir)))


@pytest.mark.usefixtures("loose_umask")
async def test_a_permissive_existing_data_dir_is_narrowed(tmp_path: Path) -> None:
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o755)
    (data_dir / "files").mkdir(mode=0o755)
    (data_dir / "secret.key").write_text("ab" * 32 + "\n")
    (data_dir / "secret.key").chmod(0o644)
    (data_dir / "rtportal.db").touch(mode=0o644)
    assert _mode(data_dir) == 0o755
    await _start_and_write(Settings.from_env(_env(data_dir)))
