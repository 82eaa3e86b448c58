"""The one place the client touches the library's lifecycle records (docs/keys.md, last table).

Revocation lists (``RTL1``), escrow records (``RTF1``), epoch heads
(``RTH1``), the invite identity and the verifier calls that take them are
built here and nowhere else in ``rtportal.sdk``, so the rest of the client
reads as flows and a change of those records' Python spelling is one edit.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtportal.crypto import certs, keys, manifest
from rtportal.crypto.directory import Directory
from rtportal.crypto.keys import FirmEscrowKey, FirmRootKey, IdentityKey

__all__ = [
    "DAY_MS",
    "REVOCATION_LIFETIME_MS",
    "accept_head",
    "add_escrow_record",
    "decode_escrow_record",
    "decode_head",
    "decode_revocation_list",
    "escrow_record",
    "escrow_version",
    "escrow_x_pk",
    "head",
    "invite_identity",
    "left_entry",
    "revocation_entries",
    "revocation_list",
    "revocation_version",
    "set_revocation_list",
]

DAY_MS = 86_400_000
REVOCATION_LIFETIME_MS = 30 * DAY_MS  # docs/keys.md "Firm set-up": next_update = now + 30 days

RevocationList = certs.RevocationList
RevocationEntry = certs.RevocationEntry
EscrowRecord = keys.EscrowRecord
EpochHead = manifest.EpochHead


def invite_identity(secret: bytes, firm: str, user: str) -> IdentityKey:
    """The client's identity key derived from the invite secret ``R`` (32 bytes)."""
    return IdentityKey.from_invite_secret(secret, firm, user)


# ---- revocation lists ---------------------------------------------------------
def revocation_list(
    frk: FirmRootKey,
    *,
    firm: str,
    version: int,
    entries: Sequence[RevocationEntry],
    now_ms: int,
) -> RevocationList:
    body = certs.RevocationListBody(
        firm, version, now_ms, now_ms + REVOCATION_LIFETIME_MS, tuple(entries)
    )
    return certs.sign_revocation_list(body, frk)


def left_entry(user: str, kid: bytes, now_ms: int) -> RevocationEntry:
    """A staff member's key revoked because they left (non-compromise: history stays valid)."""
    return certs.RevocationEntry(user, kid, now_ms, certs.Reason.LEFT)


def revocation_entries(rl: RevocationList) -> tuple[RevocationEntry, ...]:
    return tuple(rl.body.entries)


def revocation_version(rl: RevocationList) -> int:
    return int(rl.body.version)


def decode_revocation_list(data: bytes) -> RevocationList:
    return certs.RevocationList.decode(data)


def set_revocation_list(d: Directory, rl: RevocationList, now_ms: int) -> None:
    """FRK signature, freshness, never an older version (the library's rules)."""
    d.set_revocation_list(rl, now_ms)


# ---- escrow records -----------------------------------------------------------
def escrow_record(frk: FirmRootKey, fek: FirmEscrowKey, now_ms: int) -> EscrowRecord:
    body = keys.EscrowRecordBody(fek.firm, fek.version, fek.public.x_pk, now_ms)
    return keys.sign_escrow_record(body, frk)


def decode_escrow_record(data: bytes) -> EscrowRecord:
    return keys.EscrowRecord.decode(data)


def add_escrow_record(d: Directory, record: EscrowRecord) -> None:
    d.add_escrow_record(record)


# ---- heads --------------------------------------------------------------------
def head(
    signer: IdentityKey,
    *,
    signer_id: str,
    firm: str,
    matter: str,
    epoch: int,
    hash_: bytes,
    now_ms: int,
) -> EpochHead:
    body = manifest.HeadBody(firm, matter, epoch, hash_, now_ms, signer_id, signer.kid)
    return manifest.sign_head(body, signer)


def decode_head(data: bytes) -> EpochHead:
    return manifest.EpochHead.decode(data)


def accept_head(d: Directory, h: EpochHead, matter: str, now_ms: int) -> None:
    """Signer in scope, not older than ``HEAD_MAX_AGE_MS``, the end of the verified chain."""
    d.accept_head(h, matter, now_ms)


def escrow_version(record: EscrowRecord) -> int:
    return int(record.body.version)


def escrow_x_pk(record: EscrowRecord) -> bytes:
    """The FEK public key the FRK signed for this version (a wrapped FEK must match it)."""
    return bytes(record.body.x_pk)
