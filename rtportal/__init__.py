"""rtportal: a realtime, end-to-end encrypted client portal."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
