"""A thread name holding U+0000 is refused (docs/threads.md "Ids": 1-64 of
``[A-Za-z0-9_-]``; a send checks ``payload.thread`` as a string of up to 64 bytes).

SQLite's JSON functions end a string at ``\\u0000``, and the thread index is
``json_extract(payload, '$.thread')``: a client's message to ``N1\\x00`` opened a
thread of its own (no opener is named so) that every thread read took for ``N1``,
an internal thread the client is refused (``no_such_thread``). PostgreSQL cannot
hold the name (a server error). Client JSON holding U+0000 anywhere is now refused
as it is parsed (``jsonlimits.loads``); the thread rules refuse such a name too, for
a send made inside the server (``prepare_sends``, below)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from rtportal.db import Database
from rtportal.errors import BadRequest
from rtportal.events.send import Send
from rtportal.threads.items import prepare_sends
from tests.conftest import MakeFirm


def _send(kind: str, cid: str, thread: str) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "client_id": cid, "payload": {"thread": thread}}
    if kind == "note":
        body["audience"] = "staff"
    return body


@pytest.mark.parametrize(("who", "kind"), [("contact", "message"), ("staff", "note")])
async def test_a_thread_name_with_nul_is_refused(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm, who: str, kind: str
) -> None:
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/events"
    opened = await http.post(url, json=_send("note", "n1", "N1"), headers=kit.auth("staff"))
    assert opened.status_code == 201, opened.text
    for thread in ("N1\x00", "N1\x00x", "\x00"):
        r = await http.post(url, json=_send(kind, f"c{len(thread)}", thread), headers=kit.auth(who))
        assert r.status_code == 400, r.text  # refused with the body (jsonlimits: U+0000)
        assert r.json()["error"]["code"] == "bad_request", r.text
    items = await http.get(f"/api/v1/matters/{kit.ref}/threads/N1/items", headers=kit.auth("staff"))
    assert [e["payload"]["thread"] for e in items.json()["events"]] == ["N1"]


async def test_a_batch_with_such_a_name_prepares_the_others(
    db: Database, make_firm: MakeFirm
) -> None:
    """The batch reads its unknown openers before a send is checked: a name with
    U+0000 among them must not fail the read of the others (PostgreSQL refuses
    it in a parameter) nor stand for another thread (SQLite)."""
    kit = await make_firm()
    matter, staff = kit.matter, kit.staff
    sends = [
        Send(matter.reference, "message", "portal", {"thread": t}, b"x", f"o{i}")
        for i, t in enumerate(["T1\x00", "T2", "T3"])
    ]
    async with db.read() as session:
        made = await prepare_sends(session, [(staff, matter, s) for s in sends])
    assert isinstance(made[0], BadRequest)
    assert all(isinstance(m, Send) for m in made[1:])
