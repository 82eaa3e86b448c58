"""Opaque tokens: issue, authenticate, expire, revoke; where tokens are read from."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.requests import Request

from rtportal.access.sessions import (
    authenticate,
    hash_token,
    issue_token,
    revoke_principal_tokens,
    revoke_token,
    token_from_connection,
)
from rtportal.db import Database
from rtportal.db.models import AuthToken, utcnow
from rtportal.errors import NotFound, Unauthenticated
from rtportal.settings import Settings
from tests.conftest import TEST_SECRET_HEX, MakeFirm

KEY = bytes.fromhex(TEST_SECRET_HEX)


def _request(headers: dict[str, str], query: str = "", scheme: str = "http") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": scheme,
            "server": ("portal.test", 443 if scheme == "https" else 80),
            "path": "/",
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


def test_token_from_connection(settings: Settings) -> None:
    def read(headers: dict[str, str], query: str = "", scheme: str = "http") -> str | None:
        return token_from_connection(_request(headers, query, scheme), settings)

    assert read({"Authorization": "Bearer abc"}) == "abc"
    assert read({"authorization": "bearer  abc "}) == "abc"
    assert read({"Cookie": "rtp_session=xyz; other=1"}) == "xyz"
    both = {"Authorization": "Bearer abc", "Cookie": "rtp_session=xyz"}
    assert read(both) == "abc"
    # A malformed Authorization header is not replaced by the cookie.
    bad = {"Authorization": "Basic dXNlcjpwdw==", "Cookie": "rtp_session=xyz"}
    assert read(bad) is None
    # Never from the URL.
    assert read({}, "token=abc&access_token=abc") is None
    # Over HTTPS only the __Host- cookie counts (a plain one may be planted).
    assert read({"Cookie": "__Host-rtp_session=sec; rtp_session=xyz"}, scheme="https") == "sec"
    assert read({"Cookie": "rtp_session=xyz"}, scheme="https") is None


async def test_every_kind_authenticates(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.read() as session:
        for key, principal in (
            ("admin", kit.admin),
            ("staff", kit.staff),
            ("contact", kit.contact),
            ("bot", kit.bot),
        ):
            assert await authenticate(session, KEY, kit.tokens[key]) == principal
    assert kit.bot.is_staff and not kit.contact.is_staff


async def test_only_the_hash_is_stored(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    token = kit.tokens["contact"]
    assert len(token) == 43
    async with db.read() as session:
        rows = (
            (
                await session.execute(
                    select(AuthToken).where(
                        AuthToken.principal_kind == "contact",
                        AuthToken.principal_id == kit.contact.id,
                    )
                )
            )
            .scalars()
            .all()
        )
    # Keyed with the server secret: without it a dump cannot even confirm a token.
    keyed = hmac.new(KEY, token.encode(), hashlib.sha256).digest()
    assert [r.token_hash for r in rows] == [keyed] == [hash_token(KEY, token)]
    assert keyed != hashlib.sha256(token.encode()).digest()
    assert all(token not in (r.label or "") for r in rows)


async def test_bad_expired_and_revoked_tokens(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        short = await issue_token(
            session, KEY, "staff", kit.staff.id, label="t", ttl=timedelta(hours=1)
        )
        await session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == hash_token(KEY, short))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with db.read() as session:
        for token in (None, "", "x" * 43, "not a token", short, kit.tokens["staff"][:-1] + "!"):
            with pytest.raises(Unauthenticated):
                await authenticate(session, KEY, token)
    async with db.write() as session:
        assert await revoke_token(session, KEY, kit.tokens["staff"]) == [
            hash_token(KEY, kit.tokens["staff"]).hex()
        ]
        assert await revoke_token(session, KEY, kit.tokens["staff"]) == []
        assert await revoke_token(session, KEY, "garbage") == []
    async with db.read() as session:
        with pytest.raises(Unauthenticated):
            await authenticate(session, KEY, kit.tokens["staff"])
        assert await authenticate(session, KEY, kit.tokens["admin"]) == kit.admin


async def test_revoke_all_tokens_of_a_principal(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        second = await issue_token(session, KEY, "contact", kit.contact.id, label="phone", ttl=None)
    async with db.write() as session:
        assert await revoke_principal_tokens(session, "contact", kit.contact.id) == 2
    async with db.read() as session:
        for token in (kit.tokens["contact"], second):
            with pytest.raises(Unauthenticated):
                await authenticate(session, KEY, token)
        assert await authenticate(session, KEY, kit.tokens["bot"]) == kit.bot


async def test_issue_checks_the_principal(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        with pytest.raises(NotFound):
            await issue_token(session, KEY, "staff", kit.bot.id, label="x", ttl=None)  # a bot
        with pytest.raises(NotFound):
            await issue_token(session, KEY, "bot", kit.staff.id, label="x", ttl=None)  # not a bot
        with pytest.raises(NotFound):
            await issue_token(session, KEY, "contact", 10**9, label="x", ttl=None)
        with pytest.raises(NotFound):
            await issue_token(session, KEY, "admin", kit.staff.id, label="x", ttl=None)
