"""A hypothesis state machine of items, read marks, unread counts and receipts (docs/threads.md).

One matter with four threads (to ``a``; to ``b``; to both; internal), two
staff writers, the client ``a`` (sees the applicants) and the client ``b``
(does not). Rules: an item (a message or a note, maybe deleted) from
whoever may write it there, a read mark (any cursor up to the head, or one
ahead of it) by whoever sees the thread, a mark refused for a thread the
reader may not see. A plain model says what every reader's counts, marks
and visible receipts must be; after every step the real services on the
test database (SQLite or PostgreSQL) agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from rtportal.db import Database
from rtportal.db.models import Matter
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.errors import InvalidCursor, NotFound
from rtportal.events.cursor import CursorCodec
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.settings import Settings
from rtportal.threads.readers import reader_for, thread_info
from rtportal.threads.reads import mark_read
from rtportal.threads.receipts import receipts
from rtportal.threads.unread import unread_counts
from tests.support.threadworld import hide_applicants, put_item
from tests.test_invite_lifecycle_stateful import _Loop, _open, settings_for_machine

THREADS = ("tA", "tB", "tAB", "tI")


@dataclass
class Item:
    seq: int
    sender: Principal
    thread: str
    kind: str
    redacted: bool


class ReadsMachine(RuleBasedStateMachine):
    db: ClassVar[Database]
    runner: ClassVar[_Loop]

    @initialize()
    def setup(self) -> None:
        self.staff, self.admin, self.a, self.b, self.matter = self.runner.run(self._seed())
        self.codec = CursorCodec.ephemeral()  # the server's key: a contact's cursors are tokens
        self.to = {"tA": (self.a.id,), "tB": (self.b.id,), "tAB": (self.a.id, self.b.id)}
        self.items: list[Item] = []
        self.marks: dict[tuple[str, str], int] = {}  # (reader rtp1 id, thread) -> seq

    async def _seed(self) -> tuple[Principal, Principal, Principal, Principal, Matter]:
        async with self.db.write() as session:
            firm = await create_firm(session, "Reads Model")
            staff = await create_staff(session, firm, email=f"s{firm.id}@f.test", display_name="S")
            admin = await create_staff(
                session, firm, email=f"o{firm.id}@f.test", display_name="O", role="org_admin"
            )
            a = await create_contact(session, firm, display_name="A")
            b = await create_contact(session, firm, display_name="B")
            matter = await create_matter(session, firm, title="Model")
            await add_member(session, matter, a)
            await add_member(session, matter, b)
        await hide_applicants(self.db, matter, b)
        return staff, admin, a, b, matter

    # --- the model ---------------------------------------------------------------------

    def sees(self, who: Principal, thread: str) -> bool:
        """Whether ``who`` sees the thread's items (as a client thread, where it is one)."""
        if who.is_staff:
            return True
        if thread == "tI":
            return False
        return who is self.a or who.id in self.to[thread]

    def kind(self, thread: str) -> str | None:
        """A thread with a message is a client thread; with notes only, internal."""
        kinds = {i.kind for i in self.items if i.thread == thread}
        return "client" if "message" in kinds else "internal" if kinds else None

    def visible(self, who: Principal, thread: str) -> bool:
        kind = self.kind(thread)
        if kind is None:
            return False
        return who.is_staff if kind == "internal" else self.sees(who, thread)

    def unread(self, who: Principal) -> dict[str, int]:
        me = ids.of(who)
        counts: dict[str, int] = {}
        for item in self.items:
            kinds = ("message", "note") if who.is_staff else ("message",)
            if (
                item.kind in kinds
                and not item.redacted
                and item.sender != who
                and self.sees(who, item.thread)
                and item.seq > self.marks.get((me, item.thread), 0)
            ):
                counts[item.thread] = counts.get(item.thread, 0) + 1
        return counts

    def client_view(self, thread: str, seq: int) -> int:
        """A mark as clients are shown it: the thread's last message (the one kind
        of this model a client sees) at or before it; 0: none, not shown."""
        return max(
            (
                i.seq
                for i in self.items
                if i.thread == thread and i.kind == "message" and i.seq <= seq
            ),
            default=0,
        )

    @property
    def head(self) -> int:
        return self.items[-1].seq if self.items else 0

    # --- rules ---------------------------------------------------------------------------

    @rule(data=st.data(), thread=st.sampled_from(THREADS), redacted=st.booleans())
    def item(self, data: st.DataObject, thread: str, redacted: bool) -> None:
        writers = [self.staff, self.admin] + [
            c for c in (self.a, self.b) if thread != "tI" and self.sees(c, thread)
        ]
        sender = data.draw(st.sampled_from(writers))
        note = sender.is_staff and (thread == "tI" or data.draw(st.booleans()))
        kind = "note" if note else "message"
        to = None if note else self.to[thread]
        seq = self.runner.run(
            put_item(self.db, self.matter, sender, thread, kind=kind, to=to, redacted=redacted)
        )
        self.items.append(Item(seq, sender, thread, kind, redacted))

    @rule(data=st.data(), who=st.sampled_from(("staff", "admin", "a", "b")))
    def mark(self, data: st.DataObject, who: str) -> None:
        reader: Principal = getattr(self, who)
        thread = data.draw(st.sampled_from(THREADS))
        upto = data.draw(st.integers(0, self.head + 1))
        try:
            marked = self.runner.run(
                mark_read(
                    self.db,
                    None,
                    reader,
                    self.matter.reference,
                    thread,
                    self._cursor(reader, upto),
                    cursors=self.codec,
                )
            )
        except NotFound:
            assert not self.visible(reader, thread), (who, thread)
            return
        except InvalidCursor:
            assert upto > self.head
            return
        assert upto <= self.head and self.visible(reader, thread), (who, thread)
        key = (ids.of(reader), thread)
        if not reader.is_staff:  # a client's mark stays on an event it sees
            upto = self.client_view(thread, upto)
        self.marks[key] = max(self.marks.get(key, 0), upto)
        assert marked.upto == self.marks[key]
        counts = self.unread(reader)
        assert (marked.unread, marked.matter_unread) == (
            counts.get(thread, 0),
            sum(counts.values()),
        )

    # --- what the server must agree on -------------------------------------------------

    @invariant()
    def counts_and_receipts_agree(self) -> None:
        if not hasattr(self, "items"):
            return
        for who in (self.staff, self.admin, self.a, self.b):
            got, shown = self.runner.run(self._read(who))
            assert got == self.unread(who), ids.of(who)
            for thread, readers in shown.items():
                expected = {
                    r: seq if who.is_staff else self.client_view(thread, seq)
                    for (r, t), seq in self.marks.items()
                    if t == thread and seq > 0 and self._may_know(who, r, thread)
                }
                expected = {r: seq for r, seq in expected.items() if seq > 0}
                assert readers == expected, (ids.of(who), thread)

    def _cursor(self, who: Principal, seq: int) -> int | str:
        """``seq`` as ``who`` spells it: a contact never sends a seq (0: the start)."""
        if who.is_staff or seq == 0:
            return seq
        return self.codec.event_token(self.matter.id, seq)

    def _seq(self, who: Principal, upto: object) -> int:
        if who.is_staff:
            assert isinstance(upto, int)
            return upto
        assert isinstance(upto, str), upto  # a contact is never sent a seq
        return self.codec.seq_of(upto, self.matter.id)

    def _may_know(self, viewer: Principal, reader: str, thread: str) -> bool:
        if viewer.is_staff or reader.startswith("s") or reader == ids.of(viewer):
            return True
        return viewer is self.a or int(reader[1:]) in self.to[thread]

    async def _read(self, who: Principal) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        async with self.db.read() as session:
            reader = await reader_for(session, who, self.matter.id)
            counts = dict(await unread_counts(session, self.matter.id, reader))
            shown: dict[str, dict[str, int]] = {}
            for thread in THREADS:
                info = await thread_info(session, self.matter.id, thread)
                assert (info is not None) == (self.kind(thread) is not None), thread
                if info is None or not self.visible(who, thread):
                    continue
                rows: list[dict[str, Any]] = await receipts(
                    session, self.codec, self.matter, reader, info
                )
                shown[thread] = {r["reader"]: self._seq(who, r["upto"]) for r in rows}
        return counts, shown


def test_marks_counts_and_receipts_follow_their_model(settings: Settings) -> None:
    runner = _Loop()
    db = runner.run(_open(settings))
    ReadsMachine.db, ReadsMachine.runner = db, runner
    try:
        # Fewer examples than the invite machine's: each step reads four readers' counts.
        machine = settings_for_machine()
        run_state_machine_as_test(
            ReadsMachine,
            settings=hsettings(machine, max_examples=15, stateful_step_count=20),
        )
    finally:
        runner.run(db.close())
        runner.close()
