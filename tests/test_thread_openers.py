"""The worker's memory of thread openers (rtportal.threads.openers): what it keeps,
what it never keeps, its bound; and replies prepared from it are the same sends
as replies prepared from the log."""

from __future__ import annotations

from rtportal.db import Database
from rtportal.events.batch import AppendItem
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
from rtportal.threads.found import find_openers
from rtportal.threads.items import Found, Preparer, find_opener, prepare_sends
from rtportal.threads.openers import OpenerCache
from tests.conftest import MakeFirm


def _found(item: str, thread: str) -> Found:
    return Found("message", item, thread, "portal", (1,), ("contact", 1))


def test_keeps_found_openers_and_evicts_the_least_recently_used() -> None:
    cache = OpenerCache(max_entries=2)
    cache.keep(1, "a", _found("c1.a", "a"))
    cache.keep(1, "b", _found("c1.b", "b"))
    assert cache.get(1, "a") is not None  # a used: b is now the oldest
    cache.keep(2, "a", _found("c1.x", "a"))
    assert len(cache) == 2
    assert cache.get(1, "b") is None
    assert cache.get(1, "a") is not None and cache.get(2, "a") is not None


def test_never_keeps_a_missing_thread_or_a_welcome_thread() -> None:
    cache = OpenerCache()
    cache.keep(1, "t", None)  # opened later, by someone: must be read again
    welcome = Found("welcome", "welcome-4", "welcome-4", "portal", (4,), ("staff", 1))
    cache.keep(1, "welcome-4", welcome)  # its first reply becomes its opener
    cache.keep(1, "welcome-5", _found("c5.r", "welcome-5"))
    assert len(cache) == 0


async def test_replies_prepared_from_memory_match_the_log(
    db: Database, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    matter, staff = kit.matter, kit.staff
    preparer = Preparer()
    opener = Send(matter.reference, "message", "portal", {"thread": "T1"}, b"x", "o1")
    async with db.read() as session:
        [made] = await preparer(session, [(staff, matter, opener)])
    assert isinstance(made, Send) and made.payload["to"] == [kit.contact.id]
    [written] = await commit_batch(db, [AppendItem(matter, staff, made)], kit.settings)
    assert not isinstance(written, Exception)
    reply = Send(matter.reference, "message", "portal", {"thread": "T1"}, b"y", "r1")
    async with db.read() as session:
        [first] = await preparer(session, [(staff, matter, reply)])
        [again] = await preparer(session, [(staff, matter, reply)])  # from memory
        [fresh] = await prepare_sends(session, [(staff, matter, reply)])  # from the log
        assert await find_opener(session, matter.id, "T1") == preparer.openers.get(matter.id, "T1")
    assert len(preparer.openers) == 1
    assert first == again == fresh
    assert isinstance(first, Send) and first.payload["parent"] == made.payload["item"]


async def test_a_batch_reads_its_unknown_openers_at_once_as_one_by_one(
    db: Database, make_firm: MakeFirm
) -> None:
    """``find_openers`` (a batch's threads the worker does not know, in one read)
    finds what ``find_opener`` finds for each, and a batch prepared with it makes
    the same sends as each send prepared alone from the log."""
    kit = await make_firm()
    matter, staff, client = kit.matter, kit.staff, kit.contact
    openers = [
        (staff, Send(matter.reference, "message", "portal", {"thread": "T1"}, b"a", "o1")),
        (staff, Send(matter.reference, "note", "staff", {"thread": "N1"}, b"b", "o2")),
        (client, Send(matter.reference, "message", "portal", {"thread": "T2"}, b"c", "o3")),
        (staff, Send(matter.reference, "note", "staff", {"thread": "T2"}, b"d", "o4")),
    ]
    for who, send in openers:  # one batch each: a thread's opener is written first
        async with db.read() as session:
            [made] = await prepare_sends(session, [(who, matter, send)])
        assert isinstance(made, Send)
        [written] = await commit_batch(db, [AppendItem(matter, who, made)], kit.settings)
        assert not isinstance(written, Exception)
    keys = [(matter.id, t) for t in ("T1", "N1", "T2", "T9")] + [(matter.id + 1000, "T1")]
    replies = [
        (staff, Send(matter.reference, "message", "portal", {"thread": "T1"}, b"e", "r1")),
        (staff, Send(matter.reference, "note", "staff", {"thread": "N1"}, b"f", "r2")),
        (client, Send(matter.reference, "message", "portal", {"thread": "T2"}, b"g", "r3")),
        (client, Send(matter.reference, "message", "portal", {"thread": "T9"}, b"h", "r4")),
    ]
    preparer = Preparer()
    async with db.read() as session:
        together = await find_openers(session, keys)
        one_by_one = {k: await find_opener(session, *k) for k in keys}
        batch = await preparer(session, [(who, matter, send) for who, send in replies])
        alone = [(await prepare_sends(session, [(w, matter, s)]))[0] for w, s in replies]
    assert together == {k: v for k, v in one_by_one.items() if v is not None}
    assert set(together) == {(matter.id, "T1"), (matter.id, "N1"), (matter.id, "T2")}
    assert together[(matter.id, "N1")].kind == "note"
    assert together[(matter.id, "T2")].to == (client.id,)
    assert batch == alone
    assert all(isinstance(made, Send) for made in batch)
    assert len(preparer.openers) == 3  # the found ones kept; T9 (opened by r4) not
