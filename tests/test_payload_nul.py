"""A payload string holding U+0000 is refused with ``bad_request``, on every backend.

PostgreSQL's ``jsonb`` cannot hold ``\\u0000``, and the thread index casts a
message's payload to ``jsonb`` (``threads.sql``): such an event failed its
batch's statement (a server error), and SQLite's JSON functions end a string
there. Thread names had their own check (``test_thread_name_nul``); any other
string of a payload (a message's ``subject``-less fields, a phase, a card)
reaches the same statement, so ``events.validate`` refuses it for every kind.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from rtportal import jsonlimits
from rtportal.errors import BadRequest
from tests.conftest import MakeFirm


@pytest.mark.parametrize(
    ("who", "kind", "payload"),
    [
        ("contact", "edit", {"item": "c1.m\x00"}),
        ("contact", "delete", {"item": "\x00"}),
        ("staff", "tag", {"item": "c1.m\x00", "tag": "t" * 21}),
        ("staff", "tag", {"item": "c1.m", "tag": "t\x00" + "t" * 19}),
        ("contact", "message", {"thread": "T1", "files": ["f\x00"]}),
    ],
)
async def test_a_payload_string_with_nul_is_refused(
    app: Starlette,
    http: httpx.AsyncClient,
    make_firm: MakeFirm,
    who: str,
    kind: str,
    payload: dict[str, object],
) -> None:
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/events"
    body = {"kind": kind, "client_id": "nul1", "payload": payload}
    if kind == "tag":
        body["audience"] = "staff"
    r = await http.post(url, json=body, headers=kit.auth(who))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request", r.text
    ok = {"kind": "message", "client_id": "ok1", "payload": {"thread": "T2"}}
    r = await http.post(url, json=ok, headers=kit.auth("contact"))
    assert r.status_code == 201, r.text  # the matter takes the next send


async def test_an_escaped_backslash_u0000_is_text_not_nul(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """The six characters ``\\u0000`` typed as text are a string like any other (a
    note's plaintext here: a thread id takes none of them, docs/threads.md "Ids")."""
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/events"
    payload = {"thread": "T1", "text": "T\\u0000"}
    body = {"kind": "note", "audience": "staff", "client_id": "txt1", "payload": payload}
    r = await http.post(url, json=body, headers=kit.auth("staff"))
    assert r.status_code == 201, r.text
    assert r.json()["event"]["payload"]["text"] == "T\\u0000"


def test_client_json_with_nul_is_refused_as_it_is_parsed() -> None:
    """``jsonlimits.loads`` (every body, every frame): U+0000 in a key or a string,
    however deep, is ``bad_request``; the escaped text ``\\u0000`` is not U+0000."""
    for text in ('{"a": "x\\u0000"}', '{"a\\u0000": 1}', '[[[{"b": ["\\u0000"]}]]]'):
        with pytest.raises(BadRequest, match="U\\+0000"):
            jsonlimits.loads(text, "frame")
    assert jsonlimits.loads('{"a": "\\\\u0000"}') == {"a": "\\u0000"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/matters/{ref}%00/threads",
        "/api/v1/matters/{ref}/threads/T%00/items",
        "/api/v1/matters/{ref}/events?after=%00",
    ],
)
async def test_a_path_or_query_with_nul_is_not_a_server_error(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm, path: str
) -> None:
    kit = await make_firm()
    r = await http.get(path.format(ref=kit.ref), headers=kit.auth("staff"))
    assert r.status_code in (400, 404), r.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/contacts?q=%00",  # was a server error on PostgreSQL: q went to a LIKE
        "/api/v1/contacts?q=Cle%00o&limit=5",
        "/api/v1/feed?tag=t%00",
        "/api/v1/matters/{ref}/threads/T%00/items",
    ],
)
async def test_a_url_holding_nul_is_a_bad_request(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm, path: str
) -> None:
    """Every endpoint refuses a path or query string holding U+0000 before it runs
    (``http.errors.refuse_nul``): no parameter carries it to a statement."""
    kit = await make_firm()
    r = await http.get(path.format(ref=kit.ref), headers=kit.auth("staff"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request", r.text
    assert "U+0000" in r.json()["error"]["message"], r.text
    found = await http.get("/api/v1/contacts?q=%2500", headers=kit.auth("staff"))
    assert found.status_code == 200, found.text  # the text "%00" is not U+0000
