"""``notifier_for``: the worker's ``Notifier``, one transport per channel.

Email goes through ``SmtpTransport`` when ``RTPORTAL_SMTP_URL`` is set,
SMS through ``WebhookSms`` when ``RTPORTAL_SMS_URL`` is set; a channel
without a provider has the ``outbox`` transport (its rows are ``held``).

Delivery runs in the background, never in the request: ``deliver(ids)``
(called after the commit) puts the ids on a bounded queue and returns at
once; one task per worker takes them and sends up to ``concurrency`` at a
time. Overflow policy: **leave queued** — ids that do not fit are not
dropped from the database, they stay ``queued`` and the sweep sends them.
The sweep (at start, then every ``sweep_every`` seconds) picks up rows
still ``queued`` after ``stale_after`` seconds: those of a worker that died
mid-delivery, or that overflowed. Each send first claims its row: a
compare-and-set of ``attempts`` from the value its sender saw (0 for a
fresh row, the stale value for a swept one), so a row being sent is not
sent again by a second ``deliver`` or another worker's sweep. A row
ends ``sent`` (``sent_at``) or ``failed`` (the reason in ``error``);
either way its body is cleared (only held rows keep theirs). ``close``
stops taking ids, lets sends in flight finish for up to
``drain_timeout`` seconds, and leaves the rest ``queued`` for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update

from rtportal import logs
from rtportal.db import Database
from rtportal.db.models import OutboxMessage, utcnow
from rtportal.errors import RtPortalError
from rtportal.notify.held import HeldNotifier
from rtportal.notify.outbox import Channel
from rtportal.notify.sms import WebhookSms
from rtportal.notify.smtp import SmtpTransport
from rtportal.notify.transport import DeliveryFailed, Outgoing, Transport, reason
from rtportal.settings import Settings

__all__ = ["DeliveringNotifier", "notifier_for"]

log = logging.getLogger("rtportal.notify")

QUEUE_SIZE = 10_000  # ids waiting in one worker; past it they wait for the sweep
SWEEP_BATCH = 100


class DeliveringNotifier:
    """Background delivery of queued outbox rows through per-channel transports."""

    def __init__(
        self,
        db: Database,
        transports: dict[Channel, Transport],
        *,
        concurrency: int = 8,
        queue_size: int = QUEUE_SIZE,
        stale_after: float = 120.0,
        sweep_every: float = 60.0,
        drain_timeout: float = 5.0,
    ) -> None:
        self._db = db
        self._transports = transports
        # (message id, the attempts count its claim expects)
        self._queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue(maxsize=queue_size)
        self._slots = asyncio.Semaphore(concurrency)
        self._stale_after = stale_after
        self._sweep_every = sweep_every
        self._drain_timeout = drain_timeout
        self._inflight: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.overflowed = 0  # ids left to the sweep because the queue was full

    def transport_for(self, channel: Channel) -> str:
        transport = self._transports.get(channel)
        return transport.name if transport is not None else "outbox"

    async def start(self) -> None:
        """Start the delivery task and the sweep (its first pass runs now)."""
        await self._sweep_once()
        self._tasks = [
            asyncio.create_task(self._run(), name="notify-deliver"),
            asyncio.create_task(self._sweeper(), name="notify-sweep"),
        ]

    async def deliver(self, message_ids: Sequence[int]) -> None:
        self._enqueue([(message_id, 0) for message_id in message_ids])

    def _enqueue(self, items: Sequence[tuple[int, int]]) -> None:
        for message_id, attempts in items:
            if self._closed:
                return  # the rows stay queued: the next start's sweep sends them
            try:
                self._queue.put_nowait((message_id, attempts))
            except asyncio.QueueFull:
                self.overflowed += 1
                logs.event(log, "notify_overflow", logging.WARNING, message_id=message_id)

    async def sweep(self, *, older_than: float | None = None) -> int:
        """Queue rows still ``queued`` after ``older_than`` s (default ``stale_after``)."""
        age = self._stale_after if older_than is None else older_than
        cutoff = utcnow() - timedelta(seconds=age)
        channels = list(self._transports)
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage.id, OutboxMessage.attempts)
                    .where(
                        OutboxMessage.status == "queued",
                        OutboxMessage.channel.in_(channels),
                        OutboxMessage.created_at <= cutoff,
                    )
                    .order_by(OutboxMessage.id)
                    .limit(SWEEP_BATCH)
                )
            ).all()
        self._enqueue([(row[0], row[1]) for row in rows])
        return len(rows)

    async def idle(self) -> None:
        """Wait until every queued id was sent or failed (tests, shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=self._drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for transport in self._transports.values():
            await transport.close()

    async def _run(self) -> None:
        while True:
            message_id, attempts = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.create_task(self._one(message_id, attempts))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _sweep_once(self) -> None:
        try:
            await self.sweep()
        except RtPortalError as exc:  # the database is down: try again next round
            logs.event(log, "notify_sweep_failed", logging.WARNING, error=exc.code)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            await self._sweep_once()

    async def _one(self, message_id: int, attempts: int) -> None:
        try:
            await self._send(message_id, attempts)
        except Exception:  # never raises: a bug here must not stop the delivery task
            log.exception("delivering outbox message %s failed", message_id)
        finally:
            self._slots.release()
            self._queue.task_done()

    async def _claim(self, message_id: int, attempts: int) -> tuple[Transport, Outgoing] | None:
        """Count the attempt on a ``queued`` row whose ``attempts`` is still
        ``attempts``; None if it is not ours to send."""
        async with self._db.write() as session:
            row = await session.get(OutboxMessage, message_id)
            if row is None or row.status != "queued" or row.attempts != attempts:
                return None
            if row.body is None:
                return None
            transport = self._transports.get(row.channel)  # type: ignore[call-overload]
            if transport is None or transport.name != row.transport:
                return None
            claimed = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "queued",
                    OutboxMessage.attempts == attempts,
                )
                .values(attempts=attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return transport, Outgoing(row.id, row.recipient, row.subject, row.body)

    async def _send(self, message_id: int, attempts: int) -> None:
        claim = await self._claim(message_id, attempts)
        if claim is None:
            return
        transport, message = claim
        error: str | None = None
        try:
            await transport.send(message)
        except DeliveryFailed as exc:
            error = str(exc) or "delivery failed"
        except Exception as exc:  # a transport bug still ends as a failed row
            error = reason(f"internal error: {type(exc).__name__}")
            log.exception("transport %s failed on message %s", transport.name, message_id)
        async with self._db.write() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(
                    status="failed" if error else "sent",
                    error=error,
                    sent_at=None if error else utcnow(),
                    body=None,
                )
                .execution_options(synchronize_session=False)
            )
        logs.event(
            log,
            "notify_failed" if error else "notify_sent",
            logging.WARNING if error else logging.INFO,
            message_id=message_id,
            transport=transport.name,
        )


def notifier_for(settings: Settings, db: Database) -> DeliveringNotifier | HeldNotifier:
    """The worker's notifier (a ``Notifier``; ``start()`` it, ``close()`` it):
    providers where configured, else ``HeldNotifier``."""
    transports: dict[Channel, Transport] = {}
    if settings.smtp_url:
        transports["email"] = SmtpTransport(settings.smtp_url, settings.mail_from)
    if settings.sms_url:
        transports["sms"] = WebhookSms(settings.sms_url, settings.sms_secret)
    if not transports:
        return HeldNotifier()
    return DeliveringNotifier(db, transports)
