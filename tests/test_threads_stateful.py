"""A hypothesis state machine of threads, items, read marks, unread counts and
receipts (docs/threads.md), driving the real app over HTTP.

One matter, two staff (``s0`` an org admin, who toggles the firm's
``hide_staff_receipts``), three clients (``c1`` has applicants visibility
off). Rules: staff open a client thread addressed to some clients (or, with
no ``to``, to every client member); a client opens their own; replies;
staff notes in a client thread or an internal thread; edits (the sender
only), deletes (the sender or staff), read marks by anyone, removing a
client member. A plain model of the rules says what every step answers and,
after every step, what each actor gets: the thread list (ids, kinds,
recipients, openers, item counts, unread, newest activity first), each
thread's events (ids in order, the blob served, deleted or not), the
matter's unread counts and the receipts; a thread an actor may not see is
``not_found`` (a removed client gets ``not_found`` for everything). Blobs
are opaque and distinct, so the served one names the version.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from rtportal.access.removal import remove_member
from rtportal.access.sessions import issue_token
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.keys import ids
from rtportal.principal import Principal
from rtportal.settings import Settings
from tests.support.apphost import AppHost
from tests.support.threadworld import hide_applicants
from tests.test_invite_lifecycle_stateful import _Loop, settings_for_machine

Json = dict[str, Any]
ACTORS = ("s0", "s1", "c0", "c1", "c2")
CLIENTS = ("c0", "c1", "c2")
# Threads per example: every step reads each thread as each actor, so more
# threads cost time, not cases (what happens in a thread is the point).
MAX_THREADS = 5
SEEN: Counter[str] = Counter()  # outcomes over the run, printed at its end (pytest -s)


def _seen(outcome: str) -> None:
    SEEN[outcome] += 1


@dataclass
class Actor:
    name: str
    principal: Principal
    token: str
    sees: bool = True  # applicants visibility (staff: everything)
    removed: bool = False

    @property
    def staff(self) -> bool:
        return self.principal.is_staff

    @property
    def rid(self) -> str:
        return ids.of(self.principal)


@dataclass
class Ev:
    """One event of the matter's log as the model holds it."""

    seq: int
    kind: str  # message, note, edit, delete
    thread: str
    item: str  # its own item id (message, note) or the item it acts on
    audience: str
    to: tuple[int, ...] | None
    actor: str  # actor name
    blob: str | None
    redacted: bool = False


@dataclass
class Thread:
    opener: str
    internal: bool
    to: tuple[int, ...]


@dataclass
class Item:
    thread: str
    kind: str
    sender: str
    audience: str
    to: tuple[int, ...] | None
    deleted: bool = False


@dataclass
class Model:
    events: list[Ev] = field(default_factory=list)
    threads: dict[str, Thread] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    marks: dict[tuple[str, str], int] = field(default_factory=dict)  # (rtp1 id, thread)
    hide_staff: bool = False


