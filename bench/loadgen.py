"""Load generator worker: one OS process holding many websocket clients.

The coordinator (``run.py``) starts several of these with ``multiprocessing``
and drives them over a pipe. A worker connects its share of the clients,
subscribes each to its matter, then runs measurement *steps*: its senders
send ``send`` frames at the offered rate, every client records each ``event``
it receives (latency from the wall-clock stamp in the payload: all processes
are on one host, so ``time.time_ns()`` is a shared clock), and on request it
reports counts and latency samples per step.

Every frame is a real frame of rtportal's protocol (``docs/protocol.md``);
the raw relay and the Channels peer speak the same subset.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import threading
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bench.wsclient import WSClient, open_ws

__all__ = ["ClientSpec", "StepCounters", "worker_main"]

# A realistic short message: rtp1 envelopes of a few lines of text are ~250 B.
_BLOB = base64.urlsafe_b64encode(os.urandom(256)).decode().rstrip("=")  # unpadded base64url
_TICK = 0.005  # seconds between pacing ticks of the sender loop


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """One client the worker opens: where, as whom, which matter, sender or not."""

    index: int
    matter: str
    members: int  # subscribers of this matter (all workers): deliveries per message
    sender: bool
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class StepCounters:
    sent: int = 0
    acked: int = 0
    duplicates: int = 0
    errors: int = 0
    expected: int = 0  # deliveries this worker's sends should cause (all workers)
    received: int = 0
    out_of_order: int = 0
    latencies_us: array[int] = field(default_factory=lambda: array("I"))
    ack_latencies_us: array[int] = field(default_factory=lambda: array("I"))
    error_codes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Client:
    spec: ClientSpec
    ws: WSClient | None = None
    subscribed: asyncio.Future[str] | None = None
    last_seq: int = 0
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (step, t_ns)


class Worker:
    def __init__(self, host: str, port: int, path: str, wid: int) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.wid = wid
        self.clients: list[_Client] = []
        self.steps: dict[int, StepCounters] = {}
        self.closes: dict[str, int] = {}
        self.resyncs = 0
        self.max_samples = 3_000_000
        self.counter = 0
        # Deliveries of steps already collected (they missed their step's
        # drain window): late, not lost. The runner subtracts them from "lost".
        self.collected: set[int] = set()
        self.late = 0

    # frames in -----------------------------------------------------------------------
    def on_text(self, ws: WSClient, text: str) -> None:
        client: _Client = ws.tag  # type: ignore[assignment]
        frame: dict[str, Any] = orjson.loads(text)  # what a lean client would use
        kind = frame.get("type")
        if kind == "event":
            now = time.time_ns()
            payload = frame.get("payload") or {}
            thread = payload.get("thread")
            step_id = int(thread) if isinstance(thread, str) and thread.isdigit() else -1
            step = self.steps.get(step_id)
            if step is None:
                if step_id in self.collected:
                    self.late += 1
                return
            step.received += 1
            if len(step.latencies_us) < self.max_samples:
                step.latencies_us.append(max(0, (now - payload["sent_at"]) // 1000))
            # Members are contacts: protocol v2 gives them a cursor token, not a
            # seq (order is then not checkable here; the reference servers send seqs).
            seq = frame.get("seq")
            if isinstance(seq, int):
                if seq <= client.last_seq:
                    step.out_of_order += 1
                client.last_seq = seq
        elif kind == "ack":
            sid = frame.get("id")
            sent = client.pending.pop(sid, None) if sid else None
            step = self.steps.get(sent[0]) if sent is not None else None
            if step is not None and sent is not None:
                step.acked += 1
                step.ack_latencies_us.append(max(0, (time.time_ns() - sent[1]) // 1000))
                step.duplicates += bool(frame.get("duplicate"))
        elif kind == "subscribed":
            if client.subscribed is not None and not client.subscribed.done():
                client.subscribed.set_result("subscribed")
        elif kind == "resync":
            self.resyncs += 1
            if client.subscribed is not None and not client.subscribed.done():
                client.subscribed.set_result("resync")
        elif kind == "error":
            sid = frame.get("id")
            code = str(frame.get("code"))
            sent = client.pending.pop(sid, None) if sid else None
            if sent is not None and sent[0] in self.steps:
                step = self.steps[sent[0]]
                step.errors += 1
                step.expected -= client.spec.members  # nothing was written: no delivery due
                step.error_codes[code] = step.error_codes.get(code, 0) + 1
            elif client.subscribed is not None and not client.subscribed.done():
                client.subscribed.set_result("error:" + code)

    def on_close(self, ws: WSClient, code: int | None) -> None:
        key = str(code)
        self.closes[key] = self.closes.get(key, 0) + 1
        client: _Client = ws.tag  # type: ignore[assignment]
        if client.subscribed is not None and not client.subscribed.done():
            client.subscribed.set_result(f"closed:{code}")

    # commands ------------------------------------------------------------------------
    async def connect(self, specs: list[ClientSpec], concurrency: int) -> dict[str, Any]:
        sem = asyncio.Semaphore(concurrency)
        outcome: dict[str, int] = {}
        t0 = time.monotonic()

        async def one(spec: ClientSpec) -> None:
            client = _Client(spec)
            async with sem:
                try:
                    client.ws = await open_ws(
                        self.host,
                        self.port,
                        self.path,
                        dict(spec.headers),
                        self.on_text,
                        self.on_close,
                        tag=client,
                    )
                except Exception as exc:
                    key = "connect:" + type(exc).__name__
                    outcome[key] = outcome.get(key, 0) + 1
                    return
                loop = asyncio.get_running_loop()
                client.subscribed = loop.create_future()
                # The protocol version (rtportal v2; the reference servers ignore it).
                client.ws.send_text(json.dumps({"type": "hello", "id": "h", "v": 2}))
                client.ws.send_text(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "id": "s1",
                            "subs": [{"matter": spec.matter, "after": 0}],
                        }
                    )
                )
                try:
                    result = await asyncio.wait_for(client.subscribed, 60)
                except TimeoutError:
                    result = "subscribe:timeout"
            outcome[result] = outcome.get(result, 0) + 1
            if result == "subscribed":
                self.clients.append(client)

        await asyncio.gather(*(one(s) for s in specs))
        return {"outcome": outcome, "seconds": time.monotonic() - t0}

    async def run_step(self, step_id: int, total: int, duration: float) -> dict[str, Any]:
        """Send ``total`` frames evenly over ``duration`` s, round-robin over the senders."""
        counters = self.steps.setdefault(step_id, StepCounters())
        sent_before = counters.sent
        senders = [c for c in self.clients if c.spec.sender and c.ws and not c.ws.closed]
        if not senders or total <= 0:
            await asyncio.sleep(duration)
            return {"sent": 0}
        start = time.monotonic()
        rate = total / duration
        rr = 0
        prefix = f"w{self.wid}s{step_id}-"
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= duration or counters.sent - sent_before >= total:
                break
            # Send at the start of each 1/rate interval: exactly ``total`` in all.
            due = min(total, int(elapsed * rate) + 1) - (counters.sent - sent_before)
            for _ in range(due):
                client = senders[rr % len(senders)]
                rr += 1
                self.counter += 1
                sid = prefix + str(self.counter)
                now = time.time_ns()
                counters.sent += 1
                assert client.ws is not None
                ok = client.ws.send_text(
                    json.dumps(
                        {
                            "type": "send",
                            "id": sid,
                            "matter": client.spec.matter,
                            "kind": "message",
                            "audience": "portal",
                            "payload": {"sent_at": now, "thread": str(step_id)},
                            "blob": _BLOB,
                        },
                        separators=(",", ":"),
                    )
                )
                if ok:
                    client.pending[sid] = (step_id, now)
                    counters.expected += client.spec.members
                else:  # the server closed this sender: a failed send, no delivery due
                    counters.errors += 1
                    counters.error_codes["closed"] = counters.error_codes.get("closed", 0) + 1
            await asyncio.sleep(_TICK)
        return {"sent": counters.sent}

    def counts(self, step_id: int) -> dict[str, int]:
        c = self.steps.get(step_id, StepCounters())
        return {
            "sent": c.sent,
            "acked": c.acked,
            "errors": c.errors,
            "expected": c.expected,
            "received": c.received,
        }

    def collect(self, step_id: int) -> dict[str, Any]:
        c = self.steps.pop(step_id, StepCounters())
        self.collected.add(step_id)
        return {
            "sent": c.sent,
            "acked": c.acked,
            "duplicates": c.duplicates,
            "errors": c.errors,
            "error_codes": c.error_codes,
            "expected": c.expected,
            "received": c.received,
            "out_of_order": c.out_of_order,
            "latencies_us": c.latencies_us.tobytes(),
            "ack_latencies_us": c.ack_latencies_us.tobytes(),
            "closes": dict(self.closes),
            "resyncs": self.resyncs,
            "open": sum(1 for x in self.clients if x.ws and not x.ws.closed),
        }

    async def close_all(self) -> None:
        for client in self.clients:
            if client.ws is not None:
                client.ws.close()
        deadline = time.monotonic() + 10
        while any(c.ws and not c.ws.closed for c in self.clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # reason: polling transports closing; no single event
        self.clients.clear()
        self.closes.clear()
        self.resyncs = 0
        self.collected.clear()
        self.late = 0


async def _serve(pipe: Connection, worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    # A thread blocks on the pipe: the event loop's add_reader would make the
    # pipe non-blocking, and multi-megabyte latency replies then fail with EAGAIN.
    def reader() -> None:
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                msg = ("exit",)
            loop.call_soon_threadsafe(inbox.put_nowait, msg)
            if msg[0] == "exit":
                return

    threading.Thread(target=reader, name="pipe-reader", daemon=True).start()
    while True:
        cmd = await inbox.get()
        op = cmd[0]
        if op == "connect":
            pipe.send(("connected", await worker.connect(cmd[1], cmd[2])))
        elif op == "step":
            pipe.send(("stepped", await worker.run_step(cmd[1], cmd[2], cmd[3])))
        elif op == "prepare":
            worker.steps.setdefault(cmd[1], StepCounters())
            pipe.send(("prepared", {}))
        elif op == "count":
            pipe.send(("count", worker.counts(cmd[1])))
        elif op == "late":
            pipe.send(("late", {"late": worker.late}))
        elif op == "collect":
            pipe.send(("stats", worker.collect(cmd[1])))
        elif op == "close":
            await worker.close_all()
            pipe.send(("closed", {}))
        elif op == "exit":
            await worker.close_all()
            return


def raise_nofile() -> None:
    """Allow as many sockets as the hard limit permits (idle workload)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_main(pipe: Connection, host: str, port: int, path: str, wid: int) -> None:
    """Entry point of a load-generator process."""
    raise_nofile()
    try:
        import uvloop
    except ImportError:  # plain asyncio still works, just costs more CPU
        asyncio.run(_serve(pipe, Worker(host, port, path, wid)))
    else:
        uvloop.run(_serve(pipe, Worker(host, port, path, wid)))
