"""The HTTP API through the real app (lifespan, database, broker, hub)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from rtportal.access import membership
from rtportal.app import create_app
from rtportal.db import Database
from rtportal.events import log as stream
from rtportal.events.event import StoredEvent
from rtportal.principal import Principal
from rtportal.settings import Settings
from tests.conftest import TEST_ORIGIN, FirmKit, MakeFirm
from tests.support.server import RunningServer

JSON = {"Content-Type": "application/json"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])


async def _post(
    http: httpx.AsyncClient, kit: FirmKit, who: str, body: dict[str, Any], ref: str | None = None
) -> httpx.Response:
    return await http.post(
        f"/api/v1/matters/{ref or kit.ref}/events", json=body, headers=kit.auth(who)
    )


async def _post_note(http: httpx.AsyncClient, kit: FirmKit, i: int) -> None:
    """Staff's ``i``-th note in the internal thread ``n`` (an event no client sees)."""
    note = {"kind": "note", "audience": "staff", "client_id": f"n{i}", "payload": {"thread": "n"}}
    await _post(http, kit, "staff", note)


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_me_needs_a_valid_token(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    response = await http.get("/api/v1/me")
    _error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    _error(
        await http.get("/api/v1/me", headers={"Authorization": "Bearer nope"}),
        401,
        "unauthenticated",
    )
    _error(await http.get(f"/api/v1/me?token={kit.tokens['staff']}"), 401, "unauthenticated")
    for who, principal, viewer in (
        ("staff", kit.staff, "staff"),
        ("bot", kit.bot, "staff"),
        ("contact", kit.contact, "portal"),
    ):
        body = (await http.get("/api/v1/me", headers=kit.auth(who))).json()
        expected: dict[str, object] = {
            "kind": principal.kind,
            "id": principal.id,
            "firm_id": kit.firm_id,
            "name": principal.display_name,
            "viewer": viewer,
        }
        if principal.role is not None:  # staff and bots carry their role
            expected["role"] = principal.role
        assert body["principal"] == expected
        assert set(body) == {"principal", "csrf_token", "firm"}
        assert body["firm"]["name"] == kit.name


async def test_matters_are_scoped(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    other = await make_firm()
    private = await kit.add_matter(title="Staff only", members=())
    to = [kit.contact.id]  # a staff member's new client thread names its recipients
    await _post(
        http,
        kit,
        "staff",
        {"kind": "message", "client_id": "m1", "payload": {"thread": "t", "to": to}},
    )
    staff = (await http.get("/api/v1/matters", headers=kit.auth("staff"))).json()["matters"]
    assert sorted(staff, key=lambda m: m["ref"]) == sorted(
        [
            # Staff also see whether each matter's portal is on.
            {"ref": kit.ref, "title": "Visa application", "head": 1, "portal": "off"},
            {"ref": private.reference, "title": "Staff only", "head": 0, "portal": "off"},
        ],
        key=lambda m: str(m["ref"]),
    )
    contact = (await http.get("/api/v1/matters", headers=kit.auth("contact"))).json()
    # No head for a client: it would be a seq (docs/protocol.md, cursor tokens).
    assert contact == {"matters": [{"ref": kit.ref, "title": "Visa application"}]}
    theirs = (await http.get("/api/v1/matters", headers=other.auth("staff"))).json()["matters"]
    assert [m["ref"] for m in theirs] == [other.ref]


async def test_post_is_idempotent_and_published_after_commit(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    got: list[StoredEvent] = []
    arrived = asyncio.Event()

    class Listener:
        principal: Principal = kit.staff

        def deliver(self, event: StoredEvent) -> None:
            got.append(event)
            arrived.set()

        def close(self, code: int) -> None:
            pass

    listener = Listener()
    assert await app.state.hub.join(kit.matter.id, listener) == 0
    try:
        blob = bytes(range(40))
        body = {
            "client_id": "c-1",
            "kind": "message",
            "audience": "portal",
            "payload": {"thread": "t1"},
            "blob": base64.urlsafe_b64encode(blob).decode().rstrip("="),
        }
        codec = app.state.runtime.frames.cursors
        first = await _post(http, kit, "contact", body)
        assert first.status_code == 201, first.text
        # A contact's answer names the event by its token, never by seq.
        assert "seq" not in first.json() and "seq" not in first.json()["event"]
        assert first.json()["cursor"] == first.json()["event"]["cursor"]
        assert codec.seq_of(first.json()["cursor"], kit.matter.id) == 1
        assert first.json()["duplicate"] is False
        assert first.json()["event"]["blob"] == base64.urlsafe_b64encode(blob).decode().rstrip("=")
        await asyncio.wait_for(arrived.wait(), 5)
        assert [(e.seq, e.client_id, e.blob) for e in got] == [(1, "c-1", blob)]
        again = await _post(http, kit, "contact", body)
        assert again.status_code == 200
        assert again.json()["cursor"] == first.json()["cursor"]
        assert again.json()["duplicate"] is True
        changed = await _post(http, kit, "contact", {**body, "payload": {"thread": "t2"}})
        _error(changed, 409, "conflict")
        second = await _post(http, kit, "contact", {**body, "client_id": "c-2"})
        assert codec.seq_of(second.json()["cursor"], kit.matter.id) == 2
        deadline = asyncio.get_running_loop().time() + 5
        while len(got) < 2:  # the duplicate was not published again
            assert asyncio.get_running_loop().time() < deadline, got
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 5)
        assert [e.seq for e in got] == [1, 2]
    finally:
        await app.state.hub.leave(kit.matter.id, listener)


async def test_bad_event_bodies(http: httpx.AsyncClient, make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()
    url = f"/api/v1/matters/{kit.ref}/events"
    auth = kit.auth("staff")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"payload": {}}, 400, "bad_request"),  # kind missing
        ({"kind": 5}, 400, "bad_request"),
        ({"kind": "message", "payload": []}, 400, "bad_request"),
        ({"kind": "message", "audience": "all"}, 400, "bad_request"),
        ({"kind": "message", "client_id": 7}, 400, "bad_request"),
        ({"kind": "message", "client_id": "has space"}, 400, "bad_request"),
        ({"kind": "message", "blob": "***"}, 400, "bad_request"),
        ({"kind": "message", "extra": 1}, 400, "bad_request"),
        ({"kind": "message", "payload": {"x": "y" * 70_000}}, 413, "payload_too_large"),
        ({"kind": "message", "blob": "A" * 400_000}, 413, "payload_too_large"),
    ]
    for body, status, code in cases:
        _error(await http.post(url, json=body, headers=auth), status, code)
    _error(await http.post(url, content=b"{not json", headers={**auth, **JSON}), 400, "bad_request")
    _error(await http.post(url, content=b"[1]", headers={**auth, **JSON}), 400, "bad_request")
    _error(
        await http.post(
            url, content=b'{"kind":"message"}', headers={**auth, "Content-Type": "text/plain"}
        ),
        400,
        "bad_request",
    )
    _error(await http.post(url, content=b"", headers={**auth, **JSON}), 400, "bad_request")
    # JSON that Python parses but that is not storable or not servable JSON:
    # NaN/Infinity (no JSON encoder may write them back), nesting deeper than
    # the decoder's stack, a lone surrogate (not encodable as UTF-8).
    for raw in (
        b'{"kind":"message","payload":{"x":NaN}}',
        b'{"kind":"message","payload":{"x":-Infinity}}',
        b'{"kind":"message","payload":{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"kind":"message","payload":{"x":"\\ud800"}}',
    ):
        _error(await http.post(url, content=raw, headers={**auth, **JSON}), 400, "bad_request")
    huge = b'{"kind":"message","payload":{"x":"' + b"y" * 2_000_000 + b'"}}'
    _error(await http.post(url, content=huge, headers={**auth, **JSON}), 413, "payload_too_large")
    # A contact may not write staff-only data.
    _error(
        await _post(http, kit, "contact", {"kind": "note", "audience": "staff"}), 400, "bad_request"
    )
    _error(
        await _post(http, kit, "contact", {"kind": "message", "payload": {"staff_x": 1}}),
        400,
        "bad_request",
    )
    async with db.read() as session:
        assert await stream.head(session, kit.matter.id) == 0  # nothing half-written


