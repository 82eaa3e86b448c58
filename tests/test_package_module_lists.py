"""Each package whose docstring lists its modules (docs/architecture.md: "the
package and its module list") names every module it has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parent.parent / "rtportal"


@pytest.mark.parametrize(
    "package",
    ["keys", "sdk", "threads", "timeline", "crypto", "files", "documents", "reviews"],
)
def test_the_package_docstring_names_every_module(package: str) -> None:
    folder = PACKAGES / package
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    named = set(re.findall(r"``([a-z_0-9]+)(?:\.py)?``", doc)) | set(
        re.findall(r"\b([a-z_0-9]+)\.py\b", doc)
    )
    assert modules - named == set(), f"{package}: not in its docstring"
