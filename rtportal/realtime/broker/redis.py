"""Redis pub/sub broker (``redis://host:port/db[?prefix=name]``).

One subscriber connection per worker, owned by one reader task. Every
connection failure ends that connection for good: the reader drops it,
backs off, opens a new one, subscribes every wanted topic in one command and
then calls ``on_reset()`` (messages may have been lost while down). redis-py's
own silent reconnect is switched off (``retries=0`` on the subscriber client)
because a reconnect we do not see is a gap nobody fills.

Publishing goes through a bounded queue drained by one sender task, which
sends whatever is queued as one command: a small Lua script that PUBLISHes
every (channel, data) pair of its ARGV (one message alone is a plain
PUBLISH). One command and one reply per batch instead of N is what makes a
published message cheap in Python. ``publish`` therefore
never waits on Redis and never raises: the caller has already committed to
the database, which is the record. Overflow policy: **drop-newest** (the
message that does not fit is counted and logged; the hub of every worker
finds the gap from the next message or from its safety poll).

Pub/sub channels are global to a Redis server (the ``/db`` number does not
separate them), so deployments or test runs sharing one Redis set distinct
``?prefix=`` values; topics on the wire are ``<prefix><topic>``.

The subscriber reads replies from its connection itself (``_read_loop``)
instead of through ``PubSub.get_message``: that path costs a retry wrapper,
a health-check test and a dict per message, none of which we use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from rtportal.realtime.broker.base import (
    Backoff,
    OnMessage,
    OnReset,
    RateLimitedLog,
    dispatch_message,
    dispatch_reset,
)

__all__ = ["RedisBroker", "split_prefix"]

log = logging.getLogger("rtportal.realtime.broker.redis")

# Errors that mean "the backend is unreachable or the connection broke".
_BACKEND_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

_RESET_PING = b"rtp-resubscribed"
_KEEPALIVE_PING = b"rtp-keepalive"
_BATCH_MAX = 256
_SCRIPT_RETRY_AFTER = 60.0  # seconds of pipelined PUBLISHes after the script was refused
# Channels travel as ARGV, not KEYS: they are not keys (no slot, no ACL key
# pattern). Returns nothing: one nil reply per batch is all we need.
_PUBLISH_ALL = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end"
_CLOSE_WAIT = 1.0  # seconds close() waits for each step before moving on


async def _as_is(push: Any) -> Any:
    """RESP3 pub/sub push handler: the push itself, to ``_read_loop``.

    redis-py's default one logs every message at debug level (a logger
    lookup per message even when debug is off).
    """
    return push


def split_prefix(url: str) -> tuple[str, str]:
    """Remove our ``prefix`` query parameter from a Redis URL: (url, prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = "".join(v for k, v in query if k == "prefix")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisBroker:
    """A ``Broker`` over Redis pub/sub with reconnect, resubscribe and reset."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10_000,
        connect_timeout: float = 2.0,
        keepalive: float = 5.0,
        confirm_timeout: float = 2.0,
    ) -> None:
        self._url, self._prefix = split_prefix(url)
        self.private = False  # other workers subscribe through the same server
        self._pfx = self._prefix.encode()
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._confirm_timeout = confirm_timeout
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=queue_size)
        self._topics: set[str] = set()
        self._on_message: OnMessage | None = None
        self._on_reset: OnReset | None = None
        self._ps: PubSub | None = None
        self._cmd_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._waiters: dict[bytes, list[asyncio.Future[bool]]] = {}
        self._last_rx = 0.0
        self._sub_client: Redis | None = None
        self._pub_client: Redis | None = None
        self._publish_all: AsyncScript | None = None
        self._script_off_until = 0.0  # monotonic; see _send
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._pub_log = RateLimitedLog(log)
        self._sub_log = RateLimitedLog(log)
        self.dropped = 0
        """Messages published but never handed to Redis (queue full or backend down)."""
        self.resets = 0
        """How many times ``on_reset`` was called (reconnects)."""

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up (for health checks)."""
        return self._connected.is_set()

    # -- contract ---------------------------------------------------------

    def set_handler(self, on_message: OnMessage, on_reset: OnReset) -> None:
        self._on_message = on_message
        self._on_reset = on_reset

    async def start(self) -> None:
        if self._tasks or self._closed:
            return  # already started (or closed): one reader and one sender per broker
        common: dict[str, Any] = {
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": max(self._connect_timeout, 5.0),
            "socket_keepalive": True,
            "health_check_interval": 0,
        }
        # Subscriber: no hidden retries, every broken connection is seen.
        # RESP2 unless the URL sets ?protocol=: a message is then a plain
        # reply, not a RESP3 push that redis-py routes through its push
        # handlers (about 0.5 us more per received message).
        self._sub_client = Redis.from_url(
            self._url, retry=Retry(NoBackoff(), 0), protocol=2, **common
        )
        # Publisher: one immediate retry, so the first publish after a Redis
        # restart reconnects instead of failing on a stale pooled socket.
        self._pub_client = Redis.from_url(self._url, retry=Retry(NoBackoff(), 1), **common)
        # EVALSHA; on NOSCRIPT (a restarted or flushed Redis) redis-py loads
        # the script and sends the EVALSHA again.
        self._publish_all = self._pub_client.register_script(_PUBLISH_ALL)
        self._tasks = [
            asyncio.create_task(self._reader(), name=f"rtportal-redis-reader-{id(self):x}"),
            asyncio.create_task(self._sender(), name=f"rtportal-redis-sender-{id(self):x}"),
        ]
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout)
            # Open the publisher's pooled connection now, not on the first
            # publish after commit.
            await asyncio.wait_for(self._pub_client.ping(), self._connect_timeout)
        except (*_BACKEND_ERRORS, TimeoutError):
            log.warning("Redis %s unreachable at start; retrying in the background", self._url)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tasks and not self._queue.empty():
            # Best effort: flush what was published before close.
            try:
                await asyncio.wait_for(self._queue.join(), _CLOSE_WAIT)
            except TimeoutError:
                log.warning("closing with %d unpublished messages", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a task stuck inside a redis-py call that does not honour
            # cancellation promptly must not hang the worker's shutdown.
            _, stuck = await asyncio.wait(self._tasks, timeout=_CLOSE_WAIT)
            if stuck:
                log.warning("%d broker tasks did not stop in time", len(stuck))
        self._tasks = []
        for client in (self._sub_client, self._pub_client):
            if client is not None:
                try:
                    await asyncio.wait_for(client.aclose(), _CLOSE_WAIT)
                except (*_BACKEND_ERRORS, TimeoutError) as exc:
                    log.warning("closing a Redis client failed: %r", exc)
        self._topics.clear()

    async def publish(self, topic: str, data: bytes) -> None:
        if self._closed:
            return
        if self._queue.qsize() * 2 > self._queue.maxsize and self._tasks:
            # Above half full: yield once so the sender can drain a burst
            # published in one go (still never waits on Redis itself).
            await asyncio.sleep(0)
        try:
            self._queue.put_nowait((topic, data))
        except asyncio.QueueFull:
            # Named policy: drop-newest. Counted and logged; the database has
            # the event and every hub fills the gap from it.
            self.dropped += 1
            self._pub_log.warning(
                "publish queue full (%d): dropping newest message (drop-newest policy)",
                self._queue.maxsize,
            )

    async def subscribe(self, topic: str) -> None:
        chan = self._chan(topic)
        async with self._cmd_lock:
            if topic in self._topics or self._closed:
                return
            self._topics.add(topic)
            ps = self._ps
            if ps is None:
                return  # the reconnect subscribes it, then calls on_reset
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(chan, []).append(fut)
            try:
                await ps.subscribe(chan)
            except _BACKEND_ERRORS as exc:
                self._sub_log.warning("SUBSCRIBE %r failed: %r (reader reconnects)", topic, exc)
                self._drop_waiter(chan, fut)
                return
        # Wait (outside the lock) until Redis confirms, so a caller that reads
        # the database next cannot miss a message published in between.
        try:
            await asyncio.wait_for(fut, self._confirm_timeout)
        except TimeoutError:
            self._sub_log.warning("SUBSCRIBE %r not confirmed in time", topic)
        finally:
            self._drop_waiter(chan, fut)

    async def unsubscribe(self, topic: str) -> None:
        async with self._cmd_lock:
            if topic not in self._topics:
                return
            self._topics.discard(topic)
            ps = self._ps
            if ps is None:
                return
            try:
                await ps.unsubscribe(self._chan(topic))
            except _BACKEND_ERRORS as exc:
                self._sub_log.warning("UNSUBSCRIBE %r failed: %r", topic, exc)

    # -- reader -----------------------------------------------------------

    def _chan(self, topic: str) -> bytes:
        return self._pfx + topic.encode()

    def _drop_waiter(self, chan: bytes, fut: asyncio.Future[bool]) -> None:
        waiters = self._waiters.get(chan)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._waiters[chan]

    def _wake_waiters(self, chan: bytes | None, ok: bool) -> None:
        """Resolve subscribe waiters of chan (or of every channel when None)."""
        chans = list(self._waiters) if chan is None else [chan]
        for c in chans:
            for fut in self._waiters.pop(c, []):
                if not fut.done():
                    fut.set_result(ok)

    async def _reader(self) -> None:
        backoff = Backoff()
        first_attempt = True
        while not self._closed:
            assert self._sub_client is not None
            ps = self._sub_client.pubsub(push_handler_func=_as_is)
            try:
                # Connect outside the lock: a slow connect must not hold up
                # subscribe() callers (they only record the topic meanwhile).
                await ps.connect()  # type: ignore[no-untyped-call]
                async with self._cmd_lock:
                    wanted = [self._chan(t) for t in self._topics]
                    if wanted:
                        await ps.subscribe(*wanted)
                    if not first_attempt:
                        # The reply to this PING arrives after every SUBSCRIBE
                        # above took effect: only then is catching up safe.
                        await ps.ping(_RESET_PING)
                    self._ps = ps
                backoff.reset()
                first_attempt = False
                self._last_rx = time.monotonic()
                self._connected.set()
                await self._serve(ps)
            except _BACKEND_ERRORS as exc:
                self._sub_log.warning("Redis subscriber connection lost: %r; reconnecting", exc)
            finally:
                first_attempt = False
                self._connected.clear()
                self._ps = None
                self._wake_waiters(None, False)
                with contextlib.suppress(*_BACKEND_ERRORS):
                    await ps.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await asyncio.sleep(backoff.next_delay())  # reason: reconnect backoff

    async def _serve(self, ps: PubSub) -> None:
        """Read one connection until it fails or the keepalive gives up on it."""
        tag = f"{id(self):x}"
        reading = asyncio.create_task(self._read_loop(ps), name=f"rtportal-redis-read-{tag}")
        watching = asyncio.create_task(self._keep_alive(ps), name=f"rtportal-redis-ping-{tag}")
        try:
            done, _ = await asyncio.wait({reading, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelling a read mid-reply is safe: this connection is dropped.
            reading.cancel()
            watching.cancel()
            await asyncio.gather(reading, watching, return_exceptions=True)
        if reading in done:
            reading.result()  # re-raise the backend error
        raise ConnectionError(f"no reply from Redis for {3 * self._keepalive:.1f}s")

    async def _read_loop(self, ps: PubSub) -> None:
        # Replies straight from the connection. What PubSub.get_message adds
        # per message is unused here: its retry wrapper (retries=0) only ever
        # reconnected behind our back before raising, the health check is off
        # (health_check_interval=0) and its message dict is built to be
        # taken apart again. Connection.read_response with timeout=math.inf
        # is redis-py's documented "block without socket_timeout" read;
        # tests/test_broker_redis.py pins the reply shapes handled below.
        conn = ps.connection
        assert conn is not None  # connected by _reader before serving
        read = conn.read_response
        handle = self._handle
        while True:
            reply = await read(timeout=math.inf, disconnect_on_error=False, push_request=True)
            self._last_rx = time.monotonic()
            handle(ps, reply)

    def _handle(self, ps: PubSub, reply: Any) -> None:
        """One reply of the subscriber connection (RESP2 list or RESP3 push)."""
        if isinstance(reply, list):
            kind = reply[0]
            if kind == b"message":
                chan: bytes = reply[1]
                topic = chan[len(self._pfx) :].decode()
                # Drop messages still in flight for a topic we left.
                if topic in self._topics and self._on_message is not None:
                    dispatch_message(self._on_message, topic, reply[2])
            elif kind == b"subscribe":
                self._wake_waiters(reply[1], True)
            elif kind == b"unsubscribe":
                # PubSub's own bookkeeping, done by the get_message we skip:
                # forget a channel once Redis confirmed leaving it (unless it
                # was subscribed again meanwhile).
                chan = reply[1]
                if chan in ps.pending_unsubscribe_channels:
                    ps.pending_unsubscribe_channels.discard(chan)
                    ps.channels.pop(chan, None)
            elif kind == b"pong":  # RESP2, while subscribed: [b"pong", data]
                self._on_pong(reply[1])
        elif isinstance(reply, bytes):
            # PING's reply when not subscribed (RESP2) or always (RESP3).
            self._on_pong(reply)

    def _on_pong(self, data: bytes) -> None:
        if data == _RESET_PING:
            self.resets += 1
            log.info("Redis subscriber reconnected (%d topics): resetting", len(self._topics))
            if self._on_reset is not None:
                dispatch_reset(self._on_reset)

    async def _keep_alive(self, ps: PubSub) -> None:
        """Ping an idle connection; return when Redis stopped answering.

        A half-open TCP connection (network partition, frozen server) never
        errors on its own; without this the reader would wait forever.
        """
        while True:
            await asyncio.sleep(self._keepalive / 2)  # reason: periodic keepalive timer
            idle = time.monotonic() - self._last_rx
            if idle > 3 * self._keepalive:
                self._sub_log.warning("Redis silent for %.1fs: dropping the connection", idle)
                return
            if idle > self._keepalive:
                try:
                    await asyncio.wait_for(ps.ping(_KEEPALIVE_PING), self._keepalive)
                except (*_BACKEND_ERRORS, TimeoutError):
                    return  # a ping that cannot even be sent: drop the connection

    # -- sender -----------------------------------------------------------

    async def _sender(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < _BATCH_MAX and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._send(batch)
            except _BACKEND_ERRORS as exc:
                self.dropped += len(batch)
                self._pub_log.warning("PUBLISH of %d messages failed: %r", len(batch), exc)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        client = self._pub_client
        assert client is not None
        pfx = self._pfx
        if len(batch) == 1:
            topic, data = batch[0]
            await client.publish(pfx + topic.encode(), data)
            return
        script = self._publish_all
        if script is not None and time.monotonic() >= self._script_off_until:
            args: list[bytes] = []
            for topic, data in batch:
                args += (pfx + topic.encode(), data)
            try:
                await script(args=args)
                return
            except ResponseError as exc:
                if isinstance(exc, NoScriptError):
                    raise  # the script cache emptied between load and call: counted as dropped
                # Scripting refused (an ACL without EVALSHA, a proxy or a
                # managed Redis without scripting, a BUSY server): this batch
                # again as pipelined PUBLISHes, and so for a while before the
                # script is tried again. A script that failed midway may have
                # published part of the batch; the hub drops duplicates.
                self._script_off_until = time.monotonic() + _SCRIPT_RETRY_AFTER
                self._pub_log.warning(
                    "Lua PUBLISH script refused (%r): pipelining PUBLISHes for %.0fs",
                    exc,
                    _SCRIPT_RETRY_AFTER,
                )
        pipe = client.pipeline(transaction=False)
        for topic, data in batch:
            pipe.publish(pfx + topic.encode(), data)
        await pipe.execute()