async def test_history_pages_through_view_for(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    codec = app.state.runtime.frames.cursors
    for i in range(5):
        status = {"status": f"p{i}", "staff_detail": "x"}
        await _post(http, kit, "bot", {"kind": "bot", "payload": status})
        await _post_note(http, kit, i)
    url = f"/api/v1/matters/{kit.ref}/events"
    page = (await http.get(url, headers=kit.auth("staff"), params={"limit": 4})).json()
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4]
    assert page["next"] == 4 and page["head"] == 10 and page["more"] is True
    assert page["events"][0]["payload"] == {"status": "p0", "staff_detail": "x"}
    seen: list[dict[str, Any]] = []
    after: int | str = ""
    while True:
        response = await http.get(
            url, headers=kit.auth("contact"), params={"after": after, "limit": 3}
        )
        body = response.json()
        seen += body["events"]
        after = body["next"]
        if not body["more"]:
            break
    # A contact's events and cursors are tokens: read back with the server's key.
    seqs = [codec.seq_of(e["cursor"], kit.matter.id) for e in seen]
    assert seqs == [1, 3, 5, 7, 9] and all("seq" not in e for e in seen)
    assert all(
        e["audience"] == "portal" and e["payload"] == {"status": f"p{s // 2}"}
        for e, s in zip(seen, seqs, strict=True)
    )
    # the last page ends at the last event the contact sees: the note after it
    # (seq 10) neither extends the paging nor moves the cursor
    assert codec.seq_of(after, kit.matter.id) == 9
    tail = (await http.get(url, headers=kit.auth("contact"), params={"after": after})).json()
    assert tail["events"] == [] and tail["more"] is False
    assert codec.seq_of(tail["next"], kit.matter.id) == 9
    # A contact's seq cursor is refused (it would name a position by number).
    _error(
        await http.get(url, headers=kit.auth("contact"), params={"after": "10"}),
        400,
        "invalid_cursor",
    )
    for params, code in (
        ({"after": "-1"}, "invalid_cursor"),
        ({"after": "abc"}, "invalid_cursor"),
        ({"after": "01"}, "invalid_cursor"),
        ({"limit": "0"}, "bad_request"),
        ({"limit": "501"}, "bad_request"),
        ({"limit": "x"}, "bad_request"),
        ({"limit": "\u00b2"}, "bad_request"),  # str.isdigit() is true, int() refuses it
        ({"limit": "\u0661\u0660"}, "bad_request"),  # Arabic-Indic digits: ASCII only
        ({"limit": "9" * 5000}, "bad_request"),  # int() refuses > 4,300 digits
    ):
        _error(await http.get(url, headers=kit.auth("staff"), params=params), 400, code)


