"""Settings from the environment, and the generated secret key."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from rtportal.errors import InvalidConfig
from rtportal.settings import Settings


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"RTPORTAL_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path.resolve()
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'rtportal.db'}"
    assert s.broker_url == "memory://"
    assert s.files_dir == tmp_path.resolve() / "files"
    assert s.allowed_origins == ("http://127.0.0.1:8000", "http://localhost:8000")
    assert s.public_url == "http://127.0.0.1:8000"
    assert (s.ws_max_frame_bytes, s.ws_send_queue, s.backlog_limit) == (1_048_576, 1024, 1000)
    assert (s.history_page_max, s.event_payload_max, s.event_blob_max) == (500, 65_536, 262_144)
    assert s.hub_poll_interval == 2.0
    assert (s.handshake_timeout, s.max_connections_per_user) == (10.0, 20)
    assert (s.write_rate, s.write_burst, s.log_format) == (20.0, 100, "text")


def test_overrides(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "RTPORTAL_DATA_DIR": str(tmp_path),
            "RTPORTAL_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "RTPORTAL_BROKER_URL": "redis://127.0.0.1:6379/3",
            "RTPORTAL_FILES_DIR": str(tmp_path / "blobs"),
            "RTPORTAL_ALLOWED_ORIGINS": " https://portal.example/ , https://staff.example,,",
            "RTPORTAL_PUBLIC_URL": "https://portal.example/",
            "RTPORTAL_SECRET_KEY": "00" * 32,
            "RTPORTAL_WS_MAX_FRAME_BYTES": "2048",
            "RTPORTAL_WS_SEND_QUEUE": "16",
            "RTPORTAL_BACKLOG_LIMIT": "50",
            "RTPORTAL_HISTORY_PAGE_MAX": "20",
            "RTPORTAL_EVENT_PAYLOAD_MAX": "1000",
            "RTPORTAL_EVENT_BLOB_MAX": "0",
            "RTPORTAL_HUB_POLL_INTERVAL": "0.25",
            "RTPORTAL_HANDSHAKE_TIMEOUT": "2.5",
            "RTPORTAL_MAX_CONNECTIONS_PER_USER": "3",
            "RTPORTAL_WRITE_RATE": "0.5",
            "RTPORTAL_WRITE_BURST": "7",
            "RTPORTAL_LOG_FORMAT": " JSON ",
        }
    )
    assert s.database_url == "postgresql+asyncpg://u@h/db"
    assert s.broker_url == "redis://127.0.0.1:6379/3"
    assert s.files_dir == tmp_path / "blobs"
    assert s.allowed_origins == ("https://portal.example", "https://staff.example")
    assert s.public_url == "https://portal.example"
    assert s.secret_key == bytes(32)
    assert (s.ws_max_frame_bytes, s.ws_send_queue, s.backlog_limit) == (2048, 16, 50)
    assert (s.history_page_max, s.event_payload_max, s.event_blob_max) == (20, 1000, 0)
    assert s.hub_poll_interval == 0.25
    assert (s.handshake_timeout, s.max_connections_per_user) == (2.5, 3)
    assert (s.write_rate, s.write_burst, s.log_format) == (0.5, 7, "json")
    assert not (tmp_path / "secret.key").exists()  # an explicit key writes no file


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RTPORTAL_WS_SEND_QUEUE", "many"),
        ("RTPORTAL_WS_SEND_QUEUE", "0"),
        ("RTPORTAL_HISTORY_PAGE_MAX", "-5"),
        ("RTPORTAL_WS_MAX_FRAME_BYTES", "10"),
        ("RTPORTAL_HUB_POLL_INTERVAL", "0"),
        ("RTPORTAL_HUB_POLL_INTERVAL", "soon"),
        ("RTPORTAL_SECRET_KEY", "short"),
        ("RTPORTAL_HANDSHAKE_TIMEOUT", "0"),
        ("RTPORTAL_MAX_CONNECTIONS_PER_USER", "0"),
        ("RTPORTAL_WRITE_RATE", "-1"),
        ("RTPORTAL_WRITE_BURST", "0"),
        ("RTPORTAL_LOG_FORMAT", "xml"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        Settings.from_env({"RTPORTAL_DATA_DIR": str(tmp_path), name: value})
    assert info.value.code == "invalid_config"
    assert name in info.value.message


def test_secret_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    first = Settings.from_env({"RTPORTAL_DATA_DIR": str(data)})
    key_file = data / "secret.key"
    assert len(first.secret_key) == 32
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = Settings.from_env({"RTPORTAL_DATA_DIR": str(data)})
    assert second.secret_key == first.secret_key
    other = Settings.from_env({"RTPORTAL_DATA_DIR": str(tmp_path / "elsewhere")})
    assert other.secret_key != first.secret_key


def test_corrupt_secret_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("not hex\n")
    with pytest.raises(InvalidConfig):
        Settings.from_env({"RTPORTAL_DATA_DIR": str(tmp_path)})


def test_text_secret_and_no_secret_in_repr(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"RTPORTAL_DATA_DIR": str(tmp_path), "RTPORTAL_SECRET_KEY": "a passphrase of some length"}
    )
    assert s.secret_key == b"a passphrase of some length"
    assert "passphrase" not in repr(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.broker_url = "redis://x"  # type: ignore[misc]


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTPORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTPORTAL_BROKER_URL", "memory://shared")
    assert Settings.from_env().broker_url == "memory://shared"


def test_memory_limits_are_bytes_with_defaults_and_overrides(tmp_path: Path) -> None:
    names = {
        "RTPORTAL_WS_SEND_BUFFER_MAX": "ws_send_buffer_max",
        "RTPORTAL_WS_BACKLOG_LOW_WATER": "ws_backlog_low_water",
        "RTPORTAL_BACKLOG_PAGE_BYTES": "backlog_page_bytes",
        "RTPORTAL_HISTORY_PAGE_BYTES": "history_page_bytes",
        "RTPORTAL_FRAME_CACHE_BYTES": "frame_cache_bytes",
    }
    base = {"RTPORTAL_DATA_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    MiB = 1024 * 1024
    assert [getattr(s, f) for f in names.values()] == [4 * MiB, MiB, MiB, 4 * MiB, 32 * MiB]
    s = Settings.from_env({**base, **{n: str(5000 + i) for i, n in enumerate(names)}})
    assert [getattr(s, f) for f in names.values()] == [5000, 5001, 5002, 5003, 5004]
    for name in names:
        with pytest.raises(InvalidConfig) as info:
            Settings.from_env({**base, name: "100"})  # below 1 KiB
        assert name in info.value.message
