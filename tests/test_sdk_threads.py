"""Threads through the Python client against the real server (docs/threads.md):
a staff member opens a client thread to a chosen client, the client replies,
staff write an internal note in it, the sender edits and deletes; readers
verify item ids and edits against the envelopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from rtportal.crypto.errors import WrongContext
from rtportal.db.models import Event
from rtportal.sdk import messages
from rtportal.sdk.errors import ApiError
from tests.conftest import MakeFirm
from tests.support.sdkworld import sdk_world
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)


async def test_open_reply_note_edit_delete_through_the_sdk(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with sdk_world(uvicorn_server, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        cleo, _, client, _ = await w.accepted(matter, "Cleo", ("Hi", "hello"), "pw 1 x")
        staff_uid = f"s{kit.staff.id}"
        await w.staff.send(ref, thread="docs", subject="Documents", text="passport?", to=[cleo.id])
        await client.send(ref, thread="docs", text="here it is")
        await w.staff.send(ref, thread="docs", text="checked", staff_only=True)
        read = [i for i in await client.read(ref) if i.thread == "docs"]
        assert [(i.kind, i.body.text) for i in read] == [
            ("message", "passport?"),
            ("message", "here it is"),
        ]
        opener, reply = read
        assert opener.item is not None and opener.item.startswith(f"{staff_uid}.")
        assert opener.item == messages.item_of(opener.header)

        # the sender edits; the client reads the edit of that item
        await w.staff.send(ref, thread="docs", text="passport, please", edits=opener.item)
        edits = [i for i in await client.read(ref) if i.kind == "edit"]
        assert [(i.item, i.body.text) for i in edits] == [(opener.item, "passport, please")]
        # nobody else may edit it: the server refuses, whatever the envelope says
        with pytest.raises(ApiError) as refused:
            await client.send(ref, thread="docs", text="forged", edits=opener.item)
        assert (refused.value.server_code, refused.value.details.get("reason")) == (
            "forbidden",
            "not_sender",
        )

        # the client deletes their reply: its blob is gone, readers skip it
        assert reply.item is not None
        await client.delete(ref, reply.item, client_id="del-1")
        await client.delete(ref, reply.item, client_id="del-1")  # a retry: one delete
        texts = [i.body.text for i in await w.staff.read(ref) if i.thread == "docs"]
        assert texts == ["passport?", "checked", "passport, please"]
        async with kit.db.read() as session:
            kinds = await session.scalars(
                select(Event.kind).where(Event.matter_id == matter.id, Event.kind == "delete")
            )
            assert list(kinds) == ["delete"]

        # a reader checks the item id the server set against the envelope
        page = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
        event = next(e for e in page["events"] if e["payload"].get("item") == opener.item)
        forged = {**event, "payload": {**event["payload"], "item": f"{staff_uid}.other"}}
        d = await w.admin.sync([ref])
        with pytest.raises(WrongContext):
            messages.open_event(d, w.admin.state.matter(ref), forged, w.admin.clock())
