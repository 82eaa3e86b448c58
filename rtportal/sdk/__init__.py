"""The Python client of rtportal: every flow of docs/keys.md against a real server.

Modules, one idea each. Sans-I/O flows that produce request bodies:
``firmkeys`` (firm set-up, staff approval, escrow rotation), ``epochs``
(the next epoch of a matter), ``invitekeys`` (invite, removal and
regenerate bundles), ``bindings`` (a client's second matter: the invite
key bound to their identity, staff certifying it there), ``messages``
(seal and open), ``tags`` (tag names sealed under the firm internal key). Around them: ``actor``
(who is acting), ``records`` (the lifecycle records), ``state`` (the trust
state file), ``sync`` (what the server serves, verified into a
``rtportal.crypto.directory.Directory`` against that state), ``login``
(password -> login secret and key backup), ``keyfile`` (the firm root key
file), ``errors``. The thin network layer: ``transport`` (HTTP and
websocket), ``files`` (attachments: RTA1 up and down as streams),
``clientcore`` (sign-in, keys, verified sync, reading) and
``client`` (one ``Client`` doing every flow on it); ``admincli`` is
``rtportal firm-keys``. See docs/sdk.md.
"""

from __future__ import annotations

__all__: list[str] = []
