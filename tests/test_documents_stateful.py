"""A hypothesis state machine of document requests against the server (docs/documents.md).

One matter with two client members: A sees the applicants, B does not.
Three requests of one type; rules request them (to A, B, both or every
client), upload against them (as A or B, a new file each time), retry the
last upload, accept and reject them. A model says what each answer must be
(status code, stable code, changed or not); invariants check the staff
checklist (statuses, rounds, recipients), what A and B each see, and that
every change wrote exactly one ``document`` event and a retry none. No step
may answer anything the model did not expect, 500 least of all.
"""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import httpx
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
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.db.models import Event, MatterMember
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.settings import Settings
from tests.support.docworld import upload_rta1
from tests.test_invite_lifecycle_stateful import _Loop, settings_for_machine

ITEMS = 3
TO = st.sampled_from([None, ("a",), ("b",), ("a", "b")])
WHO = st.sampled_from(["a", "b"])
INDEX = st.integers(0, ITEMS - 1)


@dataclass
class Item:
    ref: str
    status: str = "not_requested"
    round: int = 0
    to: tuple[str, ...] = ()
    files: list[str] = field(default_factory=list)


class Requests(RuleBasedStateMachine):
    runner: ClassVar[_Loop]
    http: ClassVar[httpx.AsyncClient]
    app: ClassVar[Starlette]

    @initialize()
    def setup(self) -> None:
        self.runner.run(self._seed())
        self.events = 0
        self.last_upload: tuple[int, str, str] | None = None  # (item, who, file)

    async def _seed(self) -> None:
        settings: Settings = self.app.state.settings
        async with self.app.state.db.write() as session:
            firm = await create_firm(session, "Documents Model")
            tag = secrets.token_hex(4)
            staff = await create_staff(session, firm, email=f"s{tag}@f.test", display_name="S")
            admin = await create_staff(
                session, firm, email=f"o{tag}@f.test", display_name="O", role="org_admin"
            )
            a = await create_contact(session, firm, display_name="A")
            b = await create_contact(session, firm, display_name="B")
            matter = await create_matter(session, firm, title="Model")
            await add_member(session, matter, a)
            await add_member(session, matter, b)
            await session.execute(
                update(MatterMember)
                .where(MatterMember.principal_kind == "contact", MatterMember.principal_id == b.id)
                .values(see_applicants=False)
            )
            self.auth = {}
            for key, who in (("staff", staff), ("admin", admin), ("a", a), ("b", b)):
                token = await issue_token(
                    session,
                    settings.secret_key,
                    who.kind,
                    who.id,
                    label="m",
                    ttl=timedelta(hours=1),
                )
                self.auth[key] = {"Authorization": f"Bearer {token}"}
        self.ids = {"a": a.id, "b": b.id}
        self.matter_id, self.ref = matter.id, matter.reference
        r = await self.http.post(
            "/api/v1/firm/document-types", json={"label": "Payslip"}, headers=self.auth["admin"]
        )
        assert r.status_code == 201, r.text
        type_id = r.json()["document_type"]["id"]
        r = await self.http.post(
            self.base, json={"types": [type_id] * ITEMS}, headers=self.auth["staff"]
        )
        assert r.status_code == 201, r.text
        self.items = [Item(d["id"]) for d in r.json()["documents"]]

    @property
    def base(self) -> str:
        return f"/api/v1/matters/{self.ref}/documents"

    # --- the model ----------------------------------------------------------------------

    def sees(self, who: str, item: Item) -> bool:
        return item.status != "not_requested" and (who == "a" or who in item.to)

    def expect(self, r: httpx.Response, status: int, reason: str | None = None) -> Any:
        assert r.status_code == status, (status, reason, r.text)
        body = r.json()
        if status >= 400:
            assert body["error"].get("details", {}).get("reason") == reason, r.text
        return body

    def changed(self, body: Any, changed: bool) -> None:
        assert body["changed"] is changed, body
        self.events += int(changed)

    # --- rules --------------------------------------------------------------------------

    @rule(picked=st.sets(INDEX, min_size=1), to=TO)
    def request(self, picked: set[int], to: tuple[str, ...] | None) -> None:
        body: dict[str, Any] = {"items": [self.items[i].ref for i in sorted(picked)]}
        if to is not None:
            body["to"] = [self.ids[w] for w in to]
        r = self.runner.run(
            self.http.post(f"{self.base}/request", json=body, headers=self.auth["staff"])
        )
        fresh = [self.items[i] for i in picked if self.items[i].status == "not_requested"]
        for item in fresh:
            item.status, item.to = "requested", to or ("a", "b")
        self.changed(self.expect(r, 200), bool(fresh))

    async def _upload(self, who: str, index: int, file_id: str | None) -> tuple[str, Any]:
        if file_id is None:
            file_id = await upload_rta1(self.http, self.ref, self.auth[who])
        r = await self.http.post(
            f"{self.base}/{self.items[index].ref}/upload",
            json={"files": [file_id], "blob": "AAAA"},
            headers=self.auth[who],
        )
        return file_id, r

    @rule(who=WHO, index=INDEX)
    def upload(self, who: str, index: int) -> None:
        item = self.items[index]
        file_id, r = self.runner.run(self._upload(who, index, None))
        if not self.sees(who, item):
            self.expect(r, 404, "no_such_document")
        elif item.status == "accepted":
            self.expect(r, 422, "document_accepted")
        else:
            if item.status in ("requested", "rejected"):
                item.round += 1
            item.status = "uploaded"
            item.files.append(file_id)
            self.changed(self.expect(r, 200), True)
            self.last_upload = (index, who, file_id)

    @precondition(lambda self: self.last_upload is not None)
    @rule()
    def retry_upload(self) -> None:
        assert self.last_upload is not None
        index, who, file_id = self.last_upload
        item = self.items[index]
        _, r = self.runner.run(self._upload(who, index, file_id))
        if not self.sees(who, item):  # its recipients changed? never: only its status
            self.expect(r, 404, "no_such_document")
        elif item.status == "accepted":
            self.expect(r, 422, "document_accepted")
        else:  # the file is the item's already: nothing new
            self.changed(self.expect(r, 200), False)

    @rule(index=INDEX, accept=st.booleans())
    def decide(self, index: int, accept: bool) -> None:
        item = self.items[index]
        action = "accept" if accept else "reject"
        body = None if accept else {"reason": "AAAA"}
        r = self.runner.run(
            self.http.post(
                f"{self.base}/{item.ref}/{action}", json=body, headers=self.auth["staff"]
            )
        )
        target = "accepted" if accept else "rejected"
        allowed = {"uploaded"} if accept else {"uploaded", "accepted"}
        if item.status == target:
            self.changed(self.expect(r, 200), False)
        elif item.status in allowed:
            item.status = target
            self.changed(self.expect(r, 200), True)
        else:
            self.expect(r, 422, "document_not_uploaded")

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def the_server_agrees(self) -> None:
        self.runner.run(self._check())

    async def _check(self) -> None:
        r = await self.http.get(self.base, headers=self.auth["staff"])
        staff = {d["id"]: d for d in r.json()["documents"]}
        for item in self.items:
            got = staff[item.ref]
            assert (got["status"], got["round"]) == (item.status, item.round), (item, got)
            assert got["to"] == sorted(self.ids[w] for w in item.to)
            assert [f["id"] for f in got["files"]] == item.files
        for who in ("a", "b"):
            r = await self.http.get(self.base, headers=self.auth[who])
            seen = {d["id"] for d in r.json()["documents"]}
            assert seen == {i.ref for i in self.items if self.sees(who, i)}, who
        async with self.app.state.db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.matter_id == self.matter_id, Event.kind == "document")
            )
        assert count == self.events


async def _start(settings: Settings, stack: AsyncExitStack) -> tuple[Starlette, httpx.AsyncClient]:
    app = create_app(settings)
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    http = await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url="http://testserver")
    )
    return app, http


def test_document_requests_follow_their_model(settings: Settings) -> None:
    runner = _Loop()
    stack = AsyncExitStack()
    try:
        Requests.app, Requests.http = runner.run(_start(settings, stack))
        Requests.runner = runner
        run_state_machine_as_test(
            Requests,
            settings=hsettings(settings_for_machine(), max_examples=15, stateful_step_count=20),
        )
    finally:
        runner.run(stack.aclose())
        runner.close()
