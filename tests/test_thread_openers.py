"""The worker's memory of thread openers (rtportal.threads.openers): what it keeps,
what it never keeps, its bound; and replies prepared from it are the same sends
as replies prepared from the log."""

from __future__ import annotations

from rtportal.db import Database
from rtportal.events.batch import AppendItem
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
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
