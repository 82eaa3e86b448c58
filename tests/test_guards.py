"""What a worker remembers for its send checks (rtportal.events.guards) holds for
one ``access_version`` of the matter: the triggers move it on every change the
checks read, the write refuses a batch checked at an older version (nothing
written), the group commit checks it again from the database, and a
membership's expiry ends what was remembered without any row changing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from rtportal.access.membership import can_access
from rtportal.access.queries import ACCESS_QUERIES
from rtportal.db import Database
from rtportal.db.models import Invite, Matter, MatterMember, utcnow
from rtportal.db.models_keys import KeyCert, KeyManifest
from rtportal.errors import NotFound
from rtportal.events.batch import AppendItem
from rtportal.events.groupcommit import GroupCommit, WriteAlone
from rtportal.events.guards import MISSING, GuardMoved, Guards
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
from rtportal.files.attach import names_files
from rtportal.keys import envelopes
from rtportal.realtime.broker import from_url as broker_from_url
from rtportal.realtime.hub import Hub
from rtportal.settings import Settings
from rtportal.threads import items
from tests.conftest import FirmKit, MakeFirm


async def _version(db: Database, matter_id: int) -> int:
    async with db.read() as session:
        found = await session.scalar(select(Matter.access_version).where(Matter.id == matter_id))
    assert found is not None
    return int(found)


async def _events(db: Database, matter_id: int) -> int:
    async with db.read() as session:
        found = await session.scalar(select(Matter.last_seq).where(Matter.id == matter_id))
    return int(found or 0)


async def test_the_triggers_move_the_version_on_what_the_checks_read(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    matter = kit.matter
    other = await kit.add_matter(title="Untouched")
    untouched = await _version(db, other.id)
    changes: list[tuple[str, Any]] = [
        ("a member added", lambda s: s.add(_member(matter.id, 987_654))),
        (
            "see_applicants changed",
            lambda s: s.execute(
                update(MatterMember)
                .where(MatterMember.matter_id == matter.id)
                .values(see_applicants=False)
            ),
        ),
        (
            "an expiry set",
            lambda s: s.execute(
                update(MatterMember)
                .where(MatterMember.matter_id == matter.id)
                .values(expires_at=utcnow() + timedelta(days=3))
            ),
        ),
        (
            "a member removed",
            lambda s: s.execute(
                update(MatterMember)
                .where(MatterMember.matter_id == matter.id, MatterMember.principal_id == 987_654)
                .values(removed_at=utcnow())
            ),
        ),
        (
            "a member row deleted",
            lambda s: s.execute(
                text("DELETE FROM matter_members WHERE matter_id = :m AND principal_id = 987654"),
                {"m": matter.id},
            ),
        ),
        (
            "a new epoch",
            lambda s: s.add(KeyManifest(matter_id=matter.id, epoch=1, hash=b"h" * 32, record=b"r")),
        ),
        ("a certificate", lambda s: s.add(_cert(kit.firm_id))),
        (
            "a certificate revoked",
            lambda s: s.execute(
                update(KeyCert).where(KeyCert.firm_id == kit.firm_id).values(revoked_at=utcnow())
            ),
        ),
        ("a firm renamed in URLs", lambda s: _rename_firm(s, kit)),
    ]
    # A new certificate refuses nothing remembered (only a yes is): it moves nothing.
    unmoved = {"a certificate"}
    for name, change in changes:
        before = await _version(db, matter.id)
        async with db.write() as session:
            result = change(session)
            if hasattr(result, "__await__"):
                await result
        if name in unmoved:
            assert await _version(db, matter.id) == before, name
        else:
            assert await _version(db, matter.id) > before, name
    # What the checks never read moves nothing: the matter's own title, its log.
    before = await _version(db, matter.id)
    async with db.write() as session:
        await session.execute(update(Matter).where(Matter.id == matter.id).values(title="New"))
    [written] = await commit_batch(db, [AppendItem(matter, kit.staff, _send(kit, "t", "x1"))])
    assert not isinstance(written, Exception)
    assert await _version(db, matter.id) == before
    # the revocation and the new slug moved the other matter too: they are the firm's
    assert await _version(db, other.id) == untouched + 2


def _cert(firm_id: int) -> KeyCert:
    return KeyCert(
        firm_id=firm_id,
        principal="staff-1",
        kid=b"k" * 16,
        role=1,
        serial=1,
        issuer="firm",
        record=b"r",
    )


def _member(matter_id: int, contact_id: int) -> MatterMember:
    return MatterMember(
        matter_id=matter_id, principal_kind="contact", principal_id=contact_id, role="client"
    )


async def _rename_firm(session: Any, kit: FirmKit) -> None:
    await session.execute(
        text("UPDATE firms SET slug = slug || '-x' WHERE id = :f"), {"f": kit.firm_id}
    )


def _send(kit: FirmKit, thread: str, client_id: str, **payload: Any) -> Send:
    return Send(kit.ref, "message", "portal", {"thread": thread, **payload}, b"ct", client_id)


async def test_an_invite_moves_the_version_by_its_status_only(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    matter_id = kit.matter.id
    before = await _version(db, matter_id)
    async with db.write() as session:
        invite = Invite(
            firm_id=kit.firm_id,
            matter_id=matter_id,
            contact_id=kit.contact.id,
            method="email",
            subject="s",
            body="b",
        )
        session.add(invite)
    assert await _version(db, matter_id) == before + 1  # a pending invitee may be named
    async with db.write() as session:
        # a wrong passcode counted: nothing the send checks read
        await session.execute(update(Invite).where(Invite.id == invite.id).values(passcode_tries=1))
    assert await _version(db, matter_id) == before + 1
    async with db.write() as session:
        await session.execute(update(Invite).where(Invite.id == invite.id).values(status="removed"))
    assert await _version(db, matter_id) == before + 2


@pytest.mark.parametrize("size", [1, 3])
async def test_a_batch_checked_at_an_older_version_writes_nothing(
    db: Database, make_firm: MakeFirm, size: int
) -> None:
    kit = await make_firm()
    version = await _version(db, kit.matter.id)
    head = await _events(db, kit.matter.id)
    async with db.write() as session:
        session.add(_member(kit.matter.id, 424_242))  # another worker admits someone
    batch = [
        AppendItem(kit.matter, kit.staff, _send(kit, "t", f"g{size}-{i}"), guard=version)
        for i in range(size)
    ]
    with pytest.raises(GuardMoved) as moved:
        await commit_batch(db, batch)
    assert moved.value.matter_ids == {kit.matter.id}
    assert await _events(db, kit.matter.id) == head  # nothing written, no seq used
    current = await _version(db, kit.matter.id)
    fresh = [AppendItem(i.matter, i.actor, i.send, guard=current) for i in batch]
    results = await commit_batch(db, fresh)
    assert all(not isinstance(r, Exception) for r in results)
    assert await _events(db, kit.matter.id) == head + size


async def test_what_is_remembered_ends_at_the_next_expiry(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    expiry = utcnow() + timedelta(days=2)
    async with db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(MatterMember.matter_id == kit.matter.id)
            .values(expires_at=expiry)
        )
    guards = Guards()
    async with db.read() as session:
        await guards.ensure(session, [kit.matter.id], utcnow())
    guards.remember(kit.matter.id, "fact", 1)
    assert guards.fact(kit.matter.id, "fact", expiry - timedelta(seconds=1)) == 1
    # No row changes when the membership expires: the time alone ends the fact.
    assert guards.fact(kit.matter.id, "fact", expiry) is MISSING
    assert guards.version(kit.matter.id) is None


async def _another_worker_sets_see_applicants(
    settings: Settings, kit: FirmKit, contact_id: int, sees: bool
) -> None:
    """The change as another worker makes it: its own database, no word to this one."""
    other = Database(settings.database_url)
    try:
        async with other.write() as session:
            await session.execute(
                update(MatterMember)
                .where(
                    MatterMember.matter_id == kit.matter.id,
                    MatterMember.principal_id == contact_id,
                )
                .values(see_applicants=sees)
            )
    finally:
        await other.close()


@asynccontextmanager
async def wired_worker(
    db: Database, settings: Settings, alone: WriteAlone | None = None
) -> AsyncIterator[tuple[GroupCommit, Guards]]:
    """A worker's group commit wired as the app wires it (remembering checks);
    ``alone``: its writer of edits, deletes and items naming files."""
    broker = broker_from_url("memory://")
    hub = Hub(db, broker, settings, ACCESS_QUERIES)
    await hub.start()
    guards = Guards()
    committer = GroupCommit(
        db,
        hub.publish,
        settings,
        can_access,
        envelopes.KeyChecks(guards),
        envelopes.CHECKED_KINDS,
        items.Preparer(guards=guards),
        items.ITEM_SEND_KINDS | items.ACT_KINDS,
        alone,
        items.ACT_KINDS if alone is not None else frozenset(),
        names_files if alone is not None else None,
        guards=guards,
    )
    try:
        yield committer, guards
    finally:
        await hub.stop()
        await broker.close()


@pytest.fixture
async def worker(db: Database, settings: Settings) -> AsyncIterator[tuple[GroupCommit, Guards]]:
    async with wired_worker(db, settings) as wired:
        yield wired


async def test_a_change_by_another_worker_is_never_missed(
    db: Database, settings: Settings, make_firm: MakeFirm, worker: tuple[GroupCommit, Guards]
) -> None:
    """Jo sees the other applicants' threads, replies in Sam's, and this worker
    remembers who sees applicants. Another worker then turns that off for Jo:
    Jo's next reply must be refused, though nothing told this worker."""
    committer, guards = worker
    kit = await make_firm()
    sam, _ = await kit.add_contact("Sam", matter=kit.matter)
    jo = kit.contact
    opener = Send(kit.ref, "message", "portal", {"thread": "for-sam", "to": [sam.id]}, b"o", "o1")
    await committer.append(kit.staff, opener, None)
    await committer.append(jo, _send(kit, "for-sam", "jo-1"), None)
    reads = guards.reads
    await committer.append(jo, _send(kit, "for-sam", "jo-2"), None)
    assert guards.reads == reads  # the second reply read no version: remembered
    await _another_worker_sets_see_applicants(settings, kit, jo.id, False)
    head = await _events(db, kit.matter.id)
    with pytest.raises(NotFound):
        await committer.append(jo, _send(kit, "for-sam", "jo-3"), None)
    assert await _events(db, kit.matter.id) == head
    # Staff, whose sends read nothing remembered, are never held up by it.
    await committer.append(kit.staff, _send(kit, "for-sam", "s-2"), None)


