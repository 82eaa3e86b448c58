"""The second factor: TOTP (RFC 6238) and one-time recovery codes.

``check_second_factor`` is what sign-in calls after the login secret
verified: it decides whether a code is needed (enrolled, an org admin, or
the firm requires it of staff) and checks the code given.

The shared secret (pyotp, base32, 160 bits) is stored sealed: AES-256-GCM
under a key derived from the server secret with HKDF ("rtportal/totp/v1"),
the credential id as associated data (a sealed secret copied to another
credential does not open), ``nonce || ciphertext`` in
``Credential.totp_secret``. Codes are 6 digits, 30 s steps, accepted one
step either side of now; a code whose step is not after the last accepted
one (``totp_last_step``) is a replay. Every try counts against the
``totp`` limit of the credential (5 per 15 minutes); a good code resets it.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from dataclasses import dataclass

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import audit, recoverycodes
from rtportal.access.ratelimit import Limiter
from rtportal.db.models import Credential, Firm, utcnow
from rtportal.errors import InvalidCredentials, PreconditionFailed, SecondFactorRequired
from rtportal.principal import Principal, PrincipalKind
from rtportal.settings import Settings

__all__ = [
    "TRIES",
    "TRIES_WINDOW",
    "Enrolment",
    "check_second_factor",
    "remove",
    "required_for",
    "start_enrolment",
]

TRIES = 5  # codes per credential ...
TRIES_WINDOW = 15 * 60  # ... per this many seconds
STEP = 30
_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A started enrolment: the secret to type in, and the URI to show as a QR code."""

    secret: str  # base32
    uri: str  # otpauth://totp/...


def required_for(firm: Firm, principal_kind: str, role: str | None) -> bool:
    """Must this person use a second factor? Org admins always; staff where the firm says."""
    if principal_kind != "staff":
        return False
    return role == "org_admin" or firm.require_totp


def _aead(settings: Settings) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rtportal/totp/v1").derive(
        settings.secret_key
    )
    return AESGCM(key)


def _aad(credential: Credential) -> bytes:
    return f"credential:{credential.id}".encode()


def _seal(settings: Settings, credential: Credential, secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead(settings).encrypt(nonce, secret.encode(), _aad(credential))


def _open(settings: Settings, credential: Credential) -> str | None:
    sealed = credential.totp_secret
    if sealed is None or len(sealed) < 13:
        return None
    try:
        return _aead(settings).decrypt(sealed[:12], sealed[12:], _aad(credential)).decode()
    except InvalidTag:
        return None  # another server secret: as if nothing were enrolled


async def _audit(
    session: AsyncSession, credential: Credential, action: str, address: str | None = None
) -> None:
    """An audit entry by the credential's owner about their own second factor."""
    kind: PrincipalKind = "staff" if credential.principal_kind == "staff" else "contact"
    await audit.record(
        session,
        firm_id=credential.firm_id,
        action=action,
        actor=Principal(kind, credential.principal_id, credential.firm_id, credential.email),
        target=("credential", credential.id),
        address=address,
    )


async def start_enrolment(
    session: AsyncSession, settings: Settings, credential: Credential
) -> Enrolment:
    """Store a new, unconfirmed secret (``totp_enabled_at`` NULL) and return it.

    A confirmed enrolment is never replaced this way (``precondition_failed``
    ``totp_already_enabled``): removing it needs a code (``remove``).
    """
    if credential.totp_enabled_at is not None:
        raise PreconditionFailed("totp_already_enabled", "a second factor is already enrolled")
    await session.flush()  # the credential id is the secret's associated data
    secret = pyotp.random_base32()
    credential.totp_secret = _seal(settings, credential, secret)
    credential.totp_last_step = None
    firm = await session.get(Firm, credential.firm_id)
    issuer = firm.name if firm is not None else "rtportal"
    uri = pyotp.TOTP(secret).provisioning_uri(name=credential.email, issuer_name=issuer)
    await session.flush()
    return Enrolment(secret=secret, uri=uri)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (now, or one either side) whose code is ``code``."""
    totp = pyotp.TOTP(secret)
    current = int(now // STEP)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


async def check_second_factor(
    session: AsyncSession,
    settings: Settings,
    limiter: Limiter,
    credential: Credential,
    *,
    required: bool,
    code: str | None,
) -> list[str] | None:
    """Pass, or raise ``SecondFactorRequired`` (no code given, or one is needed but
    none is enrolled: ``details.enrol = true``, when not even an unconfirmed
    enrolment exists), ``InvalidCredentials`` (a wrong or replayed code, an
    unknown or used recovery code) or ``RateLimited`` (the sixth try within
    15 minutes, right or wrong; ``details.retry_after``).

    ``code`` is a 6-digit TOTP code or a recovery code (``xxxx-xxxx``; only
    once enrolment is confirmed). A TOTP code for an unconfirmed enrolment
    (``start_enrolment``) confirms it: the ten new recovery codes are
    returned (shown once), else None. Runs in the caller's transaction
    (the accepted step, a spent recovery code and the audit entry commit
    with the sign-in).
    """
    confirmed = credential.totp_enabled_at is not None
    if not confirmed and not required and (code is None or credential.totp_secret is None):
        return None
    if code is None or not code.strip():
        raise SecondFactorRequired(
            "a second factor is needed", enrol=credential.totp_secret is None
        )
    secret = _open(settings, credential)
    if secret is None:
        raise SecondFactorRequired("a second factor is needed", enrol=True)
    await limiter.hit("totp", str(credential.id), limit=TRIES, window=TRIES_WINDOW)
    typed = "".join(code.split())
    if confirmed and recoverycodes.looks_like(typed):
        if not await recoverycodes.use(session, settings.secret_key, credential.id, typed):
            raise InvalidCredentials("wrong second factor")
        await limiter.reset("totp", str(credential.id))
        await _audit(session, credential, "recovery_code.used")
        return None
    step = _matching_step(secret, typed, time.time()) if _CODE.fullmatch(typed) else None
    last = credential.totp_last_step
    if step is None or (last is not None and step <= last):
        raise InvalidCredentials("wrong second factor")
    credential.totp_last_step = step
    await limiter.reset("totp", str(credential.id))
    if confirmed:
        await session.flush()
        return None
    credential.totp_enabled_at = utcnow()
    codes = await recoverycodes.replace_codes(session, settings.secret_key, credential.id)
    await _audit(session, credential, "totp.enrolled")
    return codes


async def remove(
    session: AsyncSession,
    settings: Settings,
    limiter: Limiter,
    credential: Credential,
    *,
    firm_requires: bool,
    code: str,
    address: str | None = None,
) -> None:
    """Remove a confirmed enrolment, proven by a code (TOTP or recovery).

    ``precondition_failed``: ``totp_not_enabled``, or
    ``second_factor_required_by_firm`` (an org admin, or staff of a firm that
    requires it).
    """
    if credential.totp_enabled_at is None:
        raise PreconditionFailed("totp_not_enabled", "no second factor is enrolled")
    if firm_requires:
        raise PreconditionFailed(
            "second_factor_required_by_firm", "your firm requires a second factor"
        )
    await check_second_factor(session, settings, limiter, credential, required=True, code=code)
    credential.totp_secret = None
    credential.totp_enabled_at = None
    credential.totp_last_step = None
    await recoverycodes.delete_codes(session, credential.id)
    await _audit(session, credential, "totp.removed", address)
