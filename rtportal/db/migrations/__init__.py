"""Alembic migrations of rtportal (applied by ``rtportal.db.migrate.upgrade``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["revision_module"]


def revision_module(filename: str) -> ModuleType:
    """The migration ``versions/<filename>`` as a module: a later revision builds on
    (or a downgrade puts back) its SQL without a copy. Not a package: loaded by path."""
    path = Path(__file__).with_name("versions") / filename
    spec = importlib.util.spec_from_file_location(f"rtportal_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
