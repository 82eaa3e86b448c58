"""Email and SMS delivery through real local servers: an aiosmtpd SMTP server
and an HTTP SMS gateway on loopback; the outbox rows end sent or failed."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from rtportal.app import create_app
from rtportal.db import Database
from rtportal.db.models import OutboxMessage, utcnow
from rtportal.errors import InvalidConfig
from rtportal.notify.notifier import DeliveringNotifier, notifier_for
from rtportal.notify.outbox import Channel, queue
from rtportal.notify.sms import SIGNATURE_HEADER, WebhookSms, sign
from rtportal.notify.smtp import SmtpTransport, parse_smtp_url
from rtportal.notify.transport import Transport
from rtportal.settings import Settings
from tests.conftest import FirmKit, MakeFirm
from tests.support.mailsink import http_sink, loopback_tls, mail_sink
from tests.support.procs import free_port


async def _queue(
    kit: FirmKit,
    notifier: DeliveringNotifier,
    channel: Channel,
    recipient: str,
    *,
    subject: str = "Welcome",
    body: str = "Hello there",
) -> int:
    async with kit.db.write() as session:
        row = await queue(
            session,
            notifier,
            firm_id=kit.firm_id,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
        )
        return row.id


async def _row(db: Database, message_id: int) -> OutboxMessage:
    async with db.read() as session:
        row = await session.get(OutboxMessage, message_id)
    assert row is not None
    return row


async def _deliver(notifier: DeliveringNotifier, *ids: int) -> None:
    await notifier.deliver(list(ids))
    await notifier.idle()


async def _send_one(
    kit: FirmKit,
    db: Database,
    transport: Transport,
    *,
    recipient: str = "cleo@client.test",
    subject: str = "Over TLS",
    body: str = "Hello there",
) -> OutboxMessage:
    """Queue one message for ``transport``'s channel, deliver it, return its row."""
    channel: Channel = "sms" if transport.name == "sms_http" else "email"
    notifier = DeliveringNotifier(db, {channel: transport})
    await notifier.start()
    try:
        mid = await _queue(kit, notifier, channel, recipient, subject=subject, body=body)
        await _deliver(notifier, mid)
    finally:
        await notifier.close()
    return await _row(db, mid)