async def test_a_refusal_is_never_made_from_what_a_change_ended(
    db: Database, settings: Settings, make_firm: MakeFirm, worker: tuple[GroupCommit, Guards]
) -> None:
    """The other way round: Jo may not see Sam's thread and this worker remembers
    it; another worker lets Jo see the applicants. Jo's reply is not refused on
    the strength of what this worker remembered: the refused send's matter is
    read again before any refusal."""
    committer, guards = worker
    kit = await make_firm()
    sam, _ = await kit.add_contact("Sam", matter=kit.matter)
    jo = kit.contact
    async with db.write() as session:
        await session.execute(
            update(MatterMember)
            .where(MatterMember.matter_id == kit.matter.id, MatterMember.principal_id == jo.id)
            .values(see_applicants=False)
        )
    opener = Send(kit.ref, "message", "portal", {"thread": "for-sam", "to": [sam.id]}, b"o", "o1")
    await committer.append(kit.staff, opener, None)
    with pytest.raises(NotFound):
        await committer.append(jo, _send(kit, "for-sam", "jo-1"), None)
    assert guards.version(kit.matter.id) is not None  # remembered: Jo does not see it
    await _another_worker_sets_see_applicants(settings, kit, jo.id, True)
    event, created, _ = await committer.append(jo, _send(kit, "for-sam", "jo-2"), None)
    assert created and event.payload["thread"] == "for-sam"


