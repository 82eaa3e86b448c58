"""What the figures were measured on: CPU model, cores, RAM, kernel, Python."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil  # type: ignore[import-untyped]

__all__ = ["describe"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def describe() -> dict[str, Any]:
    """A JSON-able description of this machine and the software stack."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            d: _version(d)
            for d in (
                "uvicorn",
                "uvloop",
                "httptools",
                "websockets",
                "starlette",
                "sqlalchemy",
                "asyncpg",
                "aiosqlite",
                "redis",
                "django",
                "channels",
                "channels-redis",
            )
        },
    }
