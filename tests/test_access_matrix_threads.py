"""The access matrix over the threads' frames and routes (issue 12, "How it must be shown").

Matter M1 of firm A has client threads to the client ``a`` (``tA``), to ``b``
(``tB``; ``b``'s membership hides the applicants), to both (``tAB``) and an
internal thread (``tI``). Identities that must not reach a thread: a client
of another matter, a client removed from M1, ``b`` (for ``tA`` and ``tI``),
staff of another firm, no session. Each sends ``read``, ``typing`` and
``subscribe`` frames and makes each thread request (HTTP) for every thread
it must not see, and for one that does not exist (a thread of M1 that was
never opened, for ``b``; a matter reference that names nothing, for the
others): every answer must be the same as the one for what does not exist
(type, code, message, details: only the echoed ``id``/``matter`` differ),
and no answer nor any frame the connection got carries M1's secrets. The
route table itself (every route x every identity) is tests/test_access_matrix.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from rtportal.access.removal import remove_member
from rtportal.access.sessions import issue_token
from rtportal.app import create_app
from rtportal.closecodes import CLOSE_UNAUTHENTICATED
from rtportal.demo import add_member
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS
from tests.conftest import FirmKit, MakeFirm
from tests.support.recorder import Live, is_
from tests.support.server import RunningServer, running_server
from tests.support.threadworld import Applicants
from tests.support.wsjson import TIMEOUT, open_ws

pytestmark = pytest.mark.timeout(300)

NO_MATTER = "ZZZZ9999"  # a matter reference no firm has
NO_THREAD = "never-opened"
FRAMES = ("read", "typing", "subscribe")
# Thread requests: (method, path after /api/v1/matters/{ref}, body); {t} is the thread.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/threads/{t}/items", None),
    ("GET", "/threads/{t}/items?around=unread", None),
    ("POST", "/threads/{t}/read", {"upto": 0}),
    ("GET", "/threads/{t}/first-unread", None),
    ("GET", "/threads/{t}/receipts", None),
]
MATTER_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/threads", None),
    ("GET", "/unread", None),
    ("GET", "/timeline", None),
    ("GET", "/events?after=0", None),
    ("POST", "/phase", {"phase": 1}),
]


@dataclass
class Who:
    name: str
    token: str | None
    staff: bool
    secret: list[tuple[str, str]]  # (matter, thread) it must not reach
    control: tuple[str, str]  # what does not exist, the same shape
    member: bool = False  # of M1 (b): matter-level requests are its own
    answers: list[str] = field(default_factory=list)


@dataclass
class Tally:
    frames: int = 0
    requests: int = 0
    identities: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(create_app(settings), ws=UVICORN_WS) as srv:
        yield srv


def _same(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What must not differ between a secret and a missing target."""
    return (answer.get("type"), answer.get("code"), answer.get("message"), answer.get("details"))


def _http_same(response: httpx.Response) -> tuple[Any, ...]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return (response.status_code, body)


def _frame(kind: str, fid: str, matter: str, thread: str, upto: int | str) -> dict[str, Any]:
    if kind == "subscribe":
        return {"type": "subscribe", "id": fid, "subs": [{"matter": matter, "after": 0}]}
    if kind == "read":
        return {"type": "read", "id": fid, "matter": matter, "thread": thread, "upto": upto}
    return {"type": "typing", "id": fid, "matter": matter, "thread": thread}


async def _frames_of(srv: RunningServer, who: Who, upto: int | str, tally: Tally) -> None:
    """Each frame at each secret target and at the control; answers compared."""
    if who.token is None:  # no session: refused at the upgrade, before any frame is read
        ws = await open_ws(srv, None, origin=srv.origin)
        try:
            got = [await ws.recv()]
        except ConnectionClosed as exc:
            got = []
            assert exc.rcvd is not None and exc.rcvd.code == CLOSE_UNAUTHENTICATED
        assert got == [], got
        tally.frames += len(FRAMES) * (len(who.secret) + 1)
        return
    live = await Live.bearer(srv, who.token, who.name)
    for kind in FRAMES:
        if kind == "subscribe" and who.member:
            continue  # b may subscribe to M1: its frames are checked below
        answers: dict[tuple[str, str], dict[str, Any]] = {}
        for n, target in enumerate([who.control, *who.secret]):
            answers[target] = await live.request(**_frame(kind, f"{kind}{n}", *target, upto))
            tally.frames += 1
        want = _same(answers[who.control])
        if want[:2] != ("error", "not_found"):
            tally.failures.append(f"{who.name} {kind} control: {answers[who.control]}")
        for target in who.secret:
            if _same(answers[target]) != want:
                tally.failures.append(f"{who.name} {kind} {target}: {answers[target]} != {want}")
    await live.request(type="ping", id="end")
    await live.close()
    who.answers += live.texts


