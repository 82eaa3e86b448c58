"""rtp1 errors: each a ``CryptoInvalid`` (HTTP 422) with its own stable code.

The codes are the table of docs/security.md §12 and are shared with the
JavaScript library (``static/crypto/errors.js``), so vectors produced by one
language can name the rejection the other must produce.
"""

from __future__ import annotations

from rtportal.errors import CryptoInvalid

__all__ = [
    "AttachmentInvalid",
    "ChainBroken",
    "CommitmentMismatch",
    "DecryptFailed",
    "EncodingInvalid",
    "EpochGap",
    "LowOrderPoint",
    "RecoveryInvalid",
    "Replay",
    "Revoked",
    "Rollback",
    "SignatureInvalid",
    "Stale",
    "StaleEpochWrite",
    "Uncertified",
    "WrongContext",
]


class EncodingInvalid(CryptoInvalid):
    """Non-canonical or malformed bytes, wrong lengths, out-of-range parameters."""

    code = "crypto_encoding"


class SignatureInvalid(CryptoInvalid):
    code = "crypto_signature"


class DecryptFailed(CryptoInvalid):
    code = "crypto_decrypt"


class LowOrderPoint(CryptoInvalid):
    code = "crypto_low_order"


class WrongContext(CryptoInvalid):
    """An object made for another firm, matter, thread, epoch, kind or recipient."""

    code = "crypto_wrong_context"


class Uncertified(CryptoInvalid):
    code = "crypto_uncertified"


class Revoked(CryptoInvalid):
    code = "crypto_revoked"


class CommitmentMismatch(CryptoInvalid):
    code = "crypto_commitment"


class ChainBroken(CryptoInvalid):
    code = "crypto_chain"


class Rollback(CryptoInvalid):
    code = "crypto_rollback"


class EpochGap(CryptoInvalid):
    code = "crypto_epoch_gap"


class StaleEpochWrite(CryptoInvalid):
    code = "crypto_stale_epoch"


class Stale(CryptoInvalid):
    """A time-bound record (revocation list, epoch head) is missing or past its bound."""

    code = "crypto_stale"


class Replay(CryptoInvalid):
    code = "crypto_replay"


class AttachmentInvalid(CryptoInvalid):
    code = "crypto_attachment"


class RecoveryInvalid(CryptoInvalid):
    code = "crypto_recovery"
