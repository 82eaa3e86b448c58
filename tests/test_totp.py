"""TOTP second factor: enrolment, codes from the shared secret (pyotp), replays,
the five-tries limit, one-time recovery codes, and the /me/totp endpoints."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from rtportal.access import totp
from rtportal.access.credentials import Kdf, set_login
from rtportal.access.ratelimit import MemoryLimiter
from rtportal.db import Database
from rtportal.db.models import AuditEntry, Credential, Firm, RecoveryCode
from rtportal.errors import InvalidCredentials, RateLimited, SecondFactorRequired
from rtportal.principal import Principal
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm


async def _login(kit: FirmKit, who: Principal, email: str) -> int:
    async with kit.db.write() as session:
        row = await set_login(
            session,
            firm_id=kit.firm_id,
            principal_kind=who.kind,
            principal_id=who.id,
            email=email,
            kdf=Kdf(os.urandom(16)),
            login_secret=os.urandom(32),
        )
        return row.id


async def _check(
    db: Database,
    settings: Settings,
    limiter: MemoryLimiter,
    credential_id: int,
    code: str | None,
    *,
    required: bool = False,
) -> list[str] | None:
    async with db.write() as session:
        credential = await session.get(Credential, credential_id)
        assert credential is not None
        return await totp.check_second_factor(
            session, settings, limiter, credential, required=required, code=code
        )


async def _enrol(db: Database, settings: Settings, credential_id: int) -> totp.Enrolment:
    async with db.write() as session:
        credential = await session.get(Credential, credential_id)
        assert credential is not None
        return await totp.start_enrolment(session, settings, credential)


async def _actions(db: Database, firm_id: int) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.firm_id == firm_id).order_by(AuditEntry.id)
        )
        return list(rows)


def _wrong(secret: str, now: float) -> str:
    """A 6-digit code that none of the accepted steps has."""
    valid = {pyotp.TOTP(secret).at(now + d) for d in (-30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


async def test_enrol_confirm_sign_in_and_replay(make_firm: MakeFirm, settings: Settings) -> None:
    kit = await make_firm()
    limiter = MemoryLimiter()
    cid = await _login(kit, kit.staff, "sam@firm.test")
    # Nothing enrolled, not required: passes without a code.
    assert await _check(kit.db, settings, limiter, cid, None) is None
    with pytest.raises(SecondFactorRequired) as needed:
        await _check(kit.db, settings, limiter, cid, None, required=True)
    assert needed.value.details == {"enrol": True}

    enrolment = await _enrol(kit.db, settings, cid)
    assert enrolment.uri.startswith("otpauth://totp/")
    assert "issuer=Test%20Firm" in enrolment.uri and enrolment.secret in enrolment.uri
    async with kit.db.read() as session:
        stored = await session.get(Credential, cid)
        assert stored is not None and stored.totp_secret is not None
        assert enrolment.secret.encode() not in stored.totp_secret  # sealed, not stored plain
        assert stored.totp_enabled_at is None
    # Started but unconfirmed: a required second factor asks for a code, not an enrolment.
    with pytest.raises(SecondFactorRequired) as needed:
        await _check(kit.db, settings, limiter, cid, None, required=True)
    assert needed.value.details == {"enrol": False}

    now = time.time()
    auth = pyotp.TOTP(enrolment.secret)
    codes = await _check(kit.db, settings, limiter, cid, auth.at(now))
    assert codes is not None and len(codes) == 10 and len(set(codes)) == 10
    async with kit.db.read() as session:
        stored = await session.get(Credential, cid)
        assert stored is not None and stored.totp_enabled_at is not None
        hashes = list(
            await session.scalars(
                select(RecoveryCode.code_hash).where(RecoveryCode.credential_id == cid)
            )
        )
    assert len(hashes) == 10 and all(c.encode() not in h for c in codes for h in hashes)
    assert await _actions(kit.db, kit.firm_id) == ["totp.enrolled"]

    # Enrolled: a code is needed from now on, required by the firm or not.
    with pytest.raises(SecondFactorRequired) as needed:
        await _check(kit.db, settings, limiter, cid, None)
    assert needed.value.details == {"enrol": False}
    # The next step's code signs in; a replay of it, or of an earlier step, does not.
    assert await _check(kit.db, settings, limiter, cid, auth.at(now + 30)) is None
    for replay in (auth.at(now + 30), auth.at(now)):
        with pytest.raises(InvalidCredentials):
            await _check(kit.db, settings, limiter, cid, replay)
    with pytest.raises(InvalidCredentials):
        await _check(kit.db, settings, limiter, cid, _wrong(enrolment.secret, now))
    with pytest.raises(InvalidCredentials):
        await _check(kit.db, settings, limiter, cid, "not a code")


async def test_sixth_try_is_refused_even_when_right(
    make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    limiter = MemoryLimiter()
    cid = await _login(kit, kit.staff, "sam@firm.test")
    enrolment = await _enrol(kit.db, settings, cid)
    now = time.time()
    auth = pyotp.TOTP(enrolment.secret)
    await _check(kit.db, settings, limiter, cid, auth.at(now - 30))
    wrong = _wrong(enrolment.secret, now)
    for _ in range(totp.TRIES):
        with pytest.raises(InvalidCredentials):
            await _check(kit.db, settings, limiter, cid, wrong)
    with pytest.raises(RateLimited) as limited:
        await _check(kit.db, settings, limiter, cid, auth.at(now))
    assert limited.value.details["retry_after"] > 0
    # Another credential has its own tries.
    other = await _login(kit, kit.admin, "ada@firm.test")
    await _enrol(kit.db, settings, other)
    with pytest.raises(InvalidCredentials):
        await _check(kit.db, settings, limiter, other, wrong)


async def test_recovery_code_works_once(make_firm: MakeFirm, settings: Settings) -> None:
    kit = await make_firm()
    limiter = MemoryLimiter()
    cid = await _login(kit, kit.staff, "sam@firm.test")
    enrolment = await _enrol(kit.db, settings, cid)
    codes = await _check(kit.db, settings, limiter, cid, pyotp.TOTP(enrolment.secret).now())
    assert codes is not None
    other = await _login(kit, kit.admin, "ada@firm.test")
    other_enrolment = await _enrol(kit.db, settings, other)
    other_codes = await _check(
        kit.db, settings, limiter, other, pyotp.TOTP(other_enrolment.secret).now()
    )
    assert other_codes is not None

    assert await _check(kit.db, settings, limiter, cid, codes[3].upper()) is None
    with pytest.raises(InvalidCredentials):
        await _check(kit.db, settings, limiter, cid, codes[3])
    with pytest.raises(InvalidCredentials):  # another person's code is no code here
        await _check(kit.db, settings, limiter, cid, other_codes[0])
    assert await _check(kit.db, settings, limiter, cid, codes[4].replace("-", "")) is None
    assert (await _actions(kit.db, kit.firm_id)).count("recovery_code.used") == 2


async def test_a_sealed_secret_opens_only_for_its_credential(
    make_firm: MakeFirm, settings: Settings
) -> None:
    kit = await make_firm()
    limiter = MemoryLimiter()
    cid = await _login(kit, kit.staff, "sam@firm.test")
    other = await _login(kit, kit.admin, "ada@firm.test")
    enrolment = await _enrol(kit.db, settings, cid)
    async with kit.db.write() as session:
        source = await session.get(Credential, cid)
        target = await session.get(Credential, other)
        assert source is not None and target is not None
        target.totp_secret = source.totp_secret
    with pytest.raises(SecondFactorRequired) as needed:
        await _check(
            kit.db, settings, limiter, other, pyotp.TOTP(enrolment.secret).now(), required=True
        )
    assert needed.value.details == {"enrol": True}


async def _api(
    http: httpx.AsyncClient, method: str, path: str, kit: FirmKit, who: str, body: Any = None
) -> httpx.Response:
    return await http.request(method, path, json=body, headers=kit.auth(who))


def _reason(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "precondition_failed"
    return str(error["details"]["reason"])


async def test_me_totp_endpoints(make_firm: MakeFirm, http: httpx.AsyncClient) -> None:
    kit = await make_firm()
    await _login(kit, kit.staff, "sam@firm.test")
    await _login(kit, kit.admin, "ada@firm.test")

    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", {"code": "123456"})
    assert _reason(r) == "totp_not_started"
    r = await _api(http, "POST", "/api/v1/me/totp", kit, "staff")
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert r.json()["uri"].startswith("otpauth://totp/")
    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", {"code": "12"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    for bad in ({}, {"code": 123456}, {"code": ""}, {"code": "1" * 40}):
        r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", bad
    now = time.time()
    code = pyotp.TOTP(secret).at(now)
    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", {"code": code})
    assert r.status_code == 200, r.text
    recovery = r.json()["recovery_codes"]
    assert len(recovery) == 10
    r = await _api(http, "POST", "/api/v1/me/totp", kit, "staff")
    assert _reason(r) == "totp_already_enabled"
    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", {"code": code})
    assert _reason(r) == "totp_already_enabled"
    # A plain staff member of a firm that does not require it may remove it, with a code.
    r = await _api(http, "DELETE", "/api/v1/me/totp", kit, "staff", {"code": code})
    assert r.status_code == 401  # replayed
    r = await _api(http, "DELETE", "/api/v1/me/totp", kit, "staff", {"code": recovery[0]})
    assert r.status_code == 200, r.text
    r = await _api(http, "DELETE", "/api/v1/me/totp", kit, "staff", {"code": recovery[1]})
    assert _reason(r) == "totp_not_enabled"

    # An org admin cannot remove theirs.
    r = await _api(http, "POST", "/api/v1/me/totp", kit, "admin")
    secret = r.json()["secret"]
    code = pyotp.TOTP(secret).at(now)
    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "admin", {"code": code})
    assert r.status_code == 200, r.text
    next_code = pyotp.TOTP(secret).at(now + 30)
    r = await _api(http, "DELETE", "/api/v1/me/totp", kit, "admin", {"code": next_code})
    assert _reason(r) == "second_factor_required_by_firm"

    # Staff of a firm that requires a second factor cannot remove theirs either.
    async with kit.db.write() as session:
        firm = await session.get(Firm, kit.firm_id)
        assert firm is not None
        firm.require_totp = True
    r = await _api(http, "POST", "/api/v1/me/totp", kit, "staff")
    secret = r.json()["secret"]
    code = pyotp.TOTP(secret).at(now)
    r = await _api(http, "POST", "/api/v1/me/totp/confirm", kit, "staff", {"code": code})
    assert r.status_code == 200, r.text
    r = await _api(http, "DELETE", "/api/v1/me/totp", kit, "staff", {"code": code})
    assert _reason(r) == "second_factor_required_by_firm"

    # A bot has no password sign-in; no caller, no answer.
    r = await _api(http, "POST", "/api/v1/me/totp", kit, "bot")
    assert _reason(r) == "no_login"
    r = await http.post("/api/v1/me/totp")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert await _actions(kit.db, kit.firm_id) == [
        "totp.enrolled",
        "recovery_code.used",
        "totp.removed",
        "totp.enrolled",
        "totp.enrolled",
    ]
