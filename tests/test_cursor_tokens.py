"""Protocol v2: a contact never sees a seq (docs/protocol.md, "Cursors").

Unit tests of the one cursor module (rtportal/events/cursor.py), then a real
server (uvicorn, the database and broker of the run: SQLite or PostgreSQL
and Redis): every frame and HTTP body a contact gets carries tokens, tokens
round-trip, a forged or another matter's token is refused with a stable
reason, resuming from a token after a reconnect leaves no gap and no
duplicate, and a v1 client is told which versions are spoken.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rtportal.app import create_app
from rtportal.errors import InvalidCursor
from rtportal.events.cursor import MAX_SEQ, TOKEN_RE, CursorCodec
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS
from tests.conftest import FirmKit, MakeFirm
from tests.support.server import RunningServer, running_server
from tests.support.wsjson import HELLO, Frame, open_ws, recv, unseal, until_closed
from tests.test_ws_endpoint import RECIPIENTS, connected, send_frame, send_many, subscribe

# --- the codec ---------------------------------------------------------------------


def test_tokens_round_trip_and_name_their_matter() -> None:
    codec = CursorCodec(b"k" * 32)
    for seq in (0, 1, 41, 45, MAX_SEQ):
        token = codec.event_token(7, seq)
        assert TOKEN_RE.fullmatch(token)
        assert token == codec.event_token(7, seq)  # deterministic: one frame per event
        assert codec.seq_of(token, 7) == seq
        position = codec.position_token(7, seq)
        assert position != token and codec.seq_of(position, 7) == seq
        with pytest.raises(InvalidCursor) as exc:
            codec.seq_of(token, 8)  # another matter's
        assert exc.value.details == {"reason": "foreign_cursor"}
    # Another server (another secret) reads none of them.
    with pytest.raises(InvalidCursor):
        CursorCodec(b"x" * 32).seq_of(codec.event_token(7, 1), 7)


def test_tokens_say_nothing_about_distance() -> None:
    """Consecutive seqs give unrelated tokens; positions differ from each other."""
    codec = CursorCodec(b"k" * 32)
    a, b = codec.event_token(1, 41), codec.event_token(1, 42)
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 12
    assert len({codec.position_token(1, 41) for _ in range(50)}) > 40


def test_tampered_and_malformed_tokens_are_refused_with_stable_reasons() -> None:
    codec = CursorCodec(b"k" * 32)
    token = codec.event_token(3, 10)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    for i in range(16):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        with pytest.raises(InvalidCursor) as exc:
            codec.seq_of(forged, 3)
        assert exc.value.details == {"reason": "foreign_cursor"}
    for bad in ("", "41", token + "A", token[:-1] + "B", 41, None, True, "é" * 22):
        with pytest.raises(InvalidCursor) as exc:
            codec.seq_of(bad, 3)
        assert exc.value.details == {"reason": "not_a_cursor"}


def test_viewers_get_and_send_their_own_spelling() -> None:
    codec = CursorCodec(b"k" * 32)
    assert codec.cursor_for("staff", 1, 5) == 5
    token = codec.cursor_for("portal", 1, 5)
    assert isinstance(token, str) and codec.parse(token, "portal", 1).after == 5
    assert codec.parse(None, "portal", 1).after == 0
    assert codec.parse(0, "portal", 1).after == 0  # the start names no position
    cases: list[tuple[object, str, str]] = [
        (5, "portal", "token_required"),
        (token, "staff", "seq_required"),
        ("x", "portal", "not_a_cursor"),
    ]
    for value, viewer, reason in cases:
        with pytest.raises(InvalidCursor) as exc:
            codec.parse(value, viewer, 1)  # type: ignore[arg-type]
        assert exc.value.details == {"reason": reason}
    assert codec.parse_query("5", "staff", 1).after == 5
    assert codec.parse_query(token, "portal", 1).after == 5
    with pytest.raises(InvalidCursor):
        codec.parse_query("5", "portal", 1)


# --- a real server -------------------------------------------------------------------


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), ws=UVICORN_WS) as srv:
        yield srv


@pytest.fixture
async def kit(make_firm: MakeFirm) -> FirmKit:
    made = await make_firm()
    RECIPIENTS[made.ref] = [made.contact.id]  # the client a staff thread is addressed to
    return made


_INT_CURSOR = re.compile(r'"(seq|head|after|next|prev|reply_to|upto|last|first_unread)":\s*[0-9]')


def no_seq(text: str) -> None:
    """Nothing in a contact's frame or body is an integer cursor."""
    assert _INT_CURSOR.search(text) is None, text


