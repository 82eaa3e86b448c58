"""How long a browser test waits for the page (one number for every browser test)."""

WAIT_MS = 15_000  # generous: 2 shared cores under a full test suite
