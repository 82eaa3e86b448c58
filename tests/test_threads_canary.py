"""The threads canary (issue 12, "How it must be shown"): a client never receives a note, a
tag, an internal thread, an internal phase or a hint of them.

A real server (uvicorn; SQLite, or PostgreSQL and Redis when configured), a
firm set up through the Python SDK (real envelopes, a tag name sealed with
the SDK's ``seal_tag_name``), two clients: ``A`` sees the applicants, ``B``
does not. Staff-only markers are planted both inside envelopes (the note
texts, the tag name) and in what the server itself sees (the internal
thread's id, the tag id and its sealed name, the notes' item client ids and
sealed blobs, the internal phase's name, and each staff-only event's cursor
token as a client would get it). The scenario drives every item type; every
HTTP body (the SDK's own calls included) and every websocket frame each
client session receives is kept, with the outbox rows (the only
notification path: rtportal/notify), and searched: 0 hits. A client's unread
counts (per thread and per matter) and thread list do not move for a note,
a tag, internal typing or an internal phase change.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from rtportal.db.models import OutboxMessage
from rtportal.sdk import tags as sdk_tags
from rtportal.sdk.client import Client
from tests.conftest import MakeFirm
from tests.support.canary import canary
from tests.support.recorder import Frame, Live, is_, record_http
from tests.support.sdkworld import SdkWorld, sdk_world
from tests.support.server import RunningServer
from tests.support.threadworld import Applicants, hide_applicants

pytestmark = pytest.mark.timeout(300)

STAFF_KINDS = {"note", "tag", "phase"}


async def _snapshot(client: Client, ref: str) -> tuple[Any, Any]:
    """What a client's counts say: ``/unread`` and the thread list without its
    keyset cursors (positions are fresh tokens each time)."""
    unread = await client.http.call("GET", f"/api/v1/matters/{ref}/unread")
    listed = await client.http.call("GET", f"/api/v1/matters/{ref}/threads")
    rows = [{k: v for k, v in t.items() if k != "last"} for t in listed["threads"]]
    return unread, rows


async def _read_everything(client: Client, ref: str) -> None:
    """Every read endpoint a client has, for each thread it lists (bodies recorded)."""
    await client.http.call("GET", "/api/v1/matters")
    await client.http.call("GET", f"/api/v1/matters/{ref}")
    await client.http.call("GET", f"/api/v1/matters/{ref}/timeline")
    await client.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
    await client.http.call("GET", f"/api/v1/matters/{ref}/events", before="end")
    listed = await client.http.call("GET", f"/api/v1/matters/{ref}/threads")
    for t in listed["threads"]:
        base = f"/api/v1/matters/{ref}/threads/{t['thread']}"
        await client.http.call("GET", f"{base}/items")
        await client.http.call("GET", f"{base}/items", around="unread")
        await client.http.call("GET", f"{base}/receipts")
        await client.http.call("GET", f"{base}/first-unread")
    await client.read(ref)  # the SDK's own reading and key sync


def _event(frame: Frame, thread: str) -> bool:
    return frame.get("type") == "event" and frame["payload"].get("thread") == thread


async def _staff_item(w: SdkWorld, ref: str, thread: str, kind: str, text: str) -> tuple[str, int]:
    """(item id, seq) of the staff member's item with ``text`` in ``thread``."""
    for item in await w.staff.read(ref):
        if item.thread == thread and item.kind == kind and item.body.text == text:
            assert item.item is not None and isinstance(item.at, int)
            return item.item, item.at
    raise AssertionError(f"no {kind} {text!r} in {thread}")


