"""rtp1: the end-to-end encryption library of rtportal (see docs/security.md).

Modules, one idea each: ``encoding`` (canonical records), ``kdf`` (labelled
derivations), ``keys`` (key types, key ids, fingerprints), ``edwards``
(Ed25519 keys fit to certify), ``hpke`` (RFC 9180 base mode), ``certs``
(certificates, revocations), ``wrap`` (signed key wraps),
``manifest`` (epoch manifests), ``envelope`` (messages), ``attachment``
(streamed files), ``backup`` (Argon2id login secret + key backup),
``recovery`` (recovery-code proof, key handover), ``trust`` (what a
client trusts about keys: root, certificates, revocation list, escrow
records, status over time), ``directory`` (a client's verifier state on top
of ``trust``), ``errors`` (each refusal a ``CryptoInvalid`` with its stable
code), ``rng`` (the OS, or a seeded stream for golden vectors). The golden
vectors shared with the JavaScript library, and the test firm they are
built from, are test tooling in ``tests/support/crypto/``.
"""

from __future__ import annotations

__all__: list[str] = []
