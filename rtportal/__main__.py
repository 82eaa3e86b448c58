"""``python -m rtportal``: the same CLI as the ``rtportal`` script."""

from __future__ import annotations

import sys

from rtportal.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
