"""One frozen ``Settings`` object built from the environment.

Every tunable of rtportal lives here so that tests, the CLI and the app
factory build the same object the same way (``Settings.from_env``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rtportal.crypto.backup import MIN_M_KIB, MIN_T
from rtportal.datafiles import FILE_MODE, private_dir, private_file
from rtportal.errors import InvalidConfig
from rtportal.logs import LogFormat

# Defaults of the limits, in one place: the websocket protocol's ``Limits``
# and ``events.log.append`` (when called without settings) use these too.
DEFAULT_WS_MAX_FRAME_BYTES = 1_048_576
DEFAULT_WS_SEND_QUEUE = 1024
# Bytes a client may leave unread (uvicorn transport buffer, rtportal.ws.native)
# before it is closed with 4008: a few backlog pages of large frames.
DEFAULT_WS_SEND_BUFFER_MAX = 4 * 1024 * 1024
# A subscription's next backlog page is read only once the connection's
# unsent bytes are at most this (pacing: a client that does not read does
# not pull the log into memory).
DEFAULT_WS_BACKLOG_LOW_WATER = 1024 * 1024
# Stored bytes (payload text + blob) per backlog page read from the database.
DEFAULT_BACKLOG_PAGE_BYTES = 1024 * 1024
# Stored bytes (payload text + blob) per HTTP history page.
DEFAULT_HISTORY_PAGE_BYTES = 4 * 1024 * 1024
# Bytes of backlog and history pages one worker reads and encodes at once (ByteBudget).
DEFAULT_READ_BUDGET_BYTES = 64 * 1024 * 1024
# Encoded event frames kept per worker for reuse (FrameCache), in bytes.
DEFAULT_FRAME_CACHE_BYTES = 32 * 1024 * 1024
DEFAULT_BACKLOG_LIMIT = 1000
DEFAULT_EVENT_PAYLOAD_MAX = 65_536
DEFAULT_EVENT_BLOB_MAX = 262_144
# Seconds a client has from connecting until its request headers are
# complete, and (websocket) until the upgrade is answered.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# Per principal and worker: open websockets, and writes (websocket sends
# and HTTP event POSTs) as a token bucket of WRITE_BURST tokens refilled at
# WRITE_RATE per second.
DEFAULT_MAX_CONNECTIONS_PER_USER = 20
DEFAULT_WRITE_RATE = 20.0
DEFAULT_WRITE_BURST = 100
# Per source address and worker: failed authentications over HTTP, as a
# token bucket of AUTH_FAILURE_BURST refilled at AUTH_FAILURE_RATE per second.
DEFAULT_AUTH_FAILURE_BURST = 20
DEFAULT_AUTH_FAILURE_RATE = 0.2
# Login and session lifetimes, in seconds (rtportal.access.sessions).
DEFAULT_LOGIN_LINK_TTL = 15 * 60
DEFAULT_INVITE_LINK_TTL = 7 * 24 * 3600
DEFAULT_SESSION_IDLE = 30 * 60
DEFAULT_STAFF_SESSION_IDLE = 2 * 60 * 60
DEFAULT_SESSION_LIFETIME = 12 * 60 * 60
# Passwords (rtportal.access.passwords, rtportal.access.credentials): the
# server's argon2-cffi hash of the login secret, at most HASH_CONCURRENCY at
# once per worker (each takes HASH_MEMORY_KIB) with HASH_QUEUE callers
# waiting; the browser's Argon2id parameters for new passwords, and the
# floor below which a client-chosen parameter set is refused.
DEFAULT_LOGIN_HASH_CONCURRENCY = 4
DEFAULT_LOGIN_HASH_QUEUE = 64
DEFAULT_LOGIN_HASH_MEMORY_KIB = 65536
DEFAULT_LOGIN_HASH_TIME_COST = 3
DEFAULT_LOGIN_KDF_M_KIB = 65536
DEFAULT_LOGIN_KDF_T = 3
DEFAULT_LOGIN_KDF_P = 1
DEFAULT_LOGIN_KDF_MIN_M_KIB = MIN_M_KIB
DEFAULT_LOGIN_KDF_MIN_T = MIN_T
# Sign-in attempts per account and per source address in SIGNIN_WINDOW s.
DEFAULT_SIGNIN_ACCOUNT_LIMIT = 10
DEFAULT_SIGNIN_ADDRESS_LIMIT = 100
DEFAULT_SIGNIN_WINDOW = 15 * 60
# A staff member's setup link (rtportal.access.staff).
DEFAULT_SETUP_LINK_TTL = 7 * 24 * 60 * 60
# Attachments (docs/files.md): ciphertext bytes per file and per matter (each
# firm may set its own), and how long an upload's body may stall.
DEFAULT_FILE_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_PORTAL_QUOTA_BYTES = 200 * 1024 * 1024
DEFAULT_UPLOAD_IDLE_TIMEOUT = 30.0

__all__ = ["Settings", "load_secret_key"]

_DEFAULT_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidConfig(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise InvalidConfig(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise InvalidConfig(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise InvalidConfig(f"{name} must be > 0, got {value}")
    return value


def _log_format(env: Mapping[str, str]) -> LogFormat:
    raw = (env.get("RTPORTAL_LOG_FORMAT") or "text").strip().lower()
    if raw == "json":
        return "json"
    if raw == "text":
        return "text"
    raise InvalidConfig(f"RTPORTAL_LOG_FORMAT must be text or json, got {raw!r}")


def load_secret_key(data_dir: Path, raw: str | None) -> bytes:
    """The server secret: from ``RTPORTAL_SECRET_KEY`` or ``<data_dir>/secret.key``.

    A hex value of at least 32 bytes is decoded; any other text is used as
    UTF-8 bytes. When unset, 32 random bytes are generated once and written
    with mode 0600 in the 0700 data directory, created exclusively so that
    two workers starting together agree on one key (the loser of the race
    reads the winner's file).
    """
    if raw is not None and raw.strip():
        text = raw.strip()
        try:
            decoded = bytes.fromhex(text)
        except ValueError:
            decoded = b""
        if len(decoded) >= 32:
            return decoded
        if len(text.encode()) < 16:
            raise InvalidConfig("RTPORTAL_SECRET_KEY is too short (at least 16 bytes)")
        return text.encode()
    path = data_dir / "secret.key"
    private_dir(data_dir)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        private_file(path)  # exists: narrowed to 0600 if it allows more
        content = path.read_text().strip()
        try:
            existing = bytes.fromhex(content)
        except ValueError:
            existing = b""
        if len(existing) < 32:
            raise InvalidConfig(f"{path} does not hold a 32-byte hex key") from None
        return existing
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration; see docs/operations.md for every variable."""

    data_dir: Path
    database_url: str
    broker_url: str
    files_dir: Path
    allowed_origins: tuple[str, ...]
    secret_key: bytes = field(repr=False)  # never printed in logs or tracebacks
    public_url: str
    ws_max_frame_bytes: int = DEFAULT_WS_MAX_FRAME_BYTES
    ws_send_queue: int = DEFAULT_WS_SEND_QUEUE
    ws_send_buffer_max: int = DEFAULT_WS_SEND_BUFFER_MAX
    ws_backlog_low_water: int = DEFAULT_WS_BACKLOG_LOW_WATER
    backlog_limit: int = DEFAULT_BACKLOG_LIMIT
    backlog_page_bytes: int = DEFAULT_BACKLOG_PAGE_BYTES
    history_page_max: int = 500
    history_page_bytes: int = DEFAULT_HISTORY_PAGE_BYTES
    read_budget_bytes: int = DEFAULT_READ_BUDGET_BYTES
    frame_cache_bytes: int = DEFAULT_FRAME_CACHE_BYTES
    event_payload_max: int = DEFAULT_EVENT_PAYLOAD_MAX
    event_blob_max: int = DEFAULT_EVENT_BLOB_MAX
    hub_poll_interval: float = 2.0
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    max_connections_per_user: int = DEFAULT_MAX_CONNECTIONS_PER_USER
    write_rate: float = DEFAULT_WRITE_RATE
    write_burst: int = DEFAULT_WRITE_BURST
    auth_failure_burst: int = DEFAULT_AUTH_FAILURE_BURST
    auth_failure_rate: float = DEFAULT_AUTH_FAILURE_RATE
    log_format: LogFormat = "text"
    login_link_ttl: int = DEFAULT_LOGIN_LINK_TTL
    session_idle: int = DEFAULT_SESSION_IDLE  # contacts
    staff_session_idle: int = DEFAULT_STAFF_SESSION_IDLE  # staff and bots
    session_lifetime: int = DEFAULT_SESSION_LIFETIME
    invite_link_ttl: int = DEFAULT_INVITE_LINK_TTL  # a portal invite's link (seconds)
    # Email and SMS providers (docs/operations.md "Email and SMS"); None: the outbox holds them.
    smtp_url: str | None = field(default=None, repr=False)  # may carry a password
    mail_from: str = "rtportal@localhost"
    sms_url: str | None = field(default=None, repr=False)
    sms_secret: bytes | None = field(default=None, repr=False)
    login_hash_concurrency: int = DEFAULT_LOGIN_HASH_CONCURRENCY
    login_hash_queue: int = DEFAULT_LOGIN_HASH_QUEUE
    login_hash_memory_kib: int = DEFAULT_LOGIN_HASH_MEMORY_KIB
    login_hash_time_cost: int = DEFAULT_LOGIN_HASH_TIME_COST
    login_kdf_m_kib: int = DEFAULT_LOGIN_KDF_M_KIB
    login_kdf_t: int = DEFAULT_LOGIN_KDF_T
    login_kdf_p: int = DEFAULT_LOGIN_KDF_P
    login_kdf_min_m_kib: int = DEFAULT_LOGIN_KDF_MIN_M_KIB
    login_kdf_min_t: int = DEFAULT_LOGIN_KDF_MIN_T
    signin_account_limit: int = DEFAULT_SIGNIN_ACCOUNT_LIMIT
    signin_address_limit: int = DEFAULT_SIGNIN_ADDRESS_LIMIT
    signin_window: int = DEFAULT_SIGNIN_WINDOW
    setup_link_ttl: int = DEFAULT_SETUP_LINK_TTL
    # Where files are stored (rtportal.files.storage.storage_for); None: files_dir.
    files_url: str | None = field(default=None, repr=False)
    file_max_bytes: int = DEFAULT_FILE_MAX_BYTES
    portal_quota_bytes: int = DEFAULT_PORTAL_QUOTA_BYTES
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``).

        Invalid values raise ``InvalidConfig`` naming the variable, so a
        misconfigured deployment stops at start with a clear message.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        data_dir = Path(env.get("RTPORTAL_DATA_DIR") or "./data").expanduser().resolve()
        database_url = (
            env.get("RTPORTAL_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'rtportal.db'}"
        )
        files_dir = Path(env.get("RTPORTAL_FILES_DIR") or data_dir / "files").expanduser()
        origins_raw = env.get("RTPORTAL_ALLOWED_ORIGINS")
        origins = (
            tuple(o.strip().rstrip("/") for o in origins_raw.split(",") if o.strip())
            if origins_raw
            else _DEFAULT_ORIGINS
        )
        public_url = (env.get("RTPORTAL_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            broker_url=env.get("RTPORTAL_BROKER_URL") or "memory://",
            files_dir=files_dir,
            allowed_origins=origins,
            secret_key=load_secret_key(data_dir, env.get("RTPORTAL_SECRET_KEY")),
            public_url=public_url,
            ws_max_frame_bytes=_int(
                env, "RTPORTAL_WS_MAX_FRAME_BYTES", DEFAULT_WS_MAX_FRAME_BYTES, 1024
            ),
            ws_send_queue=_int(env, "RTPORTAL_WS_SEND_QUEUE", DEFAULT_WS_SEND_QUEUE),
            ws_send_buffer_max=_int(
                env, "RTPORTAL_WS_SEND_BUFFER_MAX", DEFAULT_WS_SEND_BUFFER_MAX, 1024
            ),
            ws_backlog_low_water=_int(
                env, "RTPORTAL_WS_BACKLOG_LOW_WATER", DEFAULT_WS_BACKLOG_LOW_WATER, 1024
            ),
            backlog_limit=_int(env, "RTPORTAL_BACKLOG_LIMIT", DEFAULT_BACKLOG_LIMIT),
            backlog_page_bytes=_int(
                env, "RTPORTAL_BACKLOG_PAGE_BYTES", DEFAULT_BACKLOG_PAGE_BYTES, 1024
            ),
            history_page_max=_int(env, "RTPORTAL_HISTORY_PAGE_MAX", 500),
            history_page_bytes=_int(
                env, "RTPORTAL_HISTORY_PAGE_BYTES", DEFAULT_HISTORY_PAGE_BYTES, 1024
            ),
            read_budget_bytes=_int(
                env, "RTPORTAL_READ_BUDGET_BYTES", DEFAULT_READ_BUDGET_BYTES, 1024
            ),
            frame_cache_bytes=_int(
                env, "RTPORTAL_FRAME_CACHE_BYTES", DEFAULT_FRAME_CACHE_BYTES, 1024
            ),
            event_payload_max=_int(
                env, "RTPORTAL_EVENT_PAYLOAD_MAX", DEFAULT_EVENT_PAYLOAD_MAX, 64
            ),
            event_blob_max=_int(env, "RTPORTAL_EVENT_BLOB_MAX", DEFAULT_EVENT_BLOB_MAX, 0),
            hub_poll_interval=_float(env, "RTPORTAL_HUB_POLL_INTERVAL", 2.0),
            handshake_timeout=_float(env, "RTPORTAL_HANDSHAKE_TIMEOUT", DEFAULT_HANDSHAKE_TIMEOUT),
            max_connections_per_user=_int(
                env, "RTPORTAL_MAX_CONNECTIONS_PER_USER", DEFAULT_MAX_CONNECTIONS_PER_USER
            ),
            write_rate=_float(env, "RTPORTAL_WRITE_RATE", DEFAULT_WRITE_RATE),
            write_burst=_int(env, "RTPORTAL_WRITE_BURST", DEFAULT_WRITE_BURST),
            auth_failure_burst=_int(env, "RTPORTAL_AUTH_FAILURE_BURST", DEFAULT_AUTH_FAILURE_BURST),
            auth_failure_rate=_float(env, "RTPORTAL_AUTH_FAILURE_RATE", DEFAULT_AUTH_FAILURE_RATE),
            log_format=_log_format(env),
            login_link_ttl=_int(env, "RTPORTAL_LOGIN_LINK_TTL", DEFAULT_LOGIN_LINK_TTL),
            session_idle=_int(env, "RTPORTAL_SESSION_IDLE", DEFAULT_SESSION_IDLE),
            staff_session_idle=_int(env, "RTPORTAL_STAFF_SESSION_IDLE", DEFAULT_STAFF_SESSION_IDLE),
            session_lifetime=_int(env, "RTPORTAL_SESSION_LIFETIME", DEFAULT_SESSION_LIFETIME),
            invite_link_ttl=_int(env, "RTPORTAL_INVITE_LINK_TTL", DEFAULT_INVITE_LINK_TTL),
            smtp_url=env.get("RTPORTAL_SMTP_URL") or None,
            mail_from=env.get("RTPORTAL_MAIL_FROM") or "rtportal@localhost",
            sms_url=env.get("RTPORTAL_SMS_URL") or None,
            sms_secret=(env.get("RTPORTAL_SMS_SECRET") or "").encode() or None,
            files_url=env.get("RTPORTAL_FILES_URL") or None,
            file_max_bytes=_int(env, "RTPORTAL_FILE_MAX_BYTES", DEFAULT_FILE_MAX_BYTES),
            portal_quota_bytes=_int(env, "RTPORTAL_PORTAL_QUOTA_BYTES", DEFAULT_PORTAL_QUOTA_BYTES),
            upload_idle_timeout=_float(
                env, "RTPORTAL_UPLOAD_IDLE_TIMEOUT", DEFAULT_UPLOAD_IDLE_TIMEOUT
            ),
            **_login_settings(env),
        )


def _kdf_floor(values: dict[str, int]) -> dict[str, int]:
    """The browser's Argon2id parameters never go below the rtp1 library's floor
    (``rtportal.crypto.backup.MIN_M_KIB``/``MIN_T``: browsers refuse weaker ones) nor below
    the minimum this server asks of clients (it must not hand out what it would refuse)."""
    floors = {
        "login_kdf_min_m_kib": ("RTPORTAL_LOGIN_KDF_MIN_M_KIB", MIN_M_KIB),
        "login_kdf_min_t": ("RTPORTAL_LOGIN_KDF_MIN_T", MIN_T),
        "login_kdf_m_kib": ("RTPORTAL_LOGIN_KDF_M_KIB", values["login_kdf_min_m_kib"]),
        "login_kdf_t": ("RTPORTAL_LOGIN_KDF_T", values["login_kdf_min_t"]),
    }
    for key, (name, floor) in floors.items():
        if values[key] < floor:
            raise InvalidConfig(f"{name} must be >= {floor}, got {values[key]}")
    return values


def _login_settings(env: Mapping[str, str]) -> dict[str, int]:
    """The password and sign-in settings (``RTPORTAL_LOGIN_*``, ``RTPORTAL_SIGNIN_*``)."""
    return _kdf_floor(
        {
            "login_hash_concurrency": _int(
                env, "RTPORTAL_LOGIN_HASH_CONCURRENCY", DEFAULT_LOGIN_HASH_CONCURRENCY
            ),
            "login_hash_queue": _int(env, "RTPORTAL_LOGIN_HASH_QUEUE", DEFAULT_LOGIN_HASH_QUEUE, 0),
            "login_hash_memory_kib": _int(
                env, "RTPORTAL_LOGIN_HASH_MEMORY_KIB", DEFAULT_LOGIN_HASH_MEMORY_KIB, 64
            ),
            "login_hash_time_cost": _int(
                env, "RTPORTAL_LOGIN_HASH_TIME_COST", DEFAULT_LOGIN_HASH_TIME_COST
            ),
            "login_kdf_m_kib": _int(env, "RTPORTAL_LOGIN_KDF_M_KIB", DEFAULT_LOGIN_KDF_M_KIB, 8),
            "login_kdf_t": _int(env, "RTPORTAL_LOGIN_KDF_T", DEFAULT_LOGIN_KDF_T),
            "login_kdf_p": _int(env, "RTPORTAL_LOGIN_KDF_P", DEFAULT_LOGIN_KDF_P),
            "login_kdf_min_m_kib": _int(
                env, "RTPORTAL_LOGIN_KDF_MIN_M_KIB", DEFAULT_LOGIN_KDF_MIN_M_KIB, 8
            ),
            "login_kdf_min_t": _int(env, "RTPORTAL_LOGIN_KDF_MIN_T", DEFAULT_LOGIN_KDF_MIN_T),
            "signin_account_limit": _int(
                env, "RTPORTAL_SIGNIN_ACCOUNT_LIMIT", DEFAULT_SIGNIN_ACCOUNT_LIMIT
            ),
            "signin_address_limit": _int(
                env, "RTPORTAL_SIGNIN_ADDRESS_LIMIT", DEFAULT_SIGNIN_ADDRESS_LIMIT
            ),
            "signin_window": _int(env, "RTPORTAL_SIGNIN_WINDOW", DEFAULT_SIGNIN_WINDOW),
            "setup_link_ttl": _int(env, "RTPORTAL_SETUP_LINK_TTL", DEFAULT_SETUP_LINK_TTL),
        }
    )
