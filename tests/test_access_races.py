"""A logout or removal that commits while a connection is being checked still reaches it.

``hub.close_access``/``close_principal`` reach only the connections that
hold the matter or are registered at that moment. A close that lands
between a connection's database check and its hold/registration must not
leave it with access until the hub's re-check (up to 5 polls): the hub
counts the closes it applies (``Hub.closes``) and the connection checks
again when the count moved. Each test makes the close land exactly in that
gap by running the real removal/logout right after the real check; the
polls are made too rare to help.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.access import membership
from rtportal.access.removal import remove_member
from rtportal.access.sessions import revoke_token
from rtportal.access.sessions import sign_in as real_sign_in
from rtportal.app import create_app
from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.db import Database
from rtportal.db.models import Matter
from rtportal.principal import Principal
from rtportal.settings import Settings
from rtportal.ws import native
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import running_server
from tests.support.wsjson import connected, recv, until_closed

Check = Callable[[AsyncSession, Principal, str], Awaitable[Matter]]


def _send(ref: str, request_id: str) -> str:
    return json.dumps(
        {
            "type": "send",
            "id": request_id,
            "matter": ref,
            "kind": "message",
            "audience": "portal",
            "payload": {"thread": request_id},
        }
    )


@pytest.fixture
def rare_polls(settings: Settings) -> Settings:
    return dataclasses.replace(settings, hub_poll_interval=3600.0)


async def test_a_removal_during_the_first_send_is_not_cached(
    rare_polls: Settings, make_firm: MakeFirm
) -> None:
    """The send checked before the removal may be stored; every later one is refused."""
    kit: FirmKit = await make_firm()
    async with running_server(create_app(rare_polls)) as server:
        state = server.app.state
        original: Check = state.committer.authorize
        removed = False

        async def authorize(session: AsyncSession, principal: Principal, ref: str) -> Matter:
            nonlocal removed
            matter = await original(session, principal, ref)
            if principal.kind == "contact" and not removed:
                removed = True  # committed and announced right after the check
                await remove_member(state.db, state.hub, matter.id, "contact", principal.id)
            return matter

        state.committer.authorize = authorize
        ws = await connected(server, kit.tokens["contact"])
        try:
            await ws.send(_send(kit.ref, "first"))
            first = await recv(ws)
            # Checked before the removal: stored, or refused when the write saw
            # the matter's access version moved by it (rtportal.events.guards;
            # SQLite's read snapshot predates the removal) - never half of each.
            assert removed, first
            assert first["type"] == "ack" or first.get("code") == "not_found", first
            for i in range(3):
                await ws.send(_send(kit.ref, f"after-{i}"))
                answer = await recv(ws)
                assert answer["type"] == "error" and answer["code"] == "not_found", answer
        finally:
            await ws.close()


async def test_a_removal_during_subscribe_closes_before_any_live_event(
    rare_polls: Settings, make_firm: MakeFirm, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit: FirmKit = await make_firm()
    # Another client the staff member's thread is addressed to (the removed one
    # would see it too: applicants visible by default).
    other, _ = await kit.add_contact("Otto Other", matter=kit.matter)
    async with running_server(create_app(rare_polls)) as server:
        state = server.app.state
        original = membership.can_view  # a contact's subscribe check
        removed = False

        async def can_view(
            session: AsyncSession, principal: Principal, ref: str
        ) -> tuple[Matter, bool]:
            nonlocal removed
            matter, sees = await original(session, principal, ref)
            if principal.kind == "contact" and not removed:
                removed = True
                await remove_member(state.db, state.hub, matter.id, "contact", principal.id)
            return matter, sees

        monkeypatch.setattr(membership, "can_view", can_view)
        ws = await connected(server, kit.tokens["contact"])
        try:
            subscribe = {"type": "subscribe", "id": "s", "subs": [{"matter": kit.ref, "after": 0}]}
            await ws.send(json.dumps(subscribe))
            async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
                posted = await http.post(
                    f"/api/v1/matters/{kit.ref}/events",
                    headers=kit.auth("staff"),
                    json={
                        "kind": "message",
                        "client_id": "after-removal",
                        "payload": {"thread": "after-removal", "to": [other.id]},
                    },
                )
                assert posted.status_code == 201, posted.text
            code, frames = await until_closed(ws)
            assert removed and code == CLOSE_ACCESS_REMOVED, (code, frames)
            assert not [f for f in frames if f["type"] == "event"], frames
        finally:
            await ws.close()


async def test_a_logout_during_the_connect_closes_the_new_socket(
    rare_polls: Settings, make_firm: MakeFirm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session ends between the sign-in check and the hub registration."""
    kit: FirmKit = await make_firm()
    async with running_server(create_app(rare_polls)) as server:
        state = server.app.state
        token = kit.tokens["contact"]

        async def sign_in(db: Database, key: bytes, presented: str | None) -> Principal:
            principal = await real_sign_in(state.db, key, presented)
            async with state.db.write() as session:  # what a logout does
                assert await revoke_token(session, key, token)
            await state.hub.close_principal(principal.kind, principal.id, CLOSE_REVOKED)
            return principal

        monkeypatch.setattr(native, "sign_in", sign_in)
        ws = await connected(server, token)
        try:
            code, frames = await until_closed(ws)
            assert code == CLOSE_REVOKED, (code, frames)
        finally:
            await ws.close()
