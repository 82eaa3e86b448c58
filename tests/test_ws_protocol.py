"""The sans-I/O websocket protocol core, without sockets (docs/protocol.md).

Unit tests per frame type and error code, the backlog/live seam, gaps,
resync, slow consumers and the audience filter; then hypothesis: a
stateful machine over interleavings of subscribe/backlog/live/send/ack and
a fuzzer showing ``receive_text`` never raises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rtportal.errors import NotFound, Unavailable
from rtportal.events.event import StoredEvent
from rtportal.events.send import Send
from rtportal.principal import Principal
from rtportal.ws.frames import Limits
from rtportal.ws.protocol import (
    Action,
    Append,
    Authorize,
    Close,
    FrameCache,
    Heartbeat,
    Leave,
    LoadBacklog,
    Protocol,
)
from tests.support.wsjson import HELLO

STAFF = Principal(kind="staff", id=1, firm_id=1, display_name="Ada Staff")
BOT = Principal(kind="bot", id=9, firm_id=1, display_name="Robo")
CONTACT = Principal(kind="contact", id=7, firm_id=1, display_name="Mei Chen")
M = "AAAA0000"
MID = 11


def ev(
    seq: int,
    audience: str = "portal",
    matter: str = M,
    matter_id: int = MID,
    payload: dict[str, Any] | None = None,
    client_id: str | None = None,
) -> StoredEvent:
    return StoredEvent(
        matter_id=matter_id,
        matter=matter,
        seq=seq,
        kind="message",
        audience=audience,  # type: ignore[arg-type]
        actor={"kind": "staff", "id": 1, "name": "Ada Staff"},
        payload=payload if payload is not None else {"sent_at": seq},
        blob=b"\x00\x01\xfe\xff",
        client_id=client_id,
        created_at="2026-11-23T16:00:00.000000Z",
    )


def frames(p: Protocol) -> list[dict[str, Any]]:
    return [json.loads(t) for t in p.take_frames(10_000)]


def new(principal: Principal = STAFF, **limits: int) -> Protocol:
    p = Protocol(principal, Limits(**limits), FrameCache())
    p.connected()
    assert p.receive_text(HELLO) == []  # the client's version: answered by nothing
    return p


def connected(principal: Principal = STAFF, **limits: int) -> Protocol:
    p = new(principal, **limits)
    hello = frames(p)
    assert [f["type"] for f in hello] == ["hello"]
    return p


def subscribe(p: Protocol, after: int = 0, matter: str = M, fid: str = "c1") -> Authorize:
    actions = p.receive_text(
        json.dumps({"type": "subscribe", "id": fid, "subs": [{"matter": matter, "after": after}]})
    )
    assert len(actions) == 1 and isinstance(actions[0], Authorize)
    return actions[0]


def only_load(actions: list[Action]) -> LoadBacklog:
    """The single action of ``actions``, which must be a backlog load."""
    [load] = actions
    assert isinstance(load, LoadBacklog)
    return load


def live_sub(p: Protocol, after: int = 0, head: int = 0) -> None:
    """Subscribe and finish the (empty) backlog: the subscription is live."""
    auth = subscribe(p, after)
    load = only_load(p.subscribed(auth.sub, M, MID, head, see_applicants=True))
    p.backlog_loaded(load.sub, M, [ev(s) for s in range(after + 1, head + 1)])
    frames(p)


def event_seqs(fs: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in fs if f["type"] == "event"]


# --- connection, ping, bad frames -------------------------------------------------


def test_hello_announces_version_principal_and_limits() -> None:
    p = new(CONTACT, send_queue=77)
    [hello] = frames(p)
    assert hello == {
        "type": "hello",
        "v": 2,
        "versions": [2],
        "principal": {"kind": "contact", "id": 7, "name": "Mei Chen"},
        "limits": Limits(send_queue=77).to_wire(),
    }


def test_ping_pong() -> None:
    p = connected()
    # The heartbeat: activity on a session with an idle timeout.
    assert p.receive_text('{"type":"ping","id":"p1"}') == [Heartbeat()]
    assert frames(p) == [{"type": "pong", "id": "p1"}]


@pytest.mark.parametrize(
    ("text", "frame_id"),
    [
        ("not json", None),
        ("[1,2]", None),
        ('{"type":"nope","id":"x1"}', "x1"),
        ('{"type":["subscribe"],"id":"x1"}', "x1"),
        ('{"type":"ping"}', None),
        ('{"type":"ping","id":""}', None),
        ('{"type":"ping","id":"' + "a" * 65 + '"}', None),
        ('{"type":"ping","id":"a\\u0000b"}', None),
        ('{"type":"subscribe","id":"s","subs":[]}', "s"),
        ('{"type":"subscribe","id":"s","subs":[{"matter":"A A","after":0}]}', "s"),
        ('{"type":"subscribe","id":"s","subs":[{"matter":"AAAA0000"},{"matter":"AAAA0000"}]}', "s"),
        ('{"type":"unsubscribe","id":"u","matters":"AAAA0000"}', "u"),
        (
            '{"type":"send","id":"m 1","matter":"AAAA0000","kind":"message","audience":"portal"}',
            "m 1",
        ),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"Message","audience":"portal"}',
            "m1",
        ),
        ('{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"all"}', "m1"),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"payload":[1]}',
            "m1",
        ),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"blob":"***"}',
            "m1",
        ),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"payload":{"x":NaN}}',
            None,
        ),
        ("[" * 30_000 + "]" * 30_000, None),  # deep, under max_control_frame_bytes
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"payload":{"x":1e999}}',
            None,
        ),
        ('{"type":"ping","id":"p","n":' + "1" * 5000 + "}", None),
        # lone UTF-16 surrogates: valid JSON escapes, not UTF-8 (an echo could not be sent)
        ('{"type":"ping","id":"p\\ud800"}', None),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"payload":{"x":"\\udc00"}}',
            "m1",
        ),
        (
            '{"type":"send","id":"m1","matter":"AAAA0000","kind":"message","audience":"portal",'
            '"payload":{"\\ud800":1}}',
            "m1",
        ),
    ],
)
def test_bad_frames_get_bad_request_with_the_id_when_readable(
    text: str, frame_id: str | None
) -> None:
    p = connected()
    assert p.receive_text(text) == []
    [err] = frames(p)
    assert err["type"] == "error"
    assert err["code"] == "bad_request"
    assert err["id"] == frame_id
    assert err["message"]


@pytest.mark.parametrize("after", ["-1", "true", '"3"', "9007199254740992", "1.5"])
def test_a_bad_after_is_invalid_cursor(after: str) -> None:
    """``after`` is an integer 0 … 2^53−1 (docs/protocol.md), as everywhere else."""
    p = connected()
    text = '{"type":"subscribe","id":"s","subs":[{"matter":"AAAA0000","after":' + after + "}]}"
    assert p.receive_text(text) == []
    [err] = frames(p)
    assert (err["type"], err["code"], err["id"]) == ("error", "invalid_cursor", "s")


def test_every_answer_frame_is_utf8_even_for_surrogate_escapes() -> None:
    """A pair of escapes is one character and fine; the answer is always sendable."""
    p = connected()
    for text in (
        '{"type":"ping","id":"p\\ud83d\\ude00"}',  # an emoji as a surrogate pair
        '{"type":"ping","id":"p\\ud83d"}',
        '{"type":"nope","id":"\\ude00"}',
    ):
        p.receive_text(text)
    out = p.take_frames()
    for text in out:
        text.encode("utf-8")  # the websocket layer would raise here
    assert [json.loads(t)["id"] for t in out] == ["p\U0001f600", None, None]


def test_payload_and_blob_limits_are_payload_too_large() -> None:
    p = connected(max_payload_bytes=20, max_blob_bytes=4)
    base = {"type": "send", "matter": M, "kind": "message", "audience": "portal"}
    p.receive_text(json.dumps({**base, "id": "a", "payload": {"x": "y" * 30}}))
    p.receive_text(json.dumps({**base, "id": "b", "blob": "AAAAAAAA"}))  # 6 bytes
    p.receive_text(json.dumps({**base, "id": "c", "blob": "A" * 10_000}))
    assert [(f["id"], f["code"]) for f in frames(p)] == [
        ("a", "payload_too_large"),
        ("b", "payload_too_large"),
        ("c", "payload_too_large"),
    ]
    # At the limit is fine: 4 bytes, URL-safe alphabet accepted.
    [append] = p.receive_text(json.dumps({**base, "id": "d", "blob": "-_-_-w"}))
    assert isinstance(append, Append) and append.send.blob == b"\xfb\xff\xbf\xfb"[:4]


def test_only_a_send_may_exceed_max_control_frame_bytes() -> None:
    """Frames that cost no write token (ping, subscribe, unsubscribe) are small.

    A padded ping or subscribe over the cap closes 1009 (before parsing when
    it does not even name type "send"); a send of the same size is accepted.
    """
    floats = ",".join(["1.5e300"] * 10_000)  # ~80 KB of floats: slow to parse
    for text in (
        '{"type":"ping","id":"p","pad":[' + floats + "]}",
        '{"type":"subscribe","id":"s","subs":[{"matter":"' + M + '"}],"pad":[' + floats + "]}",
        # names "send" only inside, or is not JSON: parsed, then refused as a non-send
        '{"type":"ping","id":"p","pad":{"type":"send","x":[' + floats + "]}}",
        '{"type":"send","id":"p","pad":[' + floats + "]",
    ):
        assert len(text) > Limits().max_control_frame_bytes
        p = connected()
        assert p.receive_text(text) == [Close(1009, "frame too big")]
    p = connected()
    base = {"type": "send", "matter": M, "kind": "message", "audience": "portal"}
    blob = "A" * (Limits().max_control_frame_bytes + 8)
    [append] = p.receive_text(json.dumps({**base, "id": "big", "blob": blob}))
    assert isinstance(append, Append)


def test_fields_a_frame_does_not_define_are_bad_request() -> None:
    p = connected()
    p.receive_text('{"type":"ping","id":"p","pad":[1.5]}')
    p.receive_text('{"type":"subscribe","id":"s","subs":[{"matter":"' + M + '"}],"x":1}')
    p.receive_text('{"type":"subscribe","id":"t","subs":[{"matter":"' + M + '","x":1}]}')
    p.receive_text('{"type":"unsubscribe","id":"u","matters":["' + M + '"],"x":1}')
    assert [(f["id"], f["code"], f["message"]) for f in frames(p)] == [
        ("p", "bad_request", "pad: unknown field"),
        ("s", "bad_request", "x: unknown field"),
        ("t", "bad_request", "subs[0].x: unknown field"),
        ("u", "bad_request", "x: unknown field"),
    ]


def test_ten_consecutive_bad_frames_close_4002_but_a_good_one_resets() -> None:
    p = connected()
    for _ in range(9):
        assert p.receive_text("{") == []
    p.receive_text('{"type":"ping","id":"ok"}')
    for _ in range(9):
        assert p.receive_text("{") == []
    assert p.closed is None
    assert p.receive_text("{") == [Close(4002, "too many bad frames")]
    # Every bad frame is answered, the tenth too, before the close (docs/protocol.md).
    answers = [json.loads(t) for t in p.take_frames(100)]
    assert [a.get("code", a["type"]) for a in answers] == ["bad_request"] * 9 + ["pong"] + [
        "bad_request"
    ] * 10
    assert p.receive_text('{"type":"ping","id":"late"}') == []


def test_oversized_frame_closes_1009_and_binary_closes_4002() -> None:
    p = connected(max_frame_bytes=100)
    assert p.receive_text('{"type":"ping","id":"' + "é" * 60 + '"}') == [
        Close(1009, "frame too big")
    ]
    q = connected()
    assert q.receive_bytes(b"\x00") == [Close(4002, "binary frames are not allowed")]


# --- subscribe, backlog, live seam ---------------------------------------------------


def test_subscribe_backlog_then_live_with_events_arriving_during_every_phase() -> None:
    p = connected()
    auth = subscribe(p, after=2)
    assert auth.matter == M and auth.after == 2
    p.deliver(ev(5))  # joined the hub, not yet authorised: buffered
    load = only_load(p.subscribed(auth.sub, M, MID, head=5, see_applicants=True))
    assert load == LoadBacklog(auth.sub, M, MID, 2, load.limit, load.max_bytes)
    p.deliver(ev(6))  # backlog loading: buffered
    p.deliver(ev(6))  # repeated delivery
    [sub_frame] = frames(p)
    assert sub_frame == {"type": "subscribed", "id": "c1", "matter": M, "head": 5}
    # The database already has seq 6 too (committed before the hub delivered it).
    assert p.backlog_loaded(load.sub, M, [ev(3), ev(4), ev(5), ev(6)]) == []
    p.deliver(ev(6))
    p.deliver(ev(7))
    out = frames(p)
    assert event_seqs(out) == [3, 4, 5, 6, 7]
    assert out[0]["payload"] == {"sent_at": 3} and out[0]["blob"] == "AAH-_w"
    assert set(out[0]) == {
        "type",
        "matter",
        "seq",
        "kind",
        "audience",
        "actor",
        "payload",
        "blob",
        "client_id",
        "created_at",
    }
    assert p.subscriptions() == {M: 7}


def test_live_gap_requests_a_fill_and_buffers_until_it_arrives() -> None:
    p = connected()
    live_sub(p, after=0, head=2)
    [fill] = p.deliver(ev(5))
    assert isinstance(fill, LoadBacklog) and fill.after == 2
    p.deliver(ev(6))
    assert frames(p) == []
    p.backlog_loaded(fill.sub, M, [ev(3), ev(4), ev(5)])
    p.deliver(ev(7))
    assert event_seqs(frames(p)) == [3, 4, 5, 6, 7]


def test_gap_in_the_buffer_after_backlog_requests_another_load() -> None:
    p = connected()
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=1, see_applicants=True))
    for s in (2, 4, 5):  # seq 3 was lost by the broker
        p.deliver(ev(s))
    [again] = p.backlog_loaded(load.sub, M, [ev(1), ev(2)])
    assert isinstance(again, LoadBacklog) and again.after == 2
    p.backlog_loaded(again.sub, M, [ev(3), ev(4)])
    assert event_seqs(frames(p)) == [1, 2, 3, 4, 5]


def test_gap_larger_than_backlog_limit_is_a_resync() -> None:
    p = connected(backlog_limit=10)
    live_sub(p, after=0, head=1)
    actions = p.deliver(ev(20))
    assert actions == [Leave(M)]
    assert frames(p) == [
        {
            "type": "resync",
            "id": None,
            "matter": M,
            "after": 1,
            "head": 20,
            "reason": "gap_too_large",
        }
    ]
    assert p.subscriptions() == {}
    assert p.deliver(ev(21)) == [] and frames(p) == []


@pytest.mark.parametrize(
    ("after", "head", "reason"), [(3, 5000, "cursor_too_old"), (9, 5, "cursor_ahead")]
)
def test_stale_or_future_cursor_gets_resync_and_no_subscription(
    after: int, head: int, reason: str
) -> None:
    p = connected(backlog_limit=1000)
    auth = subscribe(p, after)
    assert p.subscribed(auth.sub, M, MID, head, see_applicants=True) == [Leave(M)]
    assert frames(p) == [
        {"type": "resync", "id": "c1", "matter": M, "after": after, "head": head, "reason": reason}
    ]
    assert p.subscriptions() == {}


def test_cursor_exactly_backlog_limit_behind_is_served() -> None:
    p = connected(backlog_limit=4, send_queue=100)
    auth = subscribe(p, 1)
    load = only_load(p.subscribed(auth.sub, M, MID, head=5, see_applicants=True))
    p.backlog_loaded(load.sub, M, [ev(s) for s in range(2, 6)])
    assert event_seqs(frames(p)) == [2, 3, 4, 5]


def test_backlog_is_paged_so_one_load_never_fills_the_send_queue() -> None:
    p = connected(backlog_limit=100, send_queue=8)  # page = 4
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=10, see_applicants=True))
    assert load.limit == 4
    got: list[int] = []
    after = 0
    while True:
        actions = p.backlog_loaded(
            load.sub, M, [ev(s) for s in range(after + 1, min(after + 4, 10) + 1)]
        )
        got += event_seqs(frames(p))
        after = got[-1]
        if not actions:
            break
        load = only_load(actions)
        assert load.after == after
    assert got == list(range(1, 11))


def test_full_live_buffer_while_loading_reloads_from_the_database() -> None:
    p = connected(backlog_limit=1000, send_queue=4)  # page 2, live buffer 4
    db = [ev(s) for s in range(1, 9)]
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=1, see_applicants=True))
    for e in db[1:]:  # 7 live events while loading: the buffer overflows
        p.deliver(e)
    got = event_seqs(frames(p))
    answer = [db[0]]  # the backlog read happened before seq 2 was committed
    loads = 0
    while True:
        actions = p.backlog_loaded(load.sub, M, answer)
        got += event_seqs(frames(p))
        assert p.closed is None
        if not actions:
            break
        load = only_load(actions)
        assert load.after == got[-1]
        answer = db[load.after : load.after + load.limit]
        loads += 1
    assert got == list(range(1, 9))
    assert loads >= 4  # reloaded because of the overflow, then paged
    p.deliver(ev(9))
    assert event_seqs(frames(p)) == [9]


def test_not_found_and_unavailable_end_the_subscription_with_an_error() -> None:
    p = connected(CONTACT)
    auth = subscribe(p, 0, matter="ZZZZ9999")
    assert p.subscribe_failed(auth.sub, "ZZZZ9999", NotFound("no such matter")) == [
        Leave("ZZZZ9999")
    ]
    assert frames(p) == [
        {
            "type": "error",
            "id": "c1",
            "code": "not_found",
            "message": "no such matter",
            "matter": "ZZZZ9999",
        }
    ]
    auth = subscribe(p, 0, fid="c2")
    load = only_load(p.subscribed(auth.sub, M, MID, 3, see_applicants=True))
    p.backlog_failed(load.sub, M, Unavailable("database unreachable"))
    assert frames(p)[-1]["code"] == "unavailable"
    assert p.subscriptions() == {}


def test_double_subscribe_is_conflict_and_unsubscribe_stops_events() -> None:
    p = connected()
    live_sub(p)
    p.receive_text(
        json.dumps({"type": "subscribe", "id": "c9", "subs": [{"matter": M, "after": 0}]})
    )
    assert [(f["code"], f["matter"]) for f in frames(p)] == [("conflict", M)]
    actions = p.receive_text('{"type":"unsubscribe","id":"u1","matters":["AAAA0000","BBBB1111"]}')
    assert actions == [Leave(M)]
    assert frames(p) == [{"type": "unsubscribed", "id": "u1", "matters": [M, "BBBB1111"]}]
    assert p.deliver(ev(1)) == [] and frames(p) == []


def test_answers_for_a_subscription_that_was_dropped_are_ignored() -> None:
    p = connected()
    first = subscribe(p, 0)
    p.receive_text('{"type":"unsubscribe","id":"u1","matters":["AAAA0000"]}')
    second = subscribe(p, 0, fid="c2")
    frames(p)
    # The first authorisation returns after a newer subscription exists: no Leave.
    assert p.subscribed(first.sub, M, MID, 0, see_applicants=True) == []
    load = only_load(p.subscribed(second.sub, M, MID, 0, see_applicants=True))
    assert p.backlog_loaded(first.sub, M, [ev(1)]) == []
    p.backlog_loaded(load.sub, M, [])
    p.receive_text('{"type":"unsubscribe","id":"u2","matters":["AAAA0000"]}')
    assert p.subscribed(second.sub, M, MID, 0, see_applicants=True) == [Leave(M)]
    assert [f["type"] for f in frames(p)] == ["subscribed", "unsubscribed"]


def test_subscription_limit_is_rate_limited() -> None:
    p = connected(max_subscriptions=1)
    subscribe(p, 0)
    p.receive_text('{"type":"subscribe","id":"c2","subs":[{"matter":"BBBB1111","after":0}]}')
    assert [(f["code"], f["matter"]) for f in frames(p)] == [("rate_limited", "BBBB1111")]


# --- sends -------------------------------------------------------------------------


SEND = {
    "type": "send",
    "id": "m1",
    "matter": M,
    "kind": "message",
    "audience": "portal",
    "payload": {"thread": "t1"},
    "blob": "UlRNMQ",
}


def test_send_appends_and_acks() -> None:
    p = connected()
    [append] = p.receive_text(json.dumps(SEND))
    assert append == Append(Send(M, "message", "portal", {"thread": "t1"}, b"RTM1", "m1"))
    assert p.appended("m1", ev(43, client_id="m1"), created=True) == []
    assert frames(p) == [{"type": "ack", "id": "m1", "matter": M, "seq": 43, "duplicate": False}]
    # A retry after the ack goes to the database again, which answers "not created".
    [again] = p.receive_text(json.dumps(SEND))
    p.appended(again.request_id, ev(43, client_id="m1"), created=False)  # type: ignore[union-attr]
    assert frames(p)[0]["duplicate"] is True


def test_retry_while_in_flight_makes_one_append_and_two_acks() -> None:
    p = connected()
    assert len(p.receive_text(json.dumps(SEND))) == 1
    assert p.receive_text(json.dumps(SEND)) == []
    p.receive_text(json.dumps({**SEND, "payload": {"thread": "other"}}))
    assert [(f["type"], f.get("code")) for f in frames(p)] == [("error", "conflict")]
    p.appended("m1", ev(43), created=True)
    assert [f["duplicate"] for f in frames(p)] == [False, True]


def test_failed_send_is_an_error_frame_and_inflight_limit_is_rate_limited() -> None:
    p = connected(max_in_flight=1)
    p.receive_text(json.dumps(SEND))
    p.receive_text(json.dumps({**SEND, "id": "m2"}))
    assert [(f["id"], f["code"]) for f in frames(p)] == [("m2", "rate_limited")]
    p.failed("m1", Unavailable("database unreachable"))
    assert frames(p) == [
        {"type": "error", "id": "m1", "code": "unavailable", "message": "database unreachable"}
    ]
    assert len(p.receive_text(json.dumps({**SEND, "id": "m2"}))) == 1


def big(seq: int, chars: int = 10_000) -> StoredEvent:
    """An event whose frame is a little over ``chars`` bytes."""
    return ev(seq, payload={"t": "x" * chars})


def test_a_page_cut_short_by_bytes_is_followed_by_the_next() -> None:
    p = connected(backlog_limit=100, send_queue=8, backlog_page_bytes=5000)  # page = 4
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=6, see_applicants=True))
    assert (load.limit, load.max_bytes) == (4, 5000)
    got: list[int] = []
    # The database answers fewer than ``limit`` events (its byte bound): the
    # head at subscribe says more exist, so reading goes on.
    for answer in ([1], [2, 3], [4, 5, 6]):
        assert isinstance(load, LoadBacklog) and load.after == (got[-1] if got else 0)
        actions = p.backlog_loaded(load.sub, M, [ev(s) for s in answer])
        got += event_seqs(frames(p))
        if answer[-1] < 6:
            load = only_load(actions)
        else:
            assert actions == []
    assert got == [1, 2, 3, 4, 5, 6]
    p.deliver(ev(7))
    assert event_seqs(frames(p)) == [7]


def test_backlog_page_stops_at_a_full_outbox_and_reads_on_later() -> None:
    p = connected(send_queue_bytes=25_000)
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=5, see_applicants=True))
    db = [big(s) for s in range(1, 6)]
    got: list[int] = []
    answer = db[: load.limit]
    while True:
        actions = p.backlog_loaded(load.sub, M, answer)
        assert p.closed is None  # a backlog never makes a slow consumer
        assert p.queued_bytes <= 25_000
        batch = event_seqs(frames(p))
        assert len(batch) <= 2  # two ~10 KB frames fit, a third would not
        got += batch
        if not actions:
            break
        load = only_load(actions)
        assert load.after == got[-1]
        answer = db[load.after : load.after + load.limit]
    assert got == [1, 2, 3, 4, 5]


def test_live_events_buffered_while_loading_are_bounded_in_bytes() -> None:
    p = connected(send_queue_bytes=25_000)
    auth = subscribe(p, 0)
    load = only_load(p.subscribed(auth.sub, M, MID, head=1, see_applicants=True))
    for s in (2, 3, 4):  # the third passes 25,000 bytes: dropped, read again later
        assert p.deliver(big(s)) == []
    frames(p)
    db = [ev(1)] + [big(s) for s in (2, 3, 4)]
    got: list[int] = []
    answer = db[:1]
    loads = 0
    while True:
        actions = p.backlog_loaded(load.sub, M, answer)
        got += event_seqs(frames(p))
        if not actions:
            break
        load = only_load(actions)
        assert load.after == got[-1]
        answer = db[load.after : load.after + load.limit]
        loads += 1
    assert got == [1, 2, 3, 4] and loads >= 1


# --- slow consumers, close ---------------------------------------------------------


def test_slow_consumer_is_closed_4008_and_its_queue_dropped() -> None:
    p = connected(send_queue=5)
    live_sub(p)
    for s in range(1, 6):
        assert p.deliver(ev(s)) == []
    assert p.queued == 5
    assert p.deliver(ev(6)) == [Close(4008, "slow consumer: resume from your cursor")]
    assert p.queued == 0 and p.take_frames() == []
    assert p.deliver(ev(7)) == [] and p.receive_text('{"type":"ping","id":"p"}') == []


def test_outbox_is_bounded_in_bytes_and_takes_one_frame_of_any_size() -> None:
    p = connected(send_queue_bytes=25_000)
    live_sub(p)
    assert p.deliver(big(1, 40_000)) == []  # an empty outbox takes any one frame
    assert p.queued == 1 and p.queued_bytes > 40_000
    frames(p)
    assert p.queued_bytes == 0
    assert p.deliver(big(2)) == [] and p.deliver(big(3)) == []
    two = p.queued_bytes
    assert p.take_frames(1) and 0 < p.queued_bytes < two
    assert p.deliver(big(4)) == []
    assert p.deliver(big(5)) == [Close(4008, "slow consumer: resume from your cursor")]
    assert p.queued == 0 and p.queued_bytes == 0


def test_server_close_is_final() -> None:
    p = connected()
    assert p.close(4010, "session revoked") == [Close(4010, "session revoked")]
    assert p.close(1012, "restart") == []
    assert p.closed == Close(4010, "session revoked")


# --- audience ----------------------------------------------------------------------


def test_contact_never_gets_staff_events_or_staff_fields_but_staff_and_bots_do() -> None:
    cache = FrameCache()
    conns = {who: Protocol(who, Limits(), cache) for who in (STAFF, BOT, CONTACT)}
    events = [
        ev(1),
        ev(2, "staff", payload={"note": "x"}),
        ev(3, payload={"thread": "hi", "staff_review": "ok"}),
        ev(4),
    ]
    for p in conns.values():
        p.connected()
        p.receive_text(HELLO)
        frames(p)
        auth = subscribe(p, 0)
        load = only_load(p.subscribed(auth.sub, M, MID, 2, see_applicants=True))
        frames(p)
        p.backlog_loaded(load.sub, M, events[:2])
        for e in events[2:]:
            p.deliver(e)
    contact = frames(conns[CONTACT])
    # A contact never sees a seq: each event names itself by its token.
    assert all("seq" not in f for f in contact)
    assert [cache.cursors.seq_of(f["cursor"], MID) for f in contact] == [1, 3, 4]
    assert all(f["audience"] == "portal" for f in contact)
    assert contact[1]["payload"] == {"thread": "hi"}
    for who in (STAFF, BOT):
        got = frames(conns[who])
        assert event_seqs(got) == [1, 2, 3, 4]
        assert got[2]["payload"] == {"thread": "hi", "staff_review": "ok"}
    # The contact's cursor still moved past the staff event: no false gap.
    assert conns[CONTACT].subscriptions() == {M: 4}
    # Encoded once per (event, class): 4 events x 2 classes.
    assert cache.misses == 8 and cache.hits == 4


def test_frame_cache_reuses_the_same_text_and_evicts_oldest() -> None:
    cache = FrameCache(size=2)
    a = cache.frame(ev(1), STAFF, "staff")
    assert cache.frame(ev(1), STAFF, "staff") is a
    cache.frame(ev(2), STAFF, "staff")
    cache.frame(ev(3), STAFF, "staff")
    cache.frame(ev(1), STAFF, "staff")
    assert cache.misses == 4 and cache.hits == 1


def test_frame_cache_is_bounded_in_bytes() -> None:
    one = len(FrameCache().frame(big(0), STAFF, "staff")) + FrameCache.ENTRY_COST
    cache = FrameCache(max_bytes=3 * one)
    for s in range(1, 5):
        cache.frame(big(s), STAFF, "staff")
        assert cache.nbytes <= 3 * one
    cache.frame(big(4), STAFF, "staff")
    assert cache.hits == 1
    cache.frame(big(1), STAFF, "staff")  # the oldest went first
    assert cache.misses == 5


# --- property tests ----------------------------------------------------------------


def _numeric_frame(t: tuple[str, str]) -> str:
    """A frame with a raw number token (out-of-range floats, huge ints) in every slot."""
    kind, num = t
    return (
        f'{{"type":"{kind}","id":"x1","matter":"AAAA0000","kind":"message",'
        f'"audience":"portal","subs":[{{"matter":"AAAA0000","after":{num}}}],'
        f'"payload":{{"n":{num}}}}}'
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(json.dumps),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["subscribe", "unsubscribe", "send", "ping", "x"])},
            optional={
                "id": st.one_of(st.text(max_size=70), st.integers(), st.none()),
                "subs": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "matter": st.text(max_size=10) | st.integers(),
                            "after": st.integers() | st.text() | st.booleans(),
                        },
                    )
                ),
                "matters": st.lists(st.text(max_size=10)) | st.text(),
                "matter": st.sampled_from([M, "", "zz"]) | st.integers(),
                "kind": st.text(max_size=40),
                "audience": st.text(max_size=8),
                "payload": st.dictionaries(st.text(max_size=5), st.integers()) | st.text(),
                "blob": st.text(max_size=20) | st.none(),
            },
        ).map(json.dumps),
        st.tuples(
            st.sampled_from(["subscribe", "send", "ping"]),
            st.sampled_from(["1e999", "-1e400", "1" * 4400, "0.1e-999", "-0", "NaN", "[]", "{}"]),
        ).map(_numeric_frame),
    )
)
def test_receive_text_never_raises(text: str) -> None:
    p = connected(CONTACT, max_payload_bytes=64, max_blob_bytes=8)
    for _ in range(2):
        actions = p.receive_text(text)
        for action in actions:
            assert isinstance(action, Authorize | Append | Leave | Close | Heartbeat)
    for out in frames(p):
        assert out["type"] in {"error", "pong", "unsubscribed"}
        if out["type"] == "error":
            assert out["code"] in {
                "bad_request",
                "invalid_cursor",
                "payload_too_large",
                "conflict",
                "rate_limited",
            }


class SeamMachine(RuleBasedStateMachine):
    """One matter, a staff and a contact connection, a database log, a hub.

    The hub delivers the log in order to joined connections, may repeat an
    event or lose one that a later event reveals; I/O requests complete in
    any order. Invariant: every subscriber receives every visible seq after
    its cursor exactly once, in order, and a contact never a staff event.
    """

    @initialize()
    def setup(self) -> None:
        self.log: list[StoredEvent] = []
        self.hub_pos = 0  # log index the hub has delivered up to
        self.conns: dict[str, Protocol] = {}
        self.joined: dict[str, bool] = {}
        self.cursor: dict[str, int | None] = {}  # subscription start, None = none
        self.got: dict[str, list[dict[str, Any]]] = {}
        self.io: list[tuple[str, Any]] = []
        self.sends = 0
        cache = self.cache = FrameCache()
        for name, who in (("staff", STAFF), ("contact", CONTACT)):
            p = Protocol(who, Limits(backlog_limit=6, send_queue=10_000), cache)
            p.connected()
            p.receive_text(HELLO)
            p.take_frames()
            self.conns[name] = p
            self.joined[name] = False
            self.cursor[name] = None
            self.got[name] = []

    # --- helpers
    def _run(self, name: str, actions: list[Any]) -> None:
        for a in actions:
            assert not isinstance(a, Close), a
            if isinstance(a, Leave):
                self.joined[name] = False
            else:
                self.io.append((name, a))
        for text in self.conns[name].take_frames(10_000):
            f = json.loads(text)
            if name == "contact":
                f = self._unseal(f)
            if f["type"] == "resync":
                self.cursor[name] = None
            if f["type"] in {"event", "resync", "subscribed", "error"}:
                self.got[name].append(f)

    def _unseal(self, f: dict[str, Any]) -> dict[str, Any]:
        """A contact's frame carries no seq: read its tokens (as only the server can)."""
        assert "seq" not in f, f
        for key in ("head", "after"):
            assert not isinstance(f.get(key), int), f  # never an integer cursor
        if f["type"] != "event":
            return f
        return dict(f, seq=self.cache.cursors.seq_of(f["cursor"], MID))

    def _append(
        self, audience: str, payload: dict[str, Any], client_id: str | None, actor: Principal
    ) -> tuple[StoredEvent, bool]:
        for e in self.log:
            if client_id is not None and e.client_id == client_id:
                return e, False
        e = ev(len(self.log) + 1, audience, payload=payload, client_id=client_id)
        self.log.append(e)
        return e, True

    # --- rules
    @rule(audience=st.sampled_from(["portal", "staff"]), secret=st.booleans())
    def commit_event(self, audience: str, secret: bool) -> None:
        payload = {"staff_x": 1, "a": 2} if secret else {"sent_at": 1}
        self._append(audience, payload, None, STAFF)

    @precondition(lambda self: self.hub_pos < len(self.log))
    @rule()
    def hub_delivers(self) -> None:
        e = self.log[self.hub_pos]
        self.hub_pos += 1
        for name, p in self.conns.items():
            if self.joined[name]:
                self._run(name, p.deliver(e))

    @precondition(lambda self: self.hub_pos > 0)
    @rule()
    def hub_repeats(self) -> None:
        e = self.log[self.hub_pos - 1]
        for name, p in self.conns.items():
            if self.joined[name]:
                self._run(name, p.deliver(e))

    @precondition(lambda self: self.hub_pos + 1 < len(self.log))
    @rule()
    def hub_loses_one(self) -> None:
        self.hub_pos += 1  # a later delivery reveals the gap

    @rule(name=st.sampled_from(["staff", "contact"]), back=st.integers(0, 9))
    def subscribe(self, name: str, back: int) -> None:
        p = self.conns[name]
        if M in p.subscriptions() or any(
            n == name and isinstance(a, Authorize) for n, a in self.io
        ):
            return
        if self.cursor[name] is not None:
            return
        after = max(0, len(self.log) - back)
        self.cursor[name] = after
        self.got[name] = []
        # A contact resumes from a token (a position: what a page's ``next`` gives).
        wire = after if name == "staff" or not after else p.cursors.position_token(MID, after)
        self._run(
            name,
            p.receive_text(
                json.dumps({"type": "subscribe", "id": "s", "subs": [{"matter": M, "after": wire}]})
            ),
        )

    @rule(name=st.sampled_from(["staff", "contact"]))
    def unsubscribe(self, name: str) -> None:
        self.cursor[name] = None
        self._run(
            name,
            self.conns[name].receive_text('{"type":"unsubscribe","id":"u","matters":["AAAA0000"]}'),
        )

    @rule(name=st.sampled_from(["staff", "contact"]), retry=st.booleans())
    def send(self, name: str, retry: bool) -> None:
        if not retry or self.sends == 0:
            self.sends += 1
        frame = {
            "type": "send",
            "id": f"{name}-{self.sends}",
            "matter": M,
            "kind": "message",
            "audience": "portal",
            "payload": {"sent_at": self.sends},
        }
        self._run(name, self.conns[name].receive_text(json.dumps(frame)))

    @precondition(lambda self: self.io)
    @rule(data=st.data())
    def complete_io(self, data: st.DataObject) -> None:
        self._complete(data.draw(st.integers(0, len(self.io) - 1)))

    def _complete(self, i: int) -> None:
        name, a = self.io.pop(i)
        p = self.conns[name]
        if isinstance(a, Authorize):
            self.joined[name] = True  # join first, then read the head
            self._run(name, p.subscribed(a.sub, a.matter, MID, len(self.log), see_applicants=True))
        elif isinstance(a, LoadBacklog):
            events = self.log[a.after : a.after + a.limit]
            self._run(name, p.backlog_loaded(a.sub, a.matter, events))
        elif isinstance(a, Append):
            who = STAFF if name == "staff" else CONTACT
            e, created = self._append(
                a.send.audience, a.send.payload, f"{name}:{a.request_id}", who
            )
            self._run(name, p.appended(a.request_id, e, created))

    def _quiesce(self) -> None:
        while self.io or self.hub_pos < len(self.log):
            if self.io:
                self._complete(0)
            else:
                self.hub_delivers()

    @invariant()
    def exactly_once_in_order_and_no_staff_leak(self) -> None:
        if not hasattr(self, "conns"):
            return
        for name in self.conns:
            seqs = [f["seq"] for f in self.got[name] if f["type"] == "event"]
            assert seqs == sorted(set(seqs)), seqs
            cursor = self.cursor[name]
            if cursor is not None and seqs:
                assert seqs[0] > cursor
            if name == "contact":
                for f in self.got[name]:
                    if f["type"] == "event":
                        assert f["audience"] == "portal"
                        assert set(f["payload"]) <= {"thread", "parent", "to", "item", "sent_at"}

    def teardown(self) -> None:
        if not hasattr(self, "conns"):
            return
        self._quiesce()
        for name, p in self.conns.items():
            start = self.cursor[name]
            if start is None or M not in p.subscriptions():
                continue
            visible = [e.seq for e in self.log[start:] if name == "staff" or e.audience == "portal"]
            seqs = [f["seq"] for f in self.got[name] if f["type"] == "event"]
            assert seqs == visible, (name, start, seqs, visible)


SeamMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSeam = SeamMachine.TestCase