async def test_a_send_written_alone_is_checked_from_the_database(
    db: Database, settings: Settings, make_firm: MakeFirm, worker: tuple[GroupCommit, Guards]
) -> None:
    """A send written in a transaction of its own (an item naming files, an edit)
    is written where no version is compared: the worker's memory must not decide
    it. Jo's replies in Sam's thread are remembered as allowed; another worker
    stops Jo seeing the applicants; Jo's next reply, written alone, is refused."""
    committer, _ = worker

    async def write_alone(
        principal: Any, matter: Matter, send: Send, guard: int | None = None
    ) -> tuple[Any, bool]:
        # a writer that holds no version (``guard`` ignored): only the fresh
        # checks of the batch can refuse its send
        [result] = await commit_batch(db, [AppendItem(matter, principal, send)], settings)
        if isinstance(result, Exception):
            raise result
        return result

    committer.alone = write_alone
    committer.alone_if = lambda send: (send.client_id or "").startswith("alone")
    kit = await make_firm()
    sam, _ = await kit.add_contact("Sam", matter=kit.matter)
    jo = kit.contact
    opener = Send(kit.ref, "message", "portal", {"thread": "for-sam", "to": [sam.id]}, b"o", "o1")
    await committer.append(kit.staff, opener, None)
    await committer.append(jo, _send(kit, "for-sam", "jo-1"), None)
    await committer.append(jo, _send(kit, "for-sam", "alone-1"), None)
    await _another_worker_sets_see_applicants(settings, kit, jo.id, False)
    head = await _events(db, kit.matter.id)
    with pytest.raises(NotFound):
        await committer.append(jo, _send(kit, "for-sam", "alone-2"), None)
    assert await _events(db, kit.matter.id) == head