async def test_other_matters_are_404_never_data(
    http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    """A contact (and a bot) trying every other matter gets 404 with no data."""
    kit = await make_firm()
    other = await make_firm()
    private = await kit.add_matter(title="Not yours", members=())
    removed = await kit.add_matter(title="Was yours")
    await kit.remove_member(kit.contact, removed)
    await kit.remove_member(kit.bot, removed)
    for k, who in ((kit, "staff"), (other, "staff")):
        body = {
            "kind": "message",
            "client_id": "m1",
            "payload": {"thread": "s3cr3t", "to": [k.contact.id]},
        }
        r = await _post(http, k, who, body)
        assert r.status_code == 201, r.text
    targets = [other.ref, private.reference, removed.reference, "ZZZZ9999", "bad-ref"]
    bodies = set()
    for who in ("contact", "bot"):
        for ref in targets:
            for response in (
                await http.get(f"/api/v1/matters/{ref}/events", headers=kit.auth(who)),
                await _post(http, kit, who, {"kind": "message", "client_id": "x"}, ref=ref),
            ):
                _error(response, 404, "not_found")
                assert "s3cr3t" not in response.text
                bodies.add(response.text)
    assert len(bodies) == 1  # no oracle: every miss looks the same
    for ref in (other.ref,):
        _error(
            await http.get(f"/api/v1/matters/{ref}/events", headers=kit.auth("staff")),
            404,
            "not_found",
        )
    async with other.db.read() as session:
        assert await stream.head(session, other.matter.id) == 1  # nothing written there


async def test_cookie_session_lifecycle(http: httpx.AsyncClient, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    _error(
        await http.post("/api/v1/session", headers={"Authorization": "Bearer bad"}),
        401,
        "unauthenticated",
    )
    response = await http.post("/api/v1/session", headers=kit.auth("contact"))
    assert response.status_code == 201
    assert response.json()["principal"]["kind"] == "contact"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rtp_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # plain http in tests
    session_token = response.cookies["rtp_session"]
    assert session_token != kit.tokens["contact"]
    csrf = response.json()["csrf_token"]
    http.cookies.set("rtp_session", session_token)
    try:
        me = (await http.get("/api/v1/me")).json()
        assert me["principal"]["id"] == kit.contact.id
        assert me["csrf_token"] == csrf
        # Cookie-authenticated writes from a foreign page are refused.
        evil = await http.post(
            f"/api/v1/matters/{kit.ref}/events",
            json={"kind": "message"},
            headers={"Origin": "https://evil.example"},
        )
        _error(evil, 403, "forbidden_origin")
        ok = await http.post(
            f"/api/v1/matters/{kit.ref}/events",
            json={
                "kind": "message",
                "client_id": "m1",
                "payload": {"thread": "c", "to": [kit.contact.id]},
            },
            headers={"Origin": TEST_ORIGIN, "X-CSRF-Token": csrf},
        )
        assert ok.status_code == 201
        out = await http.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200 and "rtp_session=" in out.headers["set-cookie"]
        http.cookies.set("rtp_session", session_token)
        _error(await http.get("/api/v1/me"), 401, "unauthenticated")
    finally:
        http.cookies.clear()
    # The login token itself still works; a token in the body is accepted too.
    body_login = await http.post("/api/v1/session", json={"token": kit.tokens["staff"]})
    assert body_login.status_code == 201
    assert body_login.json()["principal"]["id"] == kit.staff.id


async def test_unknown_routes_and_methods_are_json(http: httpx.AsyncClient) -> None:
    _error(await http.get("/api/v1/nothing"), 404, "not_found")
    _error(await http.put("/api/v1/matters"), 405, "bad_request")


async def test_backend_down_is_unavailable(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm, caplog: pytest.LogCaptureFixture
) -> None:
    kit = await make_firm()
    real = app.state.db
    dead = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    app.state.db = dead
    try:
        _error(await http.get("/healthz"), 503, "unavailable")
        with caplog.at_level(logging.WARNING, logger="rtportal.http.routes"):
            _error(await http.get("/api/v1/me", headers=kit.auth("staff")), 503, "unavailable")
        # The caller learns only "unavailable"; the operator's log names the
        # driver's own error (here: the refused connection).
        logged = [r for r in caplog.records if r.getMessage() == "backend_unavailable"]
        assert len(logged) == 1, caplog.text
        cause = getattr(logged[0], "rtportal_fields")["cause"]  # noqa: B009
        assert "asyncpg" in cause or "OSError" in cause or "Connection" in cause, cause
        assert "backend_unavailable" in caplog.text and "cause=" in caplog.text
    finally:
        app.state.db = real
        await dead.close()
    assert (await http.get("/api/v1/me", headers=kit.auth("staff"))).status_code == 200


async def test_unexpected_errors_do_not_leak(
    http: httpx.AsyncClient, make_firm: MakeFirm, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = await make_firm()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(membership, "list_matters", broken)  # fault injection: a bug
    response = await http.get("/api/v1/matters", headers=kit.auth("staff"))
    error = _error(response, 500, "internal")
    assert "secret" not in response.text and error["message"] == "internal error"


async def test_through_real_uvicorn(uvicorn_server: RunningServer, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    async with httpx.AsyncClient(base_url=uvicorn_server.base_url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post(
            f"/api/v1/matters/{kit.ref}/events",
            json={
                "kind": "message",
                "client_id": "u1",
                "payload": {"thread": "u", "to": [kit.contact.id]},
            },
            headers=kit.auth("bot"),
        )
        assert response.status_code == 201 and response.json()["seq"] == 1

        async def chunks() -> Any:  # no Content-Length: the cap applies while streaming
            yield b'{"kind":"message","payload":{"x":"'
            for _ in range(64):
                yield b"y" * 65_536
            yield b'"}}'

        big = await client.post(
            f"/api/v1/matters/{kit.ref}/events",
            content=chunks(),
            headers={**kit.auth("bot"), **JSON},
        )
        _error(big, 413, "payload_too_large")
        assert (await client.get("/healthz")).status_code == 200


async def test_cookie_is_secure_behind_https(settings: Settings, make_firm: MakeFirm) -> None:
    kit = await make_firm()
    https = dataclasses.replace(settings, public_url="https://portal.example")
    app = create_app(https)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post("/api/v1/session", headers=kit.auth("staff"))
            assert response.status_code == 201
            assert "secure" in response.headers["set-cookie"].lower()
            _error(await client.delete("/api/v1/session"), 401, "unauthenticated")


async def test_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert (await http.get("/api/v1/nothing")).headers["x-frame-options"] == "DENY"


async def test_history_backward_from_the_latest_page(
    app: Starlette, http: httpx.AsyncClient, make_firm: MakeFirm
) -> None:
    kit = await make_firm()
    codec = app.state.runtime.frames.cursors
    for i in range(4):
        payload = {"thread": "t", "to": [kit.contact.id], "sent_at": i}
        await _post(
            http, kit, "staff", {"kind": "message", "client_id": f"m{i}", "payload": payload}
        )
        await _post_note(http, kit, i)
    url = f"/api/v1/matters/{kit.ref}/events"
    latest = (
        await http.get(url, headers=kit.auth("staff"), params={"before": "9", "limit": 3})
    ).json()
    assert [e["seq"] for e in latest["events"]] == [6, 7, 8]
    assert (latest["prev"], latest["next"], latest["more"]) == (6, 8, True)
    assert (
        await http.get(url, headers=kit.auth("staff"), params={"before": "end", "limit": 3})
    ).json() == latest  # before=end: the latest page
    pages: list[list[int]] = []
    before: int | str = "end"
    while True:
        body = (
            await http.get(url, headers=kit.auth("contact"), params={"before": before, "limit": 3})
        ).json()
        pages.append([codec.seq_of(e["cursor"], kit.matter.id) for e in body["events"]])
        before = body["prev"]
        if not body["more"]:
            break
    # a client's pages hold what they see, filtered in the database: full pages, in seq
    # order, whose sizes say nothing of the staff notes between them
    assert pages == [[3, 5, 7], [1]]
    empty = (await http.get(url, headers=kit.auth("staff"), params={"before": "1"})).json()
    assert empty["events"] == [] and empty["more"] is False
    _error(
        await http.get(url, headers=kit.auth("staff"), params={"before": "x"}),
        400,
        "invalid_cursor",
    )
    _error(
        await http.get(url, headers=kit.auth("staff"), params={"before": "5", "after": "1"}),
        400,
        "bad_request",
    )
