"""Review 13: what the change 2d3300f..9b59b6f let through, each kept as a test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtportal.db import Database
from rtportal.db.models_files import StoredFile
from rtportal.errors import NotFound
from rtportal.events.groupcommit import GroupCommit
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
    file_id = "f" * 22
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
