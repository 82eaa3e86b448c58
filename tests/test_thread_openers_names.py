"""``find_openers`` (a batch's unknown threads in one statement, the thread names as
one parameter) agrees with ``find_opener`` (one statement per thread, the name bound
as itself) for any thread name a send may carry: ``payload.thread`` is any string of
up to 64 bytes, and the batch reads it before the send is validated. A new thread's
name must be 1-64 of ``A-Za-z0-9_-`` (``thread_id``), but threads stored before that
rule keep theirs: the odd names here are written as such a thread was."""

from __future__ import annotations

import dataclasses

import pytest

from rtportal.db import Database
from rtportal.errors import BadRequest
from rtportal.events.batch import AppendItem
from rtportal.events.log import commit_batch
from rtportal.events.send import Send
from rtportal.threads import found
from rtportal.threads.found import find_openers
from rtportal.threads.items import find_opener, prepare_sends
from tests.conftest import FirmKit, MakeFirm

# Names that mean something to JSON, to SQL or to arrays, and non-ASCII text.
_NAMES = [
    'q"uote',
    "it's",
    "back\\slash",
    "{a,b}",
    '["x",1]',
    "' OR 1=1 --",
    "ünïcode😀",
    "a\u2028b",
    "tab\there",
    "T1",
]


async def _open(db: Database, kit: FirmKit, thread: str, client_id: str) -> None:
    """An opener of ``thread``: prepared under a valid name, stored under ``thread``
    (a thread opened before the id rule)."""
    matter, staff = kit.matter, kit.staff
    send = Send(matter.reference, "message", "portal", {"thread": client_id}, b"x", client_id)
    async with db.read() as session:
        [made] = await prepare_sends(session, [(staff, matter, send)])
    assert isinstance(made, Send)
    made = dataclasses.replace(made, payload={**made.payload, "thread": thread})
    [written] = await commit_batch(db, [AppendItem(matter, staff, made)], kit.settings)
    assert not isinstance(written, Exception)


async def test_openers_of_odd_names_agree_one_by_one(db: Database, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    for i, name in enumerate(_NAMES):
        await _open(db, kit, name, f"o{i}")
    m = kit.matter.id
    keys = [(m, n) for n in _NAMES] + [(m, n + "x") for n in _NAMES] + [(m, "T1")]
    async with db.read() as session:
        together = await find_openers(session, keys)
        one_by_one = {k: await find_opener(session, *k) for k in keys}
    assert together == {k: v for k, v in one_by_one.items() if v is not None}
    assert set(together) == {(m, n) for n in _NAMES}


async def test_a_name_with_nul_is_not_the_name_before_it(db: Database, make_firm: MakeFirm) -> None:
    """SQLite's JSON functions end a string at ``\\u0000``: a thread named
    ``T1\\x00x`` read through a JSON list would be ``T1``, another thread.
    PostgreSQL's text cannot hold the name at all: there the guarantee is that
    such a name never reaches a read (the thread rules refuse the send first,
    the batch's read of openers leaves it out)."""
    kit = await make_firm()
    await _open(db, kit, "T1", "o1")
    m = kit.matter.id
    if db.backend == "sqlite":
        keys = [(m, "T1\x00x"), (m, "other")]
        async with db.read() as session:
            together = await find_openers(session, keys)
            alone = await find_opener(session, m, "T1\x00x")
        assert alone is None
        assert together == {}
    sends = [
        Send(kit.matter.reference, "message", "portal", {"thread": t}, b"x", f"n{i}")
        for i, t in enumerate(["T1\x00x", "T1"])
    ]
    async with db.read() as session:
        made = await prepare_sends(session, [(kit.staff, kit.matter, s) for s in sends])
    assert isinstance(made[0], BadRequest), made[0]  # refused, on either backend
    assert isinstance(made[1], Send) and made[1].payload["thread"] == "T1"


async def test_more_threads_than_one_read_takes(
    db: Database, make_firm: MakeFirm, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = await make_firm()
    await _open(db, kit, "T1", "o1")
    await _open(db, kit, "T2", "o2")
    m = kit.matter.id
    keys = [(m, f"none{i}") for i in range(300)] + [(m, "T2"), (m, "T1"), (m, "T1")]
    async with db.read() as session:
        together = await find_openers(session, keys)
        want = {k: await find_opener(session, *k) for k in [(m, "T1"), (m, "T2")]}
    assert found._OPENERS_PER_READ < len(keys)
    assert together == want


async def test_old_odd_names_take_replies_new_ones_are_refused(
    db: Database, make_firm: MakeFirm
) -> None:
    """The id rule holds for threads being opened: a thread stored under an odd name
    before it still takes replies; a new one under such a name is ``thread_id``."""
    kit = await make_firm()
    await _open(db, kit, "ünïcode😀", "o1")
    sends = [
        Send(kit.matter.reference, "message", "portal", {"thread": t}, b"x", f"r{i}")
        for i, t in enumerate(["ünïcode😀", "ünïcode😀 new"])
    ]
    async with db.read() as session:
        made = await prepare_sends(session, [(kit.staff, kit.matter, s) for s in sends])
    assert isinstance(made[0], Send) and made[0].payload["parent"] == f"s{kit.staff.id}.o1"
    assert isinstance(made[1], BadRequest) and made[1].details["reason"] == "thread_id"


async def test_an_odd_name_unseen_reads_as_a_free_one(db: Database, make_firm: MakeFirm) -> None:
    """A client naming a thread it may not see (here staff's internal one) under an
    odd name is refused as if the name were free (``thread_id``), not ``no_such_thread``:
    else a refusal that writes nothing tells which odd names are taken, a probe that
    leaves no trace (a free valid name opens a thread, which staff see)."""
    kit = await make_firm()
    matter, staff = kit.matter, kit.staff
    note = Send(matter.reference, "note", "staff", {"thread": "n1"}, b"x", "n1")
    async with db.read() as session:
        [made] = await prepare_sends(session, [(staff, matter, note)])
    assert isinstance(made, Send)
    made = dataclasses.replace(made, payload={**made.payload, "thread": "billing 2023"})
    [written] = await commit_batch(db, [AppendItem(matter, staff, made)], kit.settings)
    assert not isinstance(written, Exception)

    def send(thread: str, client_id: str, **extra: str) -> Send:
        payload = {"thread": thread, **extra}
        return Send(matter.reference, "message", "portal", payload, b"x", client_id)

    sends = [
        send("billing 2023", "c1"),
        send("billing 2024", "c2"),
        send("billing 2023", "c3", parent="s1.n1"),
        send("billing 2024", "c4", parent="s1.n1"),
    ]
    async with db.read() as session:
        out = await prepare_sends(session, [(kit.contact, matter, s) for s in sends])
    reasons = [o.details.get("reason") if isinstance(o, Exception) else o for o in out]
    assert reasons[0] == reasons[1] == "thread_id"
    assert reasons[2] == reasons[3] == "no_such_thread"
