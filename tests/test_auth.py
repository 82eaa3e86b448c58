"""Opaque tokens: issue, authenticate, expire, revoke; where tokens are read from."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.requests import Request

from rtportal.access.sessions import (
    authenticate,
    issue_token,
    revoke_principal_tokens,
    revoke_token,
    token_from_connection,
)
from rtportal.db import Database
from rtportal.db.models import AuthToken, utcnow
from rtportal.errors import NotFound, Unauthenticated
from tests.conftest import MakeFirm


def _request(headers: dict[str, str], query: str = "") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


def test_token_from_connection() -> None:
    assert token_from_connection(_request({"Authorization": "Bearer abc"})) == "abc"
    assert token_from_connection(_request({"authorization": "bearer  abc "})) == "abc"
    assert token_from_connection(_request({"Cookie": "rtp_session=xyz; other=1"})) == "xyz"
    both = {"Authorization": "Bearer abc", "Cookie": "rtp_session=xyz"}
    assert token_from_connection(_request(both)) == "abc"
    # A malformed Authorization header is not replaced by the cookie.
    bad = {"Authorization": "Basic dXNlcjpwdw==", "Cookie": "rtp_session=xyz"}
    assert token_from_connection(_request(bad)) is None
    # Never from the URL.
    assert token_from_connection(_request({}, "token=abc&access_token=abc")) is None


async def test_every_kind_authenticates(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.read() as session:
        for key, principal in (
            ("admin", kit.admin),
            ("staff", kit.staff),
            ("contact", kit.contact),
            ("bot", kit.bot),
        ):
            assert await authenticate(session, kit.tokens[key]) == principal
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
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).digest()]
    assert all(token not in (r.label or "") for r in rows)


async def test_bad_expired_and_revoked_tokens(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        short = await issue_token(session, "staff", kit.staff.id, label="t", ttl=timedelta(hours=1))
        await session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == hashlib.sha256(short.encode()).digest())
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with db.read() as session:
        for token in (None, "", "x" * 43, "not a token", short, kit.tokens["staff"][:-1] + "!"):
            with pytest.raises(Unauthenticated):
                await authenticate(session, token)
    async with db.write() as session:
        assert await revoke_token(session, kit.tokens["staff"]) is True
        assert await revoke_token(session, kit.tokens["staff"]) is False
        assert await revoke_token(session, "garbage") is False
    async with db.read() as session:
        with pytest.raises(Unauthenticated):
            await authenticate(session, kit.tokens["staff"])
        assert await authenticate(session, kit.tokens["admin"]) == kit.admin


async def test_revoke_all_tokens_of_a_principal(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        second = await issue_token(session, "contact", kit.contact.id, label="phone", ttl=None)
    async with db.write() as session:
        assert await revoke_principal_tokens(session, "contact", kit.contact.id) == 2
    async with db.read() as session:
        for token in (kit.tokens["contact"], second):
            with pytest.raises(Unauthenticated):
                await authenticate(session, token)
        assert await authenticate(session, kit.tokens["bot"]) == kit.bot


async def test_issue_checks_the_principal(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with db.write() as session:
        with pytest.raises(NotFound):
            await issue_token(session, "staff", kit.bot.id, label="x", ttl=None)  # a bot
        with pytest.raises(NotFound):
            await issue_token(session, "bot", kit.staff.id, label="x", ttl=None)  # not a bot
        with pytest.raises(NotFound):
            await issue_token(session, "contact", 10**9, label="x", ttl=None)
        with pytest.raises(NotFound):
            await issue_token(session, "admin", kit.staff.id, label="x", ttl=None)
