"""The hub's periodic re-checks at scale: sliced over polls, with a bound.

A periodic poll re-checks one slice (1/``RECHECK_SLICES``) of the login
sessions and memberships; every one is re-checked once per
``RECHECK_SLICES`` polls. These tests drive the polls by hand (no poll
task) against the real test database, with thousands of listeners, and
check that bound: a session revoked or a member removed without any control
message is closed within ``RECHECK_SLICES`` polls, and nobody else is.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import insert, select

from rtportal.access.queries import ACCESS_QUERIES
from rtportal.access.sessions import hash_token, revoke_token, session_id_of
from rtportal.closecodes import CLOSE_ACCESS_REMOVED, CLOSE_REVOKED
from rtportal.db import Database
from rtportal.db.models import AuthToken, Contact, MatterMember, utcnow
from rtportal.principal import Principal
from rtportal.realtime.broker import from_url
from rtportal.realtime.hub import RECHECK_SLICES, Hub
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.test_hub import Rec, write


async def _clients(kit: FirmKit, n: int) -> list[tuple[Principal, str]]:
    """n new contacts of the kit's firm, members of its matter, each with a login token."""
    tag = uuid.uuid4().hex[:8]
    names = [f"client {tag} {i}" for i in range(n)]
    tokens = [secrets.token_urlsafe(32) for _ in range(n)]  # as issue_token makes them
    async with kit.db.write() as session:
        await session.execute(
            insert(Contact), [{"firm_id": kit.firm_id, "display_name": name} for name in names]
        )
        rows = await session.execute(
            select(Contact.id, Contact.display_name).where(Contact.display_name.in_(names))
        )
        ids = {name: cid for cid, name in rows.all()}
        await session.execute(
            insert(MatterMember),
            [
                {
                    "matter_id": kit.matter.id,
                    "principal_kind": "contact",
                    "principal_id": ids[name],
                    "role": "client",
                }
                for name in names
            ],
        )
        await session.execute(
            insert(AuthToken),
            [
                {
                    "token_hash": hash_token(kit.settings.secret_key, token),
                    "principal_kind": "contact",
                    "principal_id": ids[name],
                    "firm_id": kit.firm_id,
                    "label": "recheck test",
                    "created_at": utcnow(),
                    "expires_at": None,
                }
                for name, token in zip(names, tokens, strict=True)
            ],
        )
    return [
        (
            Principal(
                "contact",
                ids[name],
                kit.firm_id,
                name,
                session_id=session_id_of(kit.settings.secret_key, token),
            ),
            token,
        )
        for name, token in zip(names, tokens, strict=True)
    ]


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    """A started hub with no poll task: the test runs each poll itself."""
    worker_db = Database(settings.database_url)
    broker = from_url(f"memory://recheck-{uuid.uuid4().hex}")  # the re-checks never use it
    hub = Hub(worker_db, broker, dataclasses.replace(settings, hub_poll_interval=0), ACCESS_QUERIES)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
        await broker.close()
        await worker_db.close()


async def _polls_until_closed(hub: Hub, listeners: Sequence[Rec]) -> int:
    """Run polls until every listener is closed; how many it took (at most RECHECK_SLICES + 1)."""
    polls = 0
    while not all(r.closed for r in listeners) and polls <= RECHECK_SLICES:
        await hub.poll()
        polls += 1
    return polls


async def test_revoked_session_and_removed_member_among_2000_close_within_the_bound(
    hub: Hub, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    clients = await _clients(kit, 2000)
    recs = [Rec(principal) for principal, _ in clients]
    for rec in recs:
        hub.register(rec)
        assert await hub.join(kit.matter.id, rec) == 0
    # A full pass finds nothing to close.
    assert await hub.recheck_sessions() == 0
    assert await hub.recheck_memberships() == 0

    # No control message at all: only the polls can find these.
    revoked, removed = recs[777], recs[1500]
    async with kit.db.write() as session:
        assert await revoke_token(session, kit.settings.secret_key, clients[777][1])
    await kit.remove_member(removed.principal)
    assert await _polls_until_closed(hub, [revoked, removed]) <= RECHECK_SLICES
    assert revoked.closed[0] == CLOSE_REVOKED and removed.closed[0] == CLOSE_ACCESS_REMOVED

    # Revocations at other points of the rotation meet the same bound.
    for index in (3, 1999, 1024):
        for _ in range(index % RECHECK_SLICES):  # move the rotation on a little
            await hub.poll()
        async with kit.db.write() as session:
            assert await revoke_token(session, kit.settings.secret_key, clients[index][1])
        assert await _polls_until_closed(hub, [recs[index]]) <= RECHECK_SLICES
        assert set(recs[index].closed) == {CLOSE_REVOKED}

    dead = {777, 1500, 3, 1999, 1024}
    assert [i for i, r in enumerate(recs) if r.closed and i not in dead] == []
    # Closed connections go away (the endpoint leaves and unregisters): then
    # no pass, sliced or full, has anything left to close.
    for i in dead:
        await hub.leave(kit.matter.id, recs[i])
        hub.unregister(recs[i])
    assert sum([await hub.poll() for _ in range(RECHECK_SLICES)]) == 0
    assert await hub.recheck_sessions() == await hub.recheck_memberships() == 0
    # The others were never closed and still get events.
    await hub.publish(await write(kit))
    assert all(r.closed == [] and r.seqs() == [1] for i, r in enumerate(recs) if i not in dead)


async def test_a_poll_rechecks_one_slice_and_the_full_pass_everything(
    hub: Hub, make_firm: MakeFirm
) -> None:
    """Revoke every session: each poll closes a part of them, a rotation closes all."""
    kit = await make_firm()
    clients = await _clients(kit, 500)
    recs = [Rec(principal) for principal, _ in clients]
    for rec in recs:
        hub.register(rec)
    async with kit.db.write() as session:
        for _, token in clients:
            assert await revoke_token(session, kit.settings.secret_key, token)
    per_poll = [await hub.poll() for _ in range(RECHECK_SLICES)]
    # Every session was checked exactly once in the rotation, a part at a time.
    assert sum(per_poll) == len(recs)
    assert max(per_poll) < len(recs)
    assert all(r.closed == [CLOSE_REVOKED] for r in recs)
    # Registered listeners stay until they unregister: a full pass (as after
    # a broker reset) finds every one of them at once.
    assert await hub.recheck_sessions() == len(recs)