async def _requests_of(http: httpx.AsyncClient, who: Who, tally: Tally) -> None:
    headers = {} if who.token is None else {"Authorization": f"Bearer {who.token}"}
    plans = [(r, False) for r in ROUTES] + (
        [] if who.member else [(r, True) for r in MATTER_ROUTES]
    )
    for (method, path, body), matter_level in plans:
        answers = {}
        targets = [who.control, *who.secret]
        if matter_level:  # one per matter
            targets = list(dict.fromkeys((m, "") for m, _ in targets))
        for matter, thread in targets:
            url = f"/api/v1/matters/{matter}" + path.format(t=thread)
            response = await http.request(method, url, json=body, headers=headers)
            who.answers.append(response.text)
            answers[matter, thread] = _http_same(response)
            tally.requests += 1
        want = answers[targets[0]]
        expected = 401 if who.token is None else 404
        if want[0] != expected:
            tally.failures.append(f"{who.name} {method} {path} control: {want}")
        for target in targets[1:]:
            if answers[target] != want:
                tally.failures.append(
                    f"{who.name} {method} {path} {target}: {answers[target]} != {want}"
                )


async def _identities(srv: RunningServer, w: Applicants, other_firm: FirmKit) -> list[Who]:
    kit = w.kit
    m1 = kit.ref
    secret = [(m1, "tA"), (m1, "tAB"), (m1, "tI")]
    m2 = await kit.add_matter(title="Matter two", members=())
    _, other_token = await kit.add_contact("Olga Other", matter=m2)
    removed, _ = await kit.add_contact("Rita Removed", matter=kit.matter)
    async with kit.db.write() as session:
        await add_member(session, m2, removed)
    await remove_member(kit.db, srv.app.state.runtime.hub, kit.matter.id, "contact", removed.id)
    async with kit.db.write() as session:  # a session of its own (a member of M2 still)
        removed_token = await issue_token(
            session, kit.settings.secret_key, "contact", removed.id, label="t", ttl=None
        )
    control = (NO_MATTER, "tA")
    return [
        Who("another matter's client", other_token, False, secret, control),
        Who("removed client", removed_token, False, secret, control),
        Who(
            "client b (applicants hidden)",
            w.b_token,
            False,
            [(m1, "tA"), (m1, "tI")],
            (m1, NO_THREAD),
            member=True,
        ),
        Who("staff of another firm", other_firm.tokens["staff"], True, secret, control),
        Who("org admin of another firm", other_firm.tokens["admin"], True, secret, control),
        Who("no session", None, False, secret, control),
    ]


async def test_thread_frames_and_routes_leak_nothing(
    server: RunningServer, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    w = await Applicants.make(kit)
    a_id, b_id = w.a.id, w.b.id
    await w.item(kit.admin, "tA", to=(a_id,))
    await w.item(kit.admin, "tB", to=(b_id,))
    await w.item(kit.admin, "tI", kind="note")
    head = await w.item(kit.admin, "tAB", to=(a_id, b_id))
    codec = server.app.state.runtime.frames.cursors
    who_all = await _identities(server, w, await make_firm())
    tally = Tally()
    # b, subscribed to M1, gets nothing of tA or tI while staff type and read there;
    # staff typing in tAB is the barrier (b sees that thread).
    staff, b = (
        await Live.bearer(server, kit.tokens["staff"], "staff"),
        await Live.bearer(server, w.b_token, "b"),
    )
    for live, at in ((staff, head), (b, codec.event_token(kit.matter.id, head))):
        assert (await live.subscribe(kit.ref, at))["type"] == "subscribed"
    await staff.send(type="typing", matter=kit.ref, thread="tA")
    await staff.send(type="typing", matter=kit.ref, thread="tI", internal=True)
    assert (await staff.request(type="read", id="r", matter=kit.ref, thread="tA", upto=head))[
        "type"
    ] == "ack"
    await staff.send(type="typing", matter=kit.ref, thread="tAB")
    await b.until(is_("typing", thread="tAB"))
    tally.frames += 4
    wrong = [f for f in b.frames if f.get("thread") in ("tA", "tI")]
    if wrong:
        tally.failures.append(f"b got frames of threads it does not see: {wrong}")
    for live in (staff, b):
        await live.close()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT) as http:
        for who in who_all:
            upto: int | str = head if who.staff else codec.event_token(kit.matter.id, head)
            await _frames_of(server, who, upto, tally)
            await _requests_of(http, who, tally)
            tally.identities.add(who.name)
    secrets_of_m1 = [kit.matter.title, w.a.display_name, w.b.display_name, "tB"] + [
        codec.event_token(kit.matter.id, s) for s in range(1, head)
    ]
    for who in who_all:
        leaked = [s for s in secrets_of_m1 if any(s in text for text in who.answers)]
        if who.member:
            leaked = [s for s in leaked if s not in (w.b.display_name, "tB")]
        if leaked:
            tally.failures.append(f"{who.name}: LEAK {leaked}")
    n_routes = len(ROUTES) + len(MATTER_ROUTES)
    print(
        f"\nthreads access matrix: {tally.frames} frames ({len(FRAMES)} frame types) and "
        f"{tally.requests} HTTP requests ({n_routes} routes) x {len(tally.identities)} "
        f"identities, each secret target compared with a missing one"
    )
    assert tally.failures == [], "\n".join(tally.failures)