async def test_email_arrives_through_smtp(make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()
    with mail_sink() as (sink, port):
        notifier = DeliveringNotifier(
            db, {"email": SmtpTransport(f"smtp://127.0.0.1:{port}", "portal@firm.test")}
        )
        await notifier.start()
        try:
            assert notifier.transport_for("email") == "smtp"
            assert notifier.transport_for("sms") == "outbox"
            mid = await _queue(
                kit,
                notifier,
                "email",
                "cleo@client.test",
                subject="Welcome to Test Firm (Our Ref: AB12)",
                body="Dear Cleo,\nyour link: https://portal.test/#invite=abc\n",
            )
            assert (await _row(db, mid)).status == "queued"
            await _deliver(notifier, mid)
        finally:
            await notifier.close()
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail["Subject"] == "Welcome to Test Firm (Our Ref: AB12)"
    assert mail["To"] == "cleo@client.test"
    assert mail["From"] == "portal@firm.test"
    content = mail.get_content()
    assert "https://portal.test/#invite=abc" in content
    row = await _row(db, mid)
    assert (row.status, row.error, row.attempts) == ("sent", None, 1)
    assert row.sent_at is not None
    assert row.body is None  # a delivered message keeps no login link


async def test_refused_recipient_and_unreachable_server_fail_with_a_reason(
    make_firm: MakeFirm, db: Database
) -> None:
    kit = await make_firm()
    with mail_sink(refused=frozenset({"nobody@client.test"})) as (sink, port):
        # No AUTH on the sink: the login fails, and the reason never shows the password.
        login = SmtpTransport(f"smtp://user:hunter2@127.0.0.1:{port}", "p@firm.test")
        row = await _send_one(kit, db, login)
        assert row.status == "failed" and row.error, row.error
        assert "hunter2" not in row.error

        plain = SmtpTransport(f"smtp://127.0.0.1:{port}", "p@firm.test")
        row = await _send_one(kit, db, plain, recipient="nobody@client.test")
        assert sink.messages == []
    assert row.status == "failed"
    assert row.error is not None and "recipient refused" in row.error and "550" in row.error
    assert (row.attempts, row.sent_at, row.body) == (1, None, None)

    dead = free_port()  # nothing listens there
    unreachable = SmtpTransport(f"smtp://127.0.0.1:{dead}", "p@firm.test", timeout=5)
    row = await _send_one(kit, db, unreachable)
    assert row.status == "failed"
    assert row.error == f"cannot connect to 127.0.0.1:{dead}"


async def test_sms_webhook_receives_signed_json(make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()
    secret = b"gateway-shared-secret"
    async with http_sink() as gateway:
        sms = WebhookSms(f"http://127.0.0.1:{gateway.port}/send?key=k1", secret)
        row = await _send_one(kit, db, sms, recipient="+61400000001", body="Your code: 123456")
    assert len(gateway.requests) == 1
    path, headers, body = gateway.requests[0]
    assert path == "/send?key=k1"
    assert json.loads(body) == {"to": "+61400000001", "body": "Your code: 123456"}
    assert headers["content-type"] == "application/json"
    assert headers[SIGNATURE_HEADER.lower()] == sign(secret, body)
    assert (row.status, row.attempts, row.body) == ("sent", 1, None)


async def test_sms_gateway_refusal_is_a_failed_row(make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()
    async with http_sink(status=502) as gateway:
        sms = WebhookSms(f"http://127.0.0.1:{gateway.port}/send?key=s3cr3t", None)
        row = await _send_one(kit, db, sms, recipient="+61400000002")
    assert SIGNATURE_HEADER.lower() not in gateway.requests[0][1]  # no secret: no signature
    assert row.status == "failed"
    assert row.error == "sms gateway answered 502 X"


async def test_a_row_is_sent_once_and_stale_rows_are_swept(
    make_firm: MakeFirm, db: Database
) -> None:
    kit = await make_firm()
    async with http_sink() as gateway:
        notifier = DeliveringNotifier(
            db, {"sms": WebhookSms(f"http://127.0.0.1:{gateway.port}/", None)}
        )
        # Not started yet: a row queued by a worker that died before delivering.
        orphan = await _queue(kit, notifier, "sms", "+61400000003", body="orphan")
        async with db.write() as session:
            row = await session.get(OutboxMessage, orphan)
            assert row is not None
            row.created_at = utcnow() - timedelta(minutes=10)
        fresh = await _queue(kit, notifier, "sms", "+61400000004", body="fresh")
        await notifier.start()  # its first sweep finds the stale row, not the fresh one
        try:
            await notifier.idle()
            assert [json.loads(b)["body"] for _, _, b in gateway.requests] == ["orphan"]
            assert (await _row(db, fresh)).status == "queued"
            # The same id delivered twice (two workers, a retry): sent once.
            await _deliver(notifier, fresh, fresh, orphan)
        finally:
            await notifier.close()
    assert [json.loads(b)["body"] for _, _, b in gateway.requests] == ["orphan", "fresh"]
    assert (await _row(db, fresh)).attempts == 1
    assert (await _row(db, orphan)).attempts == 1


async def test_app_wires_providers_from_settings(settings: Settings) -> None:
    assert notifier_for(settings, Database(settings.database_url)).transport_for("email") == (
        "outbox"
    )
    with mail_sink() as (_, port):
        configured = dataclasses.replace(
            settings, smtp_url=f"smtp://127.0.0.1:{port}", sms_url="http://127.0.0.1:9/sms"
        )
        app = create_app(configured)
        async with app.router.lifespan_context(app):
            notifier = app.state.runtime.notifier
            assert isinstance(notifier, DeliveringNotifier)
            assert notifier.transport_for("email") == "smtp"
            assert notifier.transport_for("sms") == "sms_http"


async def test_outbox_lists_held_messages_for_org_admins(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kit = await make_firm()
    other = await make_firm()
    held = notifier_for(kit.settings, kit.db)
    ids = []
    for n in range(3):
        async with kit.db.write() as session:
            row = await queue(
                session,
                held,
                firm_id=kit.firm_id,
                channel="email" if n % 2 == 0 else "sms",
                recipient=f"client{n}@client.test",
                subject=f"Subject {n}",
                body=f"Body {n}",
            )
            ids.append(row.id)
    async with kit.db.write() as session:
        await queue(
            session,
            held,
            firm_id=other.firm_id,
            channel="email",
            recipient="x@other.test",
            subject="other firm",
            body="secret of another firm",
        )

    r = await http.get("/api/v1/outbox?limit=2", headers=kit.auth("admin"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [m["id"] for m in page["messages"]] == [ids[2], ids[1]]
    newest = page["messages"][0]
    assert newest["status"] == "held" and newest["transport"] == "outbox"
    assert newest["body"] == "Body 2" and newest["subject"] == "Subject 2"
    assert newest["sent_at"] is None and newest["error"] is None
    r = await http.get(f"/api/v1/outbox?limit=2&before={page['next']}", headers=kit.auth("admin"))
    assert [m["id"] for m in r.json()["messages"]] == [ids[0]]
    assert r.json()["next"] is None

    for who in ("staff", "contact", "bot"):
        r = await http.get("/api/v1/outbox", headers=kit.auth(who))
        expected = (403, "forbidden") if who == "staff" else (404, "not_found")
        assert (r.status_code, r.json()["error"]["code"]) == expected, (who, r.text)
    r = await http.get("/api/v1/outbox")
    assert r.status_code == 401
    for bad in ("limit=0", "limit=201", "limit=x", "before=-1", "before=1e3", "limit=²"):
        r = await http.get(f"/api/v1/outbox?{bad}", headers=kit.auth("admin"))
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "bad_request"


async def test_smtps_and_starttls_with_login(
    make_firm: MakeFirm, db: Database, tmp_path: Path
) -> None:
    kit = await make_firm()
    server_tls, client_tls = loopback_tls(tmp_path)
    with mail_sink(ssl_context=server_tls) as (sink, port):
        row = await _send_one(
            kit,
            db,
            SmtpTransport(f"smtps://127.0.0.1:{port}", "p@firm.test", tls_context=client_tls),
        )
        assert row.status == "sent", row.error
        assert [m["Subject"] for m in sink.messages] == ["Over TLS"]

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss:w0rd")

    options: dict[str, Any] = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": authenticator,
        "auth_required": True,
    }
    with mail_sink(**options) as (sink, port):
        url = f"smtp://portal:p%40ss%3Aw0rd@127.0.0.1:{port}?starttls=1"
        row = await _send_one(kit, db, SmtpTransport(url, "p@firm.test", tls_context=client_tls))
        assert row.status == "sent", row.error
        assert len(sink.messages) == 1
        # Without STARTTLS the server offers no login: a failed row that says so.
        row = await _send_one(
            kit, db, SmtpTransport(f"smtp://portal:hunter2@127.0.0.1:{port}", "p@firm.test")
        )
        assert row.status == "failed"
        assert row.error is not None and "AUTH extension is not supported" in row.error
    assert logins == [(b"portal", b"p@ss:w0rd")]


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtp://mail.example:99999",
        "smtps://mail.example?starttls=1",
        "smtp://mail.example?starttls=maybe",
    ],
)
def test_bad_smtp_urls_are_refused_at_start(url: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        parse_smtp_url(url.replace("mail", "u:hunter2@mail"))
    assert "hunter2" not in str(caught.value)


def test_smtp_url_defaults() -> None:
    plain = parse_smtp_url("smtp://mail.example")
    assert (plain.port, plain.implicit_tls, plain.starttls, plain.username) == (
        25,
        False,
        False,
        None,
    )
    tls = parse_smtp_url("smtps://me%40x:pw@mail.example")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password) == (465, True, "me@x", "pw")
    assert parse_smtp_url("smtp://mail.example:587?starttls=1").starttls


def test_bad_sms_url_is_refused() -> None:
    with pytest.raises(InvalidConfig):
        WebhookSms("ftp://gateway.example/send", None)


async def test_overflow_leaves_rows_queued_for_the_sweep(make_firm: MakeFirm, db: Database) -> None:
    kit = await make_firm()
    async with http_sink() as gateway:
        sms = WebhookSms(f"http://127.0.0.1:{gateway.port}/", None)
        notifier = DeliveringNotifier(db, {"sms": sms}, queue_size=2)
        await notifier.start()
        try:
            ids = [await _queue(kit, notifier, "sms", f"+6140000001{n}") for n in range(3)]
            await _deliver(notifier, *ids)
            assert notifier.overflowed == 1
            statuses = [(await _row(db, i)).status for i in ids]
            assert statuses == ["sent", "sent", "queued"]
            assert await notifier.sweep(older_than=0) == 1
            await notifier.idle()
        finally:
            await notifier.close()
    assert [(await _row(db, i)).status for i in ids] == ["sent", "sent", "sent"]
    assert len(gateway.requests) == 3
