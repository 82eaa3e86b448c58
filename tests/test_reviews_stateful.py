"""A hypothesis state machine of the staff review inbox against the server (docs/reviews.md).

One firm per example: an org admin A, staff B and C, a bot; matter M1
(responsible: B; clients X and Y) and M2 (no responsible staff member: the
first org admin reviews; client X). Rules: a client's message (a new
thread or a reply, over HTTP through the group commit), a retried send,
mark reviewed, reassign (to staff, or to the bot: refused), change the
review date (or to a bad date: refused). A model says what each reviewer's
inbox holds; after every step every reviewer's count and inbox (read page
by page) agree with it, and every answer is the documented one.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck
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
from starlette.applications import Starlette

from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.db import Database
from rtportal.demo import add_member, create_contact, create_firm, create_matter, create_staff
from rtportal.reviews.choose import today_in
from rtportal.settings import Settings
from tests.test_invite_lifecycle_stateful import _Loop

STAFF = ("A", "B", "C")


@dataclass
class Expected:
    """What the server must hold for one received item."""

    reviewer: str
    review_on: date
    reviewed: bool = False
    id: int | None = None  # the server's, learnt from the reviewer's inbox


class ReviewInbox(RuleBasedStateMachine):
    http: ClassVar[httpx.AsyncClient]
    db: ClassVar[Database]
    config: ClassVar[Settings]
    runner: ClassVar[_Loop]

    @initialize()
    def setup(self) -> None:
        self.ids: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.refs: dict[str, str] = {}
        self.runner.run(self._seed())
        self.model: dict[str, Expected] = {}  # item id -> expectation
        self.sent: list[tuple[str, str, str, str]] = []  # (client, matter, thread, client_id)
        self.n = 0

    async def _seed(self) -> None:
        secret = self.config.secret_key
        async with self.db.write() as session:
            firm = await create_firm(session, "Inbox Firm")
            people = {
                "A": await create_staff(
                    session, firm, email=f"a{firm.id}@f.test", display_name="A", role="org_admin"
                ),
                "B": await create_staff(
                    session, firm, email=f"b{firm.id}@f.test", display_name="B"
                ),
                "C": await create_staff(
                    session, firm, email=f"c{firm.id}@f.test", display_name="C"
                ),
                "bot": await create_staff(
                    session, firm, email=f"r{firm.id}@f.test", display_name="R", role="bot"
                ),
                "X": await create_contact(session, firm, display_name="X"),
                "Y": await create_contact(session, firm, display_name="Y"),
            }
            m1 = await create_matter(session, firm, title="M1", responsible=people["B"])
            m2 = await create_matter(session, firm, title="M2")
            await add_member(session, m1, people["X"])
            await add_member(session, m1, people["Y"])
            await add_member(session, m2, people["X"])
            self.refs = {"M1": m1.reference, "M2": m2.reference}
            for name, who in people.items():
                self.ids[name] = who.id
                self.tokens[name] = await issue_token(
                    session, secret, who.kind, who.id, label="test", ttl=timedelta(hours=1)
                )

    def _auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def _call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self._auth(who)}
        if body is not None:
            kwargs["json"] = body
        response = self.runner.run(self.http.request(method, path, **kwargs))
        assert response.status_code < 500, response.text
        return response

    def _inbox(self, who: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        after = None
        while True:
            path = "/api/v1/reviews?limit=3" + (f"&after={after}" if after else "")
            response = self._call("GET", path, who)
            assert response.status_code == 200, response.text
            body = response.json()
            rows += body["reviews"]
            after = body["next"]
            if after is None:
                return rows

    def _learn_id(self, item: str) -> int:
        expected = self.model[item]
        if expected.id is None:
            found = [r for r in self._inbox(expected.reviewer) if r["ref"] == item]
            assert len(found) == 1, (item, expected)
            expected.id = int(found[0]["id"])
        return expected.id

    # --- rules -----------------------------------------------------------------------------

    @rule(
        client=st.sampled_from(("X", "Y")),
        matter=st.sampled_from(("M1", "M2")),
        thread=st.sampled_from(("t0", "t1")),
    )
    def client_sends(self, client: str, matter: str, thread: str) -> None:
        if client == "Y" and matter == "M2":
            matter = "M1"  # Y is a client of M1 only
        self.n += 1
        client_id = f"s{self.n}"
        body = {"kind": "message", "audience": "portal", "payload": {"thread": thread},
                "client_id": client_id}  # fmt: skip
        response = self._call("POST", f"/api/v1/matters/{self.refs[matter]}/events", client, body)
        assert response.status_code == 201, response.text
        item = f"c{self.ids[client]}.{client_id}"
        reviewer = "B" if matter == "M1" else "A"  # M2: nobody responsible, the org admin
        self.model[item] = Expected(reviewer, today_in(None))
        self.sent.append((client, matter, thread, client_id))

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def client_retries(self, data: st.DataObject) -> None:
        client, matter, thread, client_id = data.draw(st.sampled_from(self.sent))
        body = {"kind": "message", "audience": "portal", "payload": {"thread": thread},
                "client_id": client_id}  # fmt: skip
        response = self._call("POST", f"/api/v1/matters/{self.refs[matter]}/events", client, body)
        assert response.status_code in (200, 201), response.text  # the stored one, not a new one

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), by=st.sampled_from(STAFF))
    def mark_reviewed(self, data: st.DataObject, by: str) -> None:
        item = data.draw(st.sampled_from(sorted(self.model)))
        expected = self.model[item]
        rid = self._learn_id(item)
        response = self._call("POST", f"/api/v1/reviews/{rid}/reviewed", by, {})
        assert response.status_code == 200, response.text
        assert response.json()["changed"] is (not expected.reviewed)
        expected.reviewed = True

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), by=st.sampled_from(STAFF), to=st.sampled_from((*STAFF, "bot")))
    def reassign(self, data: st.DataObject, by: str, to: str) -> None:
        item = data.draw(st.sampled_from(sorted(self.model)))
        expected = self.model[item]
        rid = self._learn_id(item)
        response = self._call(
            "POST", f"/api/v1/reviews/{rid}/reassign", by, {"reviewer": self.ids[to]}
        )
        if to == "bot":
            assert response.status_code == 400, response.text
            assert response.json()["error"]["details"]["reason"] == "no_such_reviewer"
        elif expected.reviewed:
            assert response.status_code == 422, response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["changed"] is (expected.reviewer != to)
            expected.reviewer = to

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), by=st.sampled_from(STAFF), days=st.integers(-3, 3), bad=st.booleans())
    def change_date(self, data: st.DataObject, by: str, days: int, bad: bool) -> None:
        item = data.draw(st.sampled_from(sorted(self.model)))
        expected = self.model[item]
        rid = self._learn_id(item)
        day = today_in(None) + timedelta(days=days)
        raw = f"{day.isoformat()}x" if bad else day.isoformat()
        response = self._call("PATCH", f"/api/v1/reviews/{rid}", by, {"review_on": raw})
        if bad:
            assert response.status_code == 400, response.text
        elif expected.reviewed:
            assert response.status_code == 422, response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["changed"] is (expected.review_on != day)
            expected.review_on = day

    # --- what must hold after every step -------------------------------------------------

    @invariant()
    def every_inbox_and_count_is_the_models(self) -> None:
        if not hasattr(self, "model"):
            return
        today = today_in(None)
        for who in STAFF:
            mine = {i: e for i, e in self.model.items() if e.reviewer == who and not e.reviewed}
            rows = self._inbox(who)
            assert sorted(r["ref"] for r in rows) == sorted(mine), who
            for row in rows:
                assert row["review_on"] == mine[row["ref"]].review_on.isoformat()
            keys = [(r["review_on"], r["id"]) for r in rows]
            assert keys == sorted(keys), "oldest review date first"
            response = self._call("GET", "/api/v1/reviews/count", who)
            assert response.json() == {
                "open": len(mine),
                "due": sum(e.review_on <= today for e in mine.values()),
                "overdue": sum(e.review_on < today for e in mine.values()),
            }, who
        for who in ("X", "bot"):
            assert self._call("GET", "/api/v1/reviews/count", who).status_code == 404


def test_the_review_inbox_follows_its_model(settings: Settings) -> None:
    runner = _Loop()
    stack = AsyncExitStack()
    app: Starlette = create_app(settings)

    async def start() -> httpx.AsyncClient:
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        return await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )

    ReviewInbox.http = runner.run(start())
    ReviewInbox.db, ReviewInbox.config, ReviewInbox.runner = app.state.db, settings, runner
    try:
        run_state_machine_as_test(
            ReviewInbox,
            settings=hsettings(
                max_examples=12,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
    finally:
        runner.run(stack.aclose())
        runner.close()
