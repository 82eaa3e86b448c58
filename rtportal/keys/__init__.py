"""The key directory (docs/keys.md): stores, relays and checks what it can of
the public and signed rtp1 records clients make; it holds no private key.

Modules, one idea each: ``ids`` (principals <-> rtp1 ids), ``records``
(decoding and the checks that need no key), ``store`` (the tables),
``checks`` (records against stored certificates), ``announce`` (the
``keys`` event of a change), ``firmkeys`` and ``epochs`` (the changes, each
in a ``Unit``: published after the commit), ``reads`` (what a caller may
read), ``envelopes`` (the check on every message write), ``liveness`` (which
clients a manifest may name), ``invites`` (the crypto object of an invite
round), ``relink`` (a resend or regeneration with a new invite secret),
``handovers`` (a client's handover to a fresh key, or binding a second
matter's invite key to their identity).
"""