async def _post(srv: RunningServer, kit: FirmKit, who: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        response = await client.post(
            f"/api/v1/matters/{kit.ref}/events", json=body, headers=kit.auth(who)
        )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _history(srv: RunningServer, kit: FirmKit, who: str, **query: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        return await client.get(
            f"/api/v1/matters/{kit.ref}/events", params=query, headers=kit.auth(who)
        )


async def test_a_contact_never_sees_a_seq_and_resumes_from_a_token(
    server: RunningServer, kit: FirmKit
) -> None:
    mid = kit.matter.id
    staff = await connected(server, kit.tokens["staff"])
    seen: list[str] = []  # every text the contact received
    contact = await connected(server, kit.tokens["contact"])
    sub = await subscribe(contact, kit.ref)
    seen.append(json.dumps(sub))
    assert sub["type"] == "subscribed" and isinstance(sub["head"], str)
    # Portal, staff, portal, staff, staff, portal: the contact's stream skips 2, 4, 5.
    ids = ["p1", "n2", "p3", "n4", "n5", "p6"]
    for fid in ids:
        audience = "staff" if fid.startswith("n") else "portal"
        await send_many(staff, kit.ref, [fid], audience=audience)
    got: list[Frame] = []
    while len(got) < 3:
        frame = await recv(contact)
        seen.append(json.dumps(frame))
        got.append(unseal(server, frame, mid))
    assert [f["seq"] for f in got] == [1, 3, 6]
    # The contact's own send: acked with the event's token, which its event carries.
    await contact.send(send_frame("c7", kit.ref))
    frames = [await recv(contact), await recv(contact)]
    seen += [json.dumps(f) for f in frames]
    ack = next(f for f in frames if f["type"] == "ack")
    event = next(f for f in frames if f["type"] == "event")
    assert ack["cursor"] == event["cursor"] and unseal(server, ack, mid)["seq"] == 7
    # Reconnect and resume from the token of the third event: 7 follows, once.
    await contact.close()
    await send_many(staff, kit.ref, ["n8", "p9"], audience="portal")
    again = await connected(server, kit.tokens["contact"])
    sub = await subscribe(again, kit.ref, got[2]["cursor"])
    seen.append(json.dumps(sub))
    resumed: list[Frame] = []
    while not resumed or resumed[-1]["seq"] != 9:
        frame = await recv(again)
        seen.append(json.dumps(frame))
        resumed.append(unseal(server, frame, mid))
    assert [f["seq"] for f in resumed] == [7, 8, 9]
    # HTTP: history pages, forward and backward, and the POST answer.
    bodies = [
        (await _history(server, kit, "contact")).text,
        (await _history(server, kit, "contact", before="end", limit=2)).text,
        (await _history(server, kit, "contact", after=got[0]["cursor"])).text,
    ]
    page = json.loads(bodies[2])
    assert [unseal(server, e, mid)["seq"] for e in page["events"]] == [3, 6, 7, 8, 9]
    latest = json.loads(bodies[1])
    assert [unseal(server, e, mid)["seq"] for e in latest["events"]] == [8, 9]
    earlier = await _history(server, kit, "contact", before=latest["prev"], limit=2)
    assert [unseal(server, e, mid)["seq"] for e in earlier.json()["events"]] == [6, 7]
    bodies.append(earlier.text)
    posted = await _post(
        server, kit, "contact", kind="message", client_id="h10", blob="UlRNMQ",
        payload={"thread": "h10"},
    )  # fmt: skip
    assert posted["cursor"] == posted["event"]["cursor"]
    bodies.append(json.dumps(posted))
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for path in ("/api/v1/matters", f"/api/v1/matters/{kit.ref}"):
            bodies.append((await client.get(path, headers=kit.auth("contact"))).text)
    for text in seen + bodies:
        no_seq(text)
    # Staff keep integers everywhere.
    staff_page = (await _history(server, kit, "staff")).json()
    assert [e["seq"] for e in staff_page["events"]] == list(range(1, 11))
    assert staff_page["head"] == 10
    for ws in (staff, again):
        await ws.close()


async def test_foreign_and_tampered_tokens_are_refused(server: RunningServer, kit: FirmKit) -> None:
    second = await kit.add_matter(title="Second")
    codec = server.app.state.runtime.frames.cursors
    other = codec.event_token(second.id, 1)  # a token of a matter the contact also sees
    token = codec.event_token(kit.matter.id, 1)
    tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    contact = await connected(server, kit.tokens["contact"])
    for n, bad in enumerate((other, tampered)):
        answer = await subscribe(contact, kit.ref, bad, fid=f"s{n}")
        assert answer["type"] == "error" and answer["code"] == "invalid_cursor", answer
        assert answer["details"] == {"reason": "foreign_cursor"} and answer["matter"] == kit.ref
        response = await _history(server, kit, "contact", after=bad)
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"reason": "foreign_cursor"}
    # A contact's integer (other than "the start") and a staff member's token.
    answer = await subscribe(contact, kit.ref, 3, fid="s3")
    assert (answer["code"], answer["details"]) == ("invalid_cursor", {"reason": "token_required"})
    staff = await connected(server, kit.tokens["staff"])
    answer = await subscribe(staff, kit.ref, token, fid="s4")
    assert (answer["code"], answer["details"]) == ("invalid_cursor", {"reason": "seq_required"})
    # The connection is still usable: the right token subscribes.
    await send_many(staff, kit.ref, ["p1"])
    assert (await subscribe(contact, kit.ref, 0, fid="s5"))["type"] == "subscribed"
    for ws in (contact, staff):
        await ws.close()


@pytest.mark.parametrize("first", ["v1-hello", "no-hello", "bad-version"])
async def test_a_v1_client_is_told_the_supported_versions_and_closed(
    server: RunningServer, kit: FirmKit, first: str
) -> None:
    frames = {
        "v1-hello": {"type": "hello", "id": "h", "v": 1},
        "no-hello": {"type": "subscribe", "id": "h", "subs": [{"matter": kit.ref, "after": 0}]},
        "bad-version": {"type": "hello", "id": "h", "v": "2"},
    }
    ws = await open_ws(server, kit.tokens["contact"])
    hello = await recv(ws)
    assert (hello["v"], hello["versions"]) == (2, [2])
    await ws.send(json.dumps(frames[first]))
    code, got = await until_closed(ws)
    assert code == 4006
    assert got == [
        {
            "type": "error",
            "id": "h",
            "code": "protocol_version",
            "message": "protocol version 2 required: send hello with v first",
            "details": {"supported": [2]},
        }
    ]


async def test_a_second_hello_is_a_bad_request(server: RunningServer, kit: FirmKit) -> None:
    ws = await connected(server, kit.tokens["staff"])
    await ws.send(HELLO)
    answer = await recv(ws)
    assert (answer["type"], answer["code"]) == ("error", "bad_request")
    await ws.send(json.dumps({"type": "ping", "id": "p"}))
    assert await recv(ws) == {"type": "pong", "id": "p"}
    await ws.close()