class ThreadsMachine(RuleBasedStateMachine):
    host: ClassVar[AppHost]
    runner: ClassVar[_Loop]

    @initialize()
    def setup(self) -> None:
        self.actors, self.ref, self.matter_id = self.runner.run(self._seed())
        self.m = Model()
        self.n = 0  # client ids, thread ids and blobs: distinct per example

    async def _seed(self) -> tuple[dict[str, Actor], str, int]:
        db, secret = self.host.db, self.host.settings.secret_key
        async with db.write() as session:
            firm = await create_firm(session, "Threads Model")
            principals = [
                await create_staff(
                    session, firm, email=f"s0.{firm.id}@f.test", display_name="S0", role="org_admin"
                ),
                await create_staff(session, firm, email=f"s1.{firm.id}@f.test", display_name="S1"),
            ]
            matter = await create_matter(session, firm, title="Model")
            for n in range(3):
                contact = await create_contact(session, firm, display_name=f"C{n}")
                await add_member(session, matter, contact)
                principals.append(contact)
            actors = {}
            for name, p in zip(ACTORS, principals, strict=True):
                token = await issue_token(
                    session, secret, p.kind, p.id, label="model", ttl=timedelta(hours=1)
                )
                actors[name] = Actor(name, p, token)
        await hide_applicants(db, matter, actors["c1"].principal)
        actors["c1"].sees = False
        return actors, matter.reference, matter.id

    # --- HTTP ------------------------------------------------------------------------

    def _call(self, who: str, method: str, path: str, body: Json | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.actors[who].token}"}
        url = f"/api/v1{path}"
        return self.runner.run(self.host.http.request(method, url, json=body, headers=headers))

    def _send(self, who: str, body: Json) -> httpx.Response:
        return self._call(who, "POST", f"/matters/{self.ref}/events", body)

    def _seq_of(self, who: str, event: Json) -> int:
        """An event's seq: a staff member reads it; a contact holds a token (never a seq)."""
        if self.actors[who].staff:
            return int(event["seq"])
        assert "seq" not in event, event
        return self.host.codec.seq_of(event["cursor"], self.matter_id)

    def _cursor(self, who: str, seq: int) -> int | str:
        if self.actors[who].staff or seq == 0:
            return seq
        return self.host.codec.event_token(self.matter_id, seq)

    def _fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def _blob(self) -> str:
        self.n += 1
        return base64.urlsafe_b64encode(self.n.to_bytes(3, "big")).decode()

    # --- the model's rules -----------------------------------------------------------

    def _live(self, who: str) -> Actor | None:
        actor = self.actors[who]
        return None if actor.removed else actor

    def _sees(self, who: str, audience: str, to: tuple[int, ...] | None, sender: str) -> bool:
        """``view_for``: staff everything; a client portal items (and their edits and
        deletes) addressed to them, sent by them, or all with applicants visibility."""
        actor = self.actors[who]
        if actor.staff:
            return True
        if audience != "portal":
            return False
        return actor.sees or sender == who or actor.principal.id in (to or ())

    def _sees_event(self, who: str, ev: Ev) -> bool:
        return self._sees(who, ev.audience, ev.to, ev.actor)

    def _sees_thread(self, who: str, thread: str) -> bool:
        actor = self._live(who)
        found = self.m.threads.get(thread)
        if actor is None or found is None:
            return False
        if actor.staff:
            return True
        if found.internal:
            return False
        opener = self.m.items[found.opener]
        return actor.sees or opener.sender == who or actor.principal.id in found.to

    def _sees_item(self, who: str, item_id: str) -> bool:
        item = self.m.items[item_id]
        return self._sees(who, item.audience, item.to, item.sender)

    def _unread(self, who: str) -> dict[str, int]:
        actor = self.actors[who]
        kinds = ("message", "note") if actor.staff else ("message",)
        counts: dict[str, int] = {}
        for ev in self.m.events:
            if (
                ev.kind in kinds
                and not ev.redacted
                and ev.actor != who
                and self._sees_event(who, ev)
                and ev.seq > self.m.marks.get((actor.rid, ev.thread), 0)
            ):
                counts[ev.thread] = counts.get(ev.thread, 0) + 1
        return counts

    def _refused(self, response: httpx.Response, status: int, reason: str | None) -> None:
        _seen(f"refused {status} {reason}")  # the statistics say which refusals ran
        assert response.status_code == status, response.text
        if reason is not None:
            details = response.json()["error"].get("details") or {}
            assert details.get("reason") == reason, response.text

    def _stored(self, who: str, response: httpx.Response, kind: str, thread: str) -> Json:
        assert response.status_code == 201, response.text
        event: Json = response.json()["event"]
        assert event["kind"] == kind and event["payload"]["thread"] == thread, event
        return event

    def _add_item(
        self, who: str, response: httpx.Response, kind: str, thread: str, cid: str, blob: str
    ) -> None:
        event = self._stored(who, response, kind, thread)
        item = f"{self.actors[who].rid}.{cid}"
        payload = event["payload"]
        assert payload["item"] == item, payload
        found = self.m.threads.get(thread)
        if found is None:
            audience = "staff" if kind == "note" else "portal"
            to = None if kind == "note" else tuple(payload["to"])
            self.m.threads[thread] = Thread(item, kind == "note", to or ())
            assert "parent" not in payload, payload
        else:
            assert payload["parent"] == found.opener, payload
            audience = "staff" if kind == "note" else "portal"
            to = None if kind == "note" else found.to
        if to is not None:
            assert tuple(payload["to"]) == to, payload
        seq = self._seq_of(who, event)
        self.m.items[item] = Item(thread, kind, who, audience, to)
        self.m.events.append(Ev(seq, kind, thread, item, audience, to, who, blob))

    # --- rules -------------------------------------------------------------------------

    @precondition(lambda self: len(self.m.threads) < MAX_THREADS)
    @rule(
        who=st.sampled_from(("s0", "s1")),
        to=st.none() | st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=3, unique=True),
    )
    def staff_opens(self, who: str, to: list[str] | None) -> None:
        thread, cid, blob = self._fresh("t"), self._fresh("o"), self._blob()
        payload: Json = {"thread": thread}
        if to is not None:
            payload["to"] = [self.actors[c].principal.id for c in to]
        response = self._send(
            who, {"kind": "message", "client_id": cid, "payload": payload, "blob": blob}
        )
        if to is not None and any(self.actors[c].removed for c in to):
            self._refused(response, 400, "thread_recipients")
            return
        self._add_item(who, response, "message", thread, cid, blob)
        live = sorted(a.principal.id for a in self.actors.values() if not a.staff and not a.removed)
        expected = live if to is None else sorted(payload["to"])
        assert list(self.m.threads[thread].to) == expected

    @precondition(lambda self: len(self.m.threads) < MAX_THREADS)
    @rule(who=st.sampled_from(CLIENTS))
    def client_opens(self, who: str) -> None:
        thread, cid, blob = self._fresh("t"), self._fresh("o"), self._blob()
        body = {"kind": "message", "client_id": cid, "payload": {"thread": thread}, "blob": blob}
        response = self._send(who, body)
        if self.actors[who].removed:
            self._refused(response, 404, None)
            return
        self._add_item(who, response, "message", thread, cid, blob)
        assert self.m.threads[thread].to == (self.actors[who].principal.id,)

    @precondition(lambda self: bool(self.m.threads))
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def reply(self, data: st.DataObject, who: str) -> None:
        thread = data.draw(st.sampled_from(sorted(self.m.threads)))
        cid, blob = self._fresh("r"), self._blob()
        body = {"kind": "message", "client_id": cid, "payload": {"thread": thread}, "blob": blob}
        response = self._send(who, body)
        if not self._sees_thread(who, thread):
            self._refused(response, 404, None)
        elif self.m.threads[thread].internal:
            self._refused(response, 400, "internal_thread")
        else:
            self._add_item(who, response, "message", thread, cid, blob)

    # A client's note is drawn now and then: it is refused (``validate``).
    @rule(
        data=st.data(), who=st.sampled_from(("s0", "s1", "s0", "s1", *CLIENTS)), new=st.booleans()
    )
    def note(self, data: st.DataObject, who: str, new: bool) -> None:
        if not self.m.threads or (new and len(self.m.threads) < MAX_THREADS):
            thread = self._fresh("t")
        else:
            thread = data.draw(st.sampled_from(sorted(self.m.threads)))
        cid, blob = self._fresh("n"), self._blob()
        body = {
            "kind": "note",
            "audience": "staff",
            "client_id": cid,
            "payload": {"thread": thread},
            "blob": blob,
        }
        response = self._send(who, body)
        if self.actors[who].staff:
            self._add_item(who, response, "note", thread, cid, blob)
        elif self.actors[who].removed:
            self._refused(response, 404, None)
        else:
            self._refused(response, 400, None)
            assert response.json()["error"]["code"] == "bad_request", response.text

    def _act(self, who: str, kind: str, item_id: str) -> None:
        cid = self._fresh("e" if kind == "edit" else "d")
        body: Json = {"kind": kind, "client_id": cid, "payload": {"item": item_id}}
        blob = None
        if kind == "edit":
            blob = body["blob"] = self._blob()
        response = self._send(who, body)
        item = self.m.items[item_id]
        actor = self.actors[who]
        if actor.removed:
            self._refused(response, 404, None)
            return
        if not self._sees_item(who, item_id):
            self._refused(response, 404, "no_such_item")
            return
        sender = item.sender == who
        if not sender and (kind == "edit" or not actor.staff):
            self._refused(response, 403, "not_sender")
            return
        if item.deleted:
            self._refused(response, 404, "no_such_item")
            return
        stored = self._stored(who, response, kind, item.thread)
        _seen(f"{kind} by {'the sender' if sender else 'staff'}")
        assert stored["payload"]["item"] == item_id
        expected_to = list(item.to) if item.to is not None else None
        assert stored["payload"].get("to") == expected_to, stored
        seq = self._seq_of(who, stored)
        ev = Ev(seq, kind, item.thread, item_id, item.audience, item.to, who, blob)
        self.m.events.append(ev)
        if kind == "delete":
            item.deleted = True
            for old in self.m.events:
                if old.item == item_id and old.kind in ("message", "note", "edit"):
                    old.blob, old.redacted = None, True

    def _target(self, data: st.DataObject, who: str) -> str:
        """Mostly an item the actor sees (often their own), so that acts happen."""
        own = sorted(i for i, item in self.m.items.items() if item.sender == who)
        seen = sorted(i for i in self.m.items if self._sees_item(who, i))
        pools = [p for p in (own, seen, sorted(self.m.items)) if p]
        return data.draw(st.sampled_from(data.draw(st.sampled_from(pools))))

    @precondition(lambda self: bool(self.m.items))
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def edit(self, data: st.DataObject, who: str) -> None:
        self._act(who, "edit", self._target(data, who))

    @precondition(lambda self: bool(self.m.items))
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def delete(self, data: st.DataObject, who: str) -> None:
        self._act(who, "delete", self._target(data, who))

    def _visible_seqs(self, who: str, thread: str) -> list[int]:
        return [e.seq for e in self.m.events if e.thread == thread and self._sees_event(who, e)]

    @precondition(lambda self: bool(self.m.threads))
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def read(self, data: st.DataObject, who: str) -> None:
        """A mark up to any event of any thread (one the reader sees, mostly)."""
        seen = sorted(t for t in self.m.threads if self._sees_thread(who, t))
        pools = [p for p in (seen, sorted(self.m.threads)) if p]
        thread = data.draw(st.sampled_from(data.draw(st.sampled_from(pools))))
        visible = self._visible_seqs(who, thread)
        self._mark(who, thread, data.draw(st.sampled_from(visible)) if visible else 0)

    @precondition(lambda self: bool(self.m.threads))
    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def catch_up(self, data: st.DataObject, who: str) -> None:
        """What a screen does: the newest event of a thread the reader sees."""
        seen = sorted(t for t in self.m.threads if self._sees_thread(who, t))
        if seen:
            thread = data.draw(st.sampled_from(seen))
            self._mark(who, thread, self._visible_seqs(who, thread)[-1])

    def _mark(self, who: str, thread: str, seq: int) -> None:
        body = {"upto": self._cursor(who, seq)}
        response = self._call(who, "POST", f"/matters/{self.ref}/threads/{thread}/read", body)
        if not self._sees_thread(who, thread):
            self._refused(response, 404, None)
            return
        assert response.status_code == 200, response.text
        key = (self.actors[who].rid, thread)
        _seen("read moved" if seq > self.m.marks.get(key, 0) else "read kept")
        self.m.marks[key] = max(self.m.marks.get(key, 0), seq)
        got = response.json()
        mark = self.m.marks[key]
        assert (got["upto"] == 0) if mark == 0 else (self._as_seq(who, got["upto"]) == mark)
        counts = self._unread(who)
        assert (got["unread"], got["matter_unread"]) == (
            counts.get(thread, 0),
            sum(counts.values()),
        ), (who, thread)

    # One removal at most: a removed client has nothing left to do.
    @precondition(lambda self: not any(a.removed for a in self.actors.values()))
    @rule(who=st.sampled_from(CLIENTS))
    def remove(self, who: str) -> None:
        actor = self.actors[who]
        hub = self.host.app.state.runtime.hub
        ended = self.runner.run(
            remove_member(self.host.db, hub, self.matter_id, "contact", actor.principal.id)
        )
        assert ended is not actor.removed
        actor.removed = True
        _seen("removed")

    @rule(hide=st.booleans())
    def hide_staff_receipts(self, hide: bool) -> None:
        response = self._call("s0", "PATCH", "/firm", {"hide_staff_receipts": hide})
        assert response.status_code == 200, response.text
        assert response.json()["firm"]["hide_staff_receipts"] is hide
        self.m.hide_staff = hide

    # --- what every actor gets after every step ----------------------------------------

    def _as_seq(self, who: str, cursor: object) -> int:
        if self.actors[who].staff:
            assert isinstance(cursor, int), cursor
            return cursor
        assert isinstance(cursor, str), cursor  # a contact is never sent a seq
        return self.host.codec.seq_of(cursor, self.matter_id)

    def _expected_list(self, who: str) -> list[tuple[Any, ...]]:
        unread = self._unread(who)
        rows = []
        for thread, found in self.m.threads.items():
            seen = [e for e in self.m.events if e.thread == thread and self._sees_event(who, e)]
            if not seen or not self._sees_thread(who, thread):
                continue
            items = sum(1 for e in seen if e.kind in ("message", "note"))
            kind = "internal" if found.internal else "client"
            row = (thread, kind, list(found.to), found.opener, items, unread.get(thread, 0))
            rows.append((seen[-1].seq, row))
        return [row for _, row in sorted(rows, reverse=True)]

    def _expected_items(self, who: str, thread: str) -> list[tuple[Any, ...]]:
        return [
            (e.kind, e.item, e.blob, e.redacted)
            for e in self.m.events
            if e.thread == thread and self._sees_event(who, e)
        ]

    def _expected_receipts(self, who: str, thread: str) -> dict[str, int]:
        viewer = self.actors[who]
        found = self.m.threads[thread]
        shown = {}
        for (reader, t), seq in self.m.marks.items():
            if t != thread or seq == 0:
                continue
            if not viewer.staff and reader != viewer.rid:
                if reader.startswith("s"):
                    if self.m.hide_staff:
                        _seen("staff receipt hidden")
                        continue
                elif not viewer.sees and int(reader[1:]) not in found.to:
                    _seen("co-applicant receipt hidden")
                    continue
            if not viewer.staff:
                # a client is shown a mark at the thread's last event it sees
                held = [
                    e.seq
                    for e in self.m.events
                    if e.thread == thread and e.seq <= seq and self._sees_event(who, e)
                ]
                if not held:
                    continue
                seq = max(held)
            shown[reader] = seq
        return shown

    @invariant()
    def every_actor_gets_what_the_model_holds(self) -> None:
        if not hasattr(self, "m"):
            return
        base = f"/matters/{self.ref}"
        paths = [f"{base}/threads?limit=100", f"{base}/unread"]
        for thread in self.m.threads:
            paths += [
                f"{base}/threads/{thread}/items?limit=500",
                f"{base}/threads/{thread}/receipts",
            ]
        asks = [(who, path) for who in ACTORS for path in paths]
        # All at once: the reads are independent, and the machine's time goes to them.
        answers = dict(zip(asks, self.runner.run(self._get_all(asks)), strict=True))
        for who in ACTORS:
            self._check(who, [answers[(who, path)] for path in paths])

    async def _get_all(self, asks: list[tuple[str, str]]) -> list[httpx.Response]:
        http = self.host.http

        async def get(who: str, path: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {self.actors[who].token}"}
            return await http.get(f"/api/v1{path}", headers=headers)

        return list(await asyncio.gather(*(get(who, path) for who, path in asks)))

    def _check(self, who: str, answers: list[httpx.Response]) -> None:
        listed, unread = answers[:2]
        if self.actors[who].removed:
            for response in (listed, unread):
                self._refused(response, 404, None)
        else:
            assert listed.status_code == 200, listed.text
            got = [
                (t["thread"], t["kind"], t["to"], t["opener"], t["items"], t.get("unread"))
                for t in listed.json()["threads"]
            ]
            assert got == self._expected_list(who), who
            counts = self._unread(who)
            assert unread.json() == {"matter": sum(counts.values()), "threads": counts}, who
        for n, thread in enumerate(self.m.threads):
            page, shown = answers[2 + 2 * n : 4 + 2 * n]
            if not self._sees_thread(who, thread):
                self._refused(page, 404, None)
                self._refused(shown, 404, None)
                continue
            assert page.status_code == 200, page.text
            body, found = page.json(), self.m.threads[thread]
            kind = "internal" if found.internal else "client"
            assert (body["kind"], body["opener"]) == (kind, found.opener), body
            got_items = [
                (e["kind"], e["payload"]["item"], e["blob"], bool(e.get("redacted")))
                for e in body["events"]
            ]
            assert got_items == self._expected_items(who, thread), (who, thread)
            # Each event's position as the actor spells it: a contact never sees a seq.
            seqs = [
                self._as_seq(who, e["seq"] if "seq" in e else e["cursor"]) for e in body["events"]
            ]
            assert seqs == [
                e.seq for e in self.m.events if e.thread == thread and self._sees_event(who, e)
            ]
            assert shown.status_code == 200, shown.text
            receipts = {r["reader"]: self._as_seq(who, r["upto"]) for r in shown.json()["receipts"]}
            assert receipts == self._expected_receipts(who, thread), (who, thread)


# Every actor is checked after every step: about a minute on a quiet machine; under
# a full suite run beside another the default 300 s was not enough.
@pytest.mark.timeout(600)
def test_threads_reads_and_receipts_follow_their_model(settings: Settings) -> None:
    runner = _Loop()
    host = AppHost(settings)
    runner.run(host.start())
    ThreadsMachine.host, ThreadsMachine.runner = host, runner
    try:
        machine = settings_for_machine()
        run_state_machine_as_test(
            ThreadsMachine,
            settings=hsettings(machine, max_examples=8, stateful_step_count=20),
        )
    finally:
        runner.run(host.stop())
        runner.close()
    print(sorted(SEEN.items()))
