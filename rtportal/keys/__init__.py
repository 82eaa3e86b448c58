"""The key directory (docs/keys.md): stores, relays and checks what it can of
the public and signed rtp1 records clients make; it holds no private key.

Modules, one idea each: ``ids`` (principals <-> rtp1 ids), ``records``
(decoding and the checks that need no key), ``store`` (the tables),
``service`` (each change in a ``Unit`` with its ``keys`` event), ``reads``
(what a caller may read), ``envelopes`` (the check on every message write),
``invites`` (the crypto object of an invite round).
"""
