"""Review 13: what the change 2d3300f..9b59b6f let through, each kept as a test."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from rtportal.db import Database
from rtportal.db.models import Matter, utcnow
from rtportal.db.models_files import StoredFile
from rtportal.errors import NotFound, Unavailable
from rtportal.events.groupcommit import GroupCommit, OnDone
from rtportal.events.guards import Guards
from rtportal.events.send import Send
from rtportal.files.attach import AttachWriter
from rtportal.files.storage import storage_for
from rtportal.settings import Settings
from rtportal.threads import acts
from tests.conftest import MakeFirm
from tests.test_guards import _another_worker_sets_see_applicants, _events, _send, wired_worker


@pytest.fixture
async def worker_alone(
    db: Database, settings: Settings
) -> AsyncIterator[tuple[GroupCommit, Guards]]:
    """A worker whose items naming files, edits and deletes are written alone."""
    alone = AttachWriter(db, settings, storage_for(settings), acts.ActWriter(db, settings))
    async with wired_worker(db, settings, alone) as wired:
        yield wired


async def test_a_send_written_alone_is_held_to_what_its_checks_remembered(
    db: Database,
    settings: Settings,
    make_firm: MakeFirm,
    worker_alone: tuple[GroupCommit, Guards],
) -> None:
    """Jo replies in Sam's thread while she sees the applicants; another worker then
    turns that off. Jo's next reply names a file, so it is written alone (in a
    transaction of its own, after its batch's): it was checked with the members
    this worker remembered and must not be written on the strength of them."""
    committer, guards = worker_alone
    kit = await make_firm()
    sam, _ = await kit.add_contact("Sam", matter=kit.matter)
    jo = kit.contact
    file_id = secrets.token_hex(11)  # 22 characters; unique in a database the suite reuses
    async with db.write() as session:
        session.add(
            StoredFile(
                id=file_id,
                matter_id=kit.matter.id,
                uploader_kind="contact",
                uploader_id=jo.id,
                state="stored",
                size=10,
            )
        )
    opener = Send(kit.ref, "message", "portal", {"thread": "for-sam", "to": [sam.id]}, b"o", "o1")
    await committer.append(kit.staff, opener, None)
    await committer.append(jo, _send(kit, "for-sam", "jo-1"), None)
    assert guards.version(kit.matter.id) is not None  # the members are remembered
    await _another_worker_sets_see_applicants(settings, kit, jo.id, False)
    head = await _events(db, kit.matter.id)
    with pytest.raises(NotFound):
        await committer.append(jo, _send(kit, "for-sam", "jo-2", files=[file_id]), None)
    assert await _events(db, kit.matter.id) == head


async def test_a_matter_that_keeps_moving_holds_up_only_its_own_sends(
    db: Database, settings: Settings, make_firm: MakeFirm
) -> None:
    """Another firm's matter changes between every check and its write (here: its
    version moved by another connection each time this worker prepares a batch).
    A send to it may fail ``unavailable``; a send of another firm's matter in the
    same batch must still be written."""
    busy = await make_firm()
    calm = await make_firm()
    async with wired_worker(db, settings) as (committer, guards):
        prepare = committer.prepare
        assert prepare is not None

        async def moving(session: AsyncSession, batch: Any, /) -> Any:
            out = await prepare(session, batch)
            await guards.ensure(session, [busy.matter.id])  # checked at this version
            async with db.write() as other:  # another worker changes it meanwhile
                await other.execute(
                    update(Matter)
                    .where(Matter.id == busy.matter.id)
                    .values(access_version=Matter.access_version + 1)
                )
            return out

        committer.prepare = moving
        outcomes: dict[str, BaseException | None] = {}
        both = asyncio.Event()

        def done(name: str) -> OnDone:
            def answered(_outcome: object, error: BaseException | None) -> None:
                outcomes[name] = error
                if len(outcomes) == 2:
                    both.set()

            return answered

        committer.submit(busy.staff, _send(busy, "t", "b1"), busy.matter, done("busy"))
        committer.submit(calm.staff, _send(calm, "t", "c1"), calm.matter, done("calm"))
        await both.wait()
    assert isinstance(outcomes["busy"], Unavailable)
    assert outcomes["calm"] is None
    assert await _events(db, calm.matter.id) == 1


async def test_an_entry_read_again_within_a_batch_does_not_vouch_for_older_facts(
    db: Database, settings: Settings, make_firm: MakeFirm
) -> None:
    """Jo replies in Sam's thread while she sees the applicants; another worker turns
    that off. In Jo's next batch the thread rules use the members remembered at the
    old version, then the matter's entry ends (a membership's expiry passes between
    the rules and the key checks, which read the version again: the new one). The
    write must be held to the version the members were used at, not the new one."""
    kit = await make_firm()
    sam, _ = await kit.add_contact("Sam", matter=kit.matter)
    jo = kit.contact
    async with wired_worker(db, settings) as (committer, guards):
        opener = Send(
            kit.ref, "message", "portal", {"thread": "for-sam", "to": [sam.id]}, b"o", "o1"
        )
        await committer.append(kit.staff, opener, None)
        await committer.append(jo, _send(kit, "for-sam", "jo-1"), None)
        await _another_worker_sets_see_applicants(settings, kit, jo.id, False)
        prepare = committer.prepare
        assert prepare is not None

        async def expiry_passes(session: AsyncSession, batch: Any, /) -> Any:
            out = await prepare(session, batch)
            # The clock reaches the entry's end (a membership's expiry): the same
            # as that time passing here, without waiting for it.
            entry = guards._entries.get(kit.matter.id)
            if entry is not None:
                entry.until = utcnow() - timedelta(seconds=1)
            return out

        committer.prepare = expiry_passes
        head = await _events(db, kit.matter.id)
        with pytest.raises(NotFound):
            await committer.append(jo, _send(kit, "for-sam", "jo-2"), None)
        assert await _events(db, kit.matter.id) == head


async def test_the_largest_valid_document_type_and_disclosures_fit_their_bodies(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A label of 200 and a description of 2,000 characters are valid whatever the
    characters; the body limit is in bytes, and a client may send them as raw
    UTF-8 (4 bytes for an emoji) or as JSON escapes (12 bytes for one). The same
    for twenty disclosure labels of 200 characters."""
    kit = await make_firm()
    headers = {**kit.auth("admin"), "Content-Type": "application/json"}
    for i, ascii_only in enumerate((False, True)):
        body = {"label": f"{i}" + "é" * 199, "description": "\U0001f600" * 2000}
        raw = json.dumps(body, ensure_ascii=ascii_only).encode()
        r = await http.post("/api/v1/firm/document-types", content=raw, headers=headers)
        assert r.status_code == 201, r.text
    labels = [f"{i:02}" + "\U0001f600" * 198 for i in range(20)]
    raw = json.dumps({"required_disclosures": labels}).encode()
    r = await http.patch("/api/v1/firm", content=raw, headers=headers)
    assert r.status_code == 200, r.text
