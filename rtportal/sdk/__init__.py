"""The Python client of rtportal: every flow of docs/keys.md against a real server.

Sans-I/O flows (``firmkeys``, ``epochs``, ``invitekeys``, ``messages``)
produce request bodies; ``sync`` verifies what the server serves into a
``rtportal.crypto.directory.Directory`` checked against the trust state
(``state``); ``transport`` and ``client`` are the thin network layer. See
docs/sdk.md.
"""

from __future__ import annotations

__all__: list[str] = []
