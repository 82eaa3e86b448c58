"""The read side's frames in the sans-I/O protocol core, without sockets (docs/protocol.md).

``read`` and ``typing`` parsed and refused as documented, ``read`` answered
by its ack, typing's rate (drop-newest, one per 3 s per connection and
thread, driven by the injected clock, bounded memory), and the ephemeral
frames of the hub filtered per connection: subscribed matter only, staff,
contacts named, one user's connections, never the typist's or the
reading connection. Then the broker form of an ephemeral message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtportal.errors import NotFound
from rtportal.principal import Principal
from rtportal.realtime.message import (
    Ephemeral,
    decode_ephemeral,
    encode_ephemeral,
    encode_event_message,
    peek_event_message,
)
from rtportal.ws.frames import Limits, Read, Typing
from rtportal.ws.protocol import Authorize, FrameCache, LoadBacklog, Protocol
from rtportal.ws.threadproto import TYPING_INTERVAL, TYPING_TRACKED, MarkRead, RelayTyping
from tests.support.wsjson import HELLO
from tests.test_ws_protocol import ev

STAFF = Principal(kind="staff", id=1, firm_id=1, display_name="Ada Staff")
BOT = Principal(kind="bot", id=9, firm_id=1, display_name="Robo")
CONTACT = Principal(kind="contact", id=7, firm_id=1, display_name="Mei Chen")
OTHER = Principal(kind="contact", id=8, firm_id=1, display_name="Bea Applicant")
M, MID = "AAAA0000", 11


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new(principal: Principal = STAFF, **limits: int) -> tuple[Protocol, Clock]:
    p = Protocol(principal, Limits(**limits), FrameCache())
    clock = Clock()
    p.clock = clock
    p.connected()
    assert p.receive_text(HELLO) == []  # the client's version (protocol v2) first
    p.take_frames()
    return p, clock


def frames(p: Protocol) -> list[dict[str, Any]]:
    return [json.loads(t) for t in p.take_frames(10_000)]


def text(**frame: Any) -> str:
    return json.dumps(frame)


def live(p: Protocol, matter: str = M, matter_id: int = MID) -> None:
    [auth] = p.receive_text(text(type="subscribe", id="s", subs=[{"matter": matter, "after": 0}]))
    assert isinstance(auth, Authorize)
    [load] = p.subscribed(auth.sub, matter, matter_id, 0)
    assert isinstance(load, LoadBacklog)
    p.backlog_loaded(load.sub, matter, [])
    frames(p)


# --- read ------------------------------------------------------------------------------


def test_a_read_is_executed_and_answered_by_its_ack() -> None:
    p, _ = new(CONTACT)
    [action] = p.receive_text(text(type="read", id="r1", matter=M, thread="t-1", upto=42))
    # The cursor is parsed once the matter is known (threads.cursors): kept as sent.
    assert action == MarkRead(Read("r1", M, "t-1", 42))
    assert frames(p) == []
    assert p.read_marked(action.frame, 42, 3, 5) == []
    assert frames(p) == [
        {
            "type": "ack",
            "id": "r1",
            "matter": M,
            "thread": "t-1",
            "upto": 42,
            "unread": 3,
            "matter_unread": 5,
        }
    ]
    p.read_failed(action.frame, NotFound("no such thread"))
    [err] = frames(p)
    assert (err["type"], err["id"], err["code"], err["matter"]) == ("error", "r1", "not_found", M)


@pytest.mark.parametrize(
    ("frame", "code", "frame_id"),
    [
        ({"type": "read", "matter": M, "thread": "t", "upto": 1}, "bad_request", None),
        ({"type": "read", "id": "r", "matter": M, "thread": "t"}, "bad_request", "r"),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": [1]},
            "invalid_cursor",
            "r",
        ),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": None},
            "invalid_cursor",
            "r",
        ),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": "x" * 65},
            "invalid_cursor",
            "r",
        ),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": 1.5},
            "invalid_cursor",
            "r",
        ),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": True},
            "invalid_cursor",
            "r",
        ),
        ({"type": "read", "id": "r", "matter": M, "thread": "a b", "upto": 1}, "bad_request", "r"),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "x" * 65, "upto": 1},
            "bad_request",
            "r",
        ),
        ({"type": "read", "id": "r", "matter": M, "thread": 5, "upto": 1}, "bad_request", "r"),
        (
            {"type": "read", "id": "r", "matter": "A A", "thread": "t", "upto": 1},
            "bad_request",
            "r",
        ),
        (
            {"type": "read", "id": "r", "matter": M, "thread": "t", "upto": 1, "x": 1},
            "bad_request",
            "r",
        ),
        ({"type": "typing", "matter": M}, "bad_request", None),
        ({"type": "typing", "id": 5, "matter": M, "thread": "t"}, "bad_request", None),
        (
            {"type": "typing", "id": "y", "matter": M, "thread": "t", "internal": 1},
            "bad_request",
            "y",
        ),
        (
            {"type": "typing", "id": "y", "matter": M, "thread": "t", "text": "hi"},
            "bad_request",
            "y",
        ),
        ({"type": "typing", "matter": M, "thread": "t", "internal": "yes"}, "bad_request", None),
    ],
)
def test_bad_read_and_typing_frames_are_refused_with_a_stable_code(
    frame: dict[str, Any], code: str, frame_id: str | None
) -> None:
    p, _ = new()
    assert p.receive_text(json.dumps(frame)) == []
    [err] = frames(p)
    assert (err["type"], err["code"], err["id"]) == ("error", code, frame_id), err


# --- typing ----------------------------------------------------------------------------


def typing(p: Protocol, thread: str = "t1", **extra: Any) -> list[Any]:
    return p.receive_text(text(type="typing", matter=M, thread=thread, **extra))


def test_typing_is_relayed_at_most_once_per_interval_per_thread_and_never_answered() -> None:
    p, clock = new(CONTACT)
    [relay] = typing(p)
    assert relay == RelayTyping(Typing(None, M, "t1", False))
    for _ in range(50):  # a burst: dropped silently
        clock.now += TYPING_INTERVAL / 100
        assert typing(p) == []
    assert frames(p) == []
    assert len(typing(p, "t2")) == 1  # another thread has its own interval
    clock.now = 1000.0 + TYPING_INTERVAL
    assert len(typing(p)) == 1
    assert typing(p) == []
    p.typing_failed(Typing(None, M, "t9", False), NotFound("no such thread"))
    [err] = frames(p)
    assert (err["id"], err["code"], err["matter"]) == (None, "not_found", M)


def test_the_typing_rate_remembers_a_bounded_number_of_threads() -> None:
    p, clock = new()
    for i in range(TYPING_TRACKED):
        assert len(typing(p, f"t{i}")) == 1
    # All remembered threads are recent: a new thread's typing is dropped.
    assert typing(p, "new") == []
    assert p._typing is not None and len(p._typing) == TYPING_TRACKED
    clock.now += TYPING_INTERVAL
    assert len(typing(p, "new")) == 1  # the old ones expired and were forgotten
    assert len(p._typing) == 1


def test_only_staff_type_internal() -> None:
    p, _ = new(CONTACT)
    assert typing(p, internal=True, id="y1") == []
    [err] = frames(p)
    assert (err["code"], err["id"]) == ("bad_request", "y1")
    s, _ = new(BOT)
    assert typing(s, internal=True) == [RelayTyping(Typing(None, M, "t1", True))]


# --- ephemeral frames -----------------------------------------------------------------


def eph(**kw: Any) -> Ephemeral:
    fields: dict[str, Any] = {"id": "e1", "matter_id": MID, "matter": M, "frame": '{"type":"x"}'}
    fields.update(kw)
    return Ephemeral(**fields)


def got(p: Protocol, msg: Ephemeral, conn: str = "c1") -> bool:
    p.ephemeral(msg, conn)
    return bool(frames(p))


def test_ephemeral_frames_reach_only_the_connections_they_name() -> None:
    staff, _ = new(STAFF)
    bot, _ = new(BOT)
    mei, _ = new(CONTACT)
    bea, _ = new(OTHER)
    everyone = (staff, bot, mei, bea)
    for p in everyone:
        assert not got(p, eph(contacts=frozenset({7, 8})))  # not subscribed: nothing
        live(p)
    assert [got(p, eph(contacts=frozenset({7}))) for p in everyone] == [True, True, True, False]
    assert [got(p, eph(staff=False, contacts=frozenset({8}))) for p in everyone] == [
        False,
        False,
        False,
        True,
    ]
    # Never the typist's connections; never the connection a read came from.
    typist = eph(contacts=frozenset({7, 8}), skip_user=("contact", 7))
    assert [got(p, typist) for p in everyone] == [True, True, False, True]
    assert not got(mei, eph(contacts=frozenset({7}), skip_conn="c1"), "c1")
    assert got(mei, eph(contacts=frozenset({7}), skip_conn="c1"), "c2")
    # One user's connections only (unread).
    mine = eph(user=("contact", 7), skip_conn="c1")
    assert [got(p, mine, "c2") for p in everyone] == [False, False, True, False]
    assert not got(mei, mine, "c1")
    staff_mine = eph(user=("staff", 1), contacts=frozenset({7}))
    assert [got(p, staff_mine) for p in everyone] == [True, False, False, False]
    # Another matter (same ref, another id: never a stale subscription's).
    assert not got(staff, eph(matter_id=MID + 1))
    assert not got(staff, eph(matter="BBBB0000"))


def test_ephemeral_frames_wait_for_the_access_check() -> None:
    p, _ = new(STAFF)
    [auth] = p.receive_text(text(type="subscribe", id="s", subs=[{"matter": M, "after": 0}]))
    assert not got(p, eph())  # authorising: access not granted yet
    assert isinstance(auth, Authorize)
    p.subscribed(auth.sub, M, MID, 0)
    frames(p)
    assert got(p, eph())  # granted (its backlog loading): ephemeral frames flow
    p.receive_text(text(type="unsubscribe", id="u", matters=[M]))
    frames(p)
    assert not got(p, eph())


def test_ephemeral_frames_never_close_a_slow_consumer() -> None:
    p, _ = new(STAFF, send_queue=4)
    live(p)
    p.deliver(ev(1))
    p.deliver(ev(2))  # half full
    for _ in range(10):
        assert p.ephemeral(eph(), "c1") == []
    assert p.closed is None
    assert [f["type"] for f in frames(p)] == ["event", "event"]


# --- the broker form -------------------------------------------------------------------


def test_ephemeral_messages_round_trip_and_never_pass_for_events() -> None:
    msg = eph(
        contacts=frozenset({3, 9}),
        user=("contact", 9),
        skip_user=("staff", 2),
        skip_conn="c7",
        portal_frame='{"type":"y"}',
    )
    data = encode_ephemeral(msg)
    assert decode_ephemeral(data) == msg
    # A frame spelled per viewer class: contacts get theirs.
    assert (msg.frame_for(STAFF), msg.frame_for(BOT)) == ('{"type":"x"}', '{"type":"x"}')
    assert msg.frame_for(CONTACT) == '{"type":"y"}'
    assert eph().frame_for(CONTACT) == '{"type":"x"}'
    with pytest.raises(ValueError):
        peek_event_message(data)  # an ephemeral message is never read as an event
    with pytest.raises(ValueError):
        decode_ephemeral(encode_event_message(ev(1)))
    for bad in (
        b"e:[]",
        b"e:{}",
        b'e:{"id":"x","m":"11","ref":"A","f":"{}","s":true,"c":[]}',
        b'e:{"id":"x","m":11,"ref":"A","f":"{}","s":1,"c":[]}',
        b'e:{"id":"x","m":11,"ref":"A","f":"{}","s":true,"c":["7"]}',
        b'e:{"id":"x","m":11,"ref":"A","f":"{}","s":true,"c":[],"u":["contact"]}',
        b'e:{"id":"x","m":11,"ref":"A","f":"{}","s":true,"c":[],"sc":5}',
        b"e:" + b"[" * 5000 + b"]" * 5000,
        b"e:not json",
    ):
        with pytest.raises(ValueError):
            decode_ephemeral(bad)