async def test_no_staff_only_marker_reaches_a_client(
    uvicorn_server: RunningServer, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    srv = uvicorn_server
    codec = srv.app.state.runtime.frames.cursors
    async with sdk_world(srv, kit, tmp_path) as w:
        matter = await w.matter("Partner visa")
        ref = matter.reference
        acc_a = await w.accepted(
            matter, "Ada", ("Welcome", "hello Ada"), "pw a " + secrets.token_hex(4)
        )
        acc_b = await w.accepted(
            matter, "Bea", ("Welcome", "hello Bea"), "pw b " + secrets.token_hex(4)
        )
        await hide_applicants(kit.db, matter, acc_b.contact)
        a, b, ida, idb = acc_a.client, acc_b.client, acc_a.contact.id, acc_b.contact.id
        bodies: dict[str, list[str]] = {"A": [], "B": []}
        record_http(a, bodies["A"])
        record_http(b, bodies["B"])

        # Staff-only markers, and threads each client may not see.
        note_in_thread, note_internal = canary("note-in-thread"), canary("note-internal")
        tag_name, phase_name = canary("tag-name"), canary("internal-phase")
        ithread = canary("ithread")
        t_a, t_b, t_ab = (
            canary("thread-to-a"),
            canary("thread-to-b"),
            "both-" + secrets.token_hex(6),
        )
        a_own = canary("thread-of-a")
        staff_only = [note_in_thread, note_internal, tag_name, phase_name, ithread]
        not_for_b = [t_a, a_own]

        live_s = await Live.open(w.staff, "staff")
        live_a, live_b = await Live.open(a, "A"), await Live.open(b, "B")
        for live in (live_s, live_a, live_b):
            assert (await live.subscribe(ref))["type"] == "subscribed"

        # Client threads: staff open one to A only, one to B only, one to both;
        # A opens one of its own; both reply.
        await w.staff.send(ref, thread=t_a, subject="Docs", text="passport?", to=[ida])
        await w.staff.send(ref, thread=t_b, subject="Docs", text="payslips?", to=[idb])
        await w.staff.send(ref, thread=t_ab, subject="Both", text="meeting?", to=[ida, idb])
        await a.send(ref, thread=a_own, subject="Question", text="a question")
        await a.send(ref, thread=t_a, text="here is my passport")
        await b.send(ref, thread=t_b, text="here are my payslips")
        await live_a.until(lambda f: _event(f, t_a) and f["actor"]["kind"] == "contact")
        opener_a, _ = await _staff_item(w, ref, t_a, "message", "passport?")

        before = {"A": await _snapshot(a, ref), "B": await _snapshot(b, ref)}
        marks = {"A": len(live_a.frames), "B": len(live_b.frames)}

        # --- the staff-only block: a note in A's thread, an internal thread, a tag
        # added and removed, internal typing, an internal phase change.
        tag = await sdk_tags.create_tag(w.staff, tag_name)
        await w.staff.send(ref, thread=t_a, text=note_in_thread, staff_only=True)
        await w.staff.send(ref, thread=ithread, text=note_internal, staff_only=True)
        note_a, seq_note_a = await _staff_item(w, ref, t_a, "note", note_in_thread)
        note_i, seq_note_i = await _staff_item(w, ref, ithread, "note", note_internal)
        tagged = [await sdk_tags.tag_item(w.staff, ref, opener_a, tag)]
        tagged.append(await sdk_tags.tag_item(w.staff, ref, note_a, tag))
        tagged.append(await sdk_tags.tag_item(w.staff, ref, opener_a, tag, removed=True))
        assert all(t["changed"] for t in tagged)
        await live_s.send(type="typing", matter=ref, thread=t_a, internal=True)
        await live_s.send(type="typing", matter=ref, thread=ithread, internal=True)
        created = await w.admin.http.call("POST", "/api/v1/firm/matter-types", {
            "name": "Visa " + secrets.token_hex(3),
            "steps": [{"name": "Lodged", "description": "with the department"}],
            "phases": [{"name": phase_name, "step": None}, {"name": "Lodging", "step": 0}],
        })  # fmt: skip
        internal_phase, lodging = (p["id"] for p in created["matter_type"]["phases"])
        moved = await w.staff.http.call(
            "POST", f"/api/v1/matters/{ref}/phase", {"phase": internal_phase}
        )
        staff_seqs = [
            seq_note_a,
            seq_note_i,
            *(t["event"]["seq"] for t in tagged),
            *moved["events"],
        ]
        # The barrier: a staff reply in the thread to both; the first frame either
        # client gets after the block is its event.
        await w.staff.send(ref, thread=t_ab, text="barrier")
        for name, live in (("A", live_a), ("B", live_b)):
            first = await live.until(lambda f: f.get("type") in {"event", "typing", "receipt",
                                     "unread"}, marks[name])  # fmt: skip
            assert _event(first, t_ab), (name, first)
        after = {"A": await _snapshot(a, ref), "B": await _snapshot(b, ref)}
        for name in ("A", "B"):  # the barrier's one item, nothing else
            was = before[name][0]
            assert after[name][0] == {
                "matter": was["matter"] + 1,
                "threads": {**was["threads"], t_ab: was["threads"].get(t_ab, 0) + 1},
            }, name
        for name in ("A", "B"):  # the thread list: only the barrier's thread moved
            moved_rows = [r for r in after[name][1] if r not in before[name][1]]
            assert [r["thread"] for r in moved_rows] == [t_ab], (name, moved_rows)

        # Typing the client may see (positive control: the recording works).
        await live_s.send(type="typing", matter=ref, thread=t_ab)
        for live in (live_a, live_b):
            await live.until(is_("typing", thread=t_ab))

        # Edit, delete, read marks (a staff mark on the note: its receipt), client
        # typing, a phase the client sees, receipts.
        await w.staff.send(ref, thread=t_a, text="passport, please", edits=opener_a)
        barrier_item, _ = await _staff_item(w, ref, t_ab, "message", "barrier")
        await w.staff.delete(ref, barrier_item, client_id="del-barrier")
        ack = await live_s.request(type="read", id="rs", matter=ref, thread=t_a, upto=seq_note_a)
        assert ack["type"] == "ack", ack
        await live_s.request(type="read", id="rs2", matter=ref, thread=ithread, upto=seq_note_i)
        await live_a.send(type="typing", matter=ref, thread=t_a)
        await live_s.until(is_("typing", thread=t_a))
        newest = [f for f in live_a.frames if _event(f, t_a)][-1]
        ack = await live_a.request(
            type="read", id="ra", matter=ref, thread=t_a, upto=newest["cursor"]
        )
        assert ack["type"] == "ack", ack
        newest_b = [f for f in live_b.frames if _event(f, t_b)][-1]
        await b.http.call("POST", f"/api/v1/matters/{ref}/threads/{t_b}/read",
                          {"upto": newest_b["cursor"]})  # fmt: skip
        await w.staff.http.call("POST", f"/api/v1/matters/{ref}/phase", {"phase": lodging})
        await live_a.until(lambda f: f.get("type") == "event" and f["kind"] == "step")
        # Final barrier for both, then every read endpoint of each client.
        at_final = {"A": len(live_a.frames), "B": len(live_b.frames)}
        await w.staff.send(ref, thread=t_ab, text="final")
        for name, live in (("A", live_a), ("B", live_b)):
            await live.until(lambda f: _event(f, t_ab) and f["kind"] == "message",
                             at_final[name])  # fmt: skip
        for client in (a, b):
            await _read_everything(client, ref)
        await live_s.send(type="ping", id="last")
        await live_s.until(is_("pong", id="last"))
        for live in (live_s, live_a, live_b):
            await live.close()

        # What the server sees of the staff-only items: their ids, blobs, tokens.
        staff_page = await w.staff.http.call("GET", f"/api/v1/matters/{ref}/events", after=0)
        blobs = [e["blob"] for e in staff_page["events"] if e["kind"] == "note"]
        listed_tags = await w.staff.http.call("GET", "/api/v1/firm/tags")
        name_blobs = [t["name_blob"] for t in listed_tags["tags"] if t["tag"] == tag]
        server_side = [tag, *name_blobs, *blobs, note_a.split(".", 1)[1], note_i.split(".", 1)[1]]
        tokens = [codec.event_token(matter.id, s) for s in staff_seqs]
        assert len(blobs) == 2 and len(name_blobs) == 1 and len(tokens) >= 6

        async with kit.db.read() as session:
            outbox = list(await session.scalars(select(OutboxMessage)))
        notes = [f"{o.recipient} {o.subject} {o.body}" for o in outbox]

        seen = {
            name: [*bodies[name], *live.texts, *notes]
            for name, live in (("A", live_a), ("B", live_b))
        }
        needles = {
            "A": [*staff_only, *server_side, *tokens],
            "B": [*staff_only, *server_side, *tokens, *not_for_b],
        }
        for name in ("A", "B"):
            hay = "\n".join(seen[name])
            hits = [n for n in needles[name] if n in hay]
            frames = [json.loads(t) for t in (live_a if name == "A" else live_b).texts]
            kinds = {f["kind"] for f in frames if f.get("type") == "event"}
            print(f"threads canary {name}: {len(bodies[name])} HTTP bodies, "
                  f"{len(frames)} frames, {len(notes)} outbox rows, {len(hay)} bytes, "
                  f"{len(needles[name])} needles, {len(hits)} hits {hits[:3]}")  # fmt: skip
            where = [t[:300] for t in seen[name] if any(h in t for h in hits)]
            assert hits == [], where[:3]
            assert not kinds & STAFF_KINDS, kinds
            assert not any("internal" in f for f in frames)
            assert {"message", "delete", "step"} | ({"edit"} if name == "A" else set()) <= kinds
        # Both clients did see what they may: the thread to both, their own threads.
        assert t_a in "\n".join(seen["A"]) and t_b in "\n".join(seen["B"])
        assert any(is_("receipt", thread=t_a)(f) for f in live_a.frames)


async def test_a_clients_history_pages_count_no_hidden_event(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    w = await Applicants.make(kit)
    await w.item(kit.admin, "tA", to=(w.a.id,))  # not b's
    await w.item(kit.admin, "tB", kind="note")
    await w.item(kit.admin, "tB", to=(w.b.id,))
    await w.item(kit.admin, "tB", kind="note")
    headers = {"Authorization": f"Bearer {w.b_token}"}
    pages: list[tuple[int, bool]] = []
    after: str | int = 0
    while True:
        response = await http.get(
            f"/api/v1/matters/{kit.ref}/events",
            params={"after": after, "limit": 1},
            headers=headers,
        )
        page = response.json()
        pages.append((len(page["events"]), page["more"]))
        if not page["more"]:
            break
        after = page["next"]
    # b sees one event (its thread's message): one page holding it, and nothing
    # that says how many events it did not see, before it or after it (the page
    # used to be read from the raw log and filtered after: one empty page with
    # ``more`` per hidden event).
    assert pages == [(1, False)]
    latest = await http.get(
        f"/api/v1/matters/{kit.ref}/events", params={"before": "end", "limit": 1}, headers=headers
    )
    assert [len(latest.json()["events"]), latest.json()["more"]] == [1, False]
