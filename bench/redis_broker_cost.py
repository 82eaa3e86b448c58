"""Python CPU per message of RedisBroker: publishing batches, and the read loop.

    python -m bench.redis_broker_cost [--impl path/to/redis.py] [--protocol 2|3] [--asyncio]

Starts a private redis-server on a free port (stopped by its pid). Worker
CPU is this process's ``time.process_time()`` only: Redis's CPU and the
external publisher's are not in it. Redis's own CPU per published message
(``INFO cpu``) is printed next to it, with one ``redis-cli`` subscriber on
every channel so that PUBLISH fans out.

* publish: ``RedisBroker._send`` of batches of 1, 8, 32 and 128 messages
  (250 bytes, over 100 channels), 20,000 messages per round, best of 5.
* receive: a subscribed broker reads 50,000 messages that a separate
  process publishes in pipelines of 500; best of 5.

``--impl`` loads another version of rtportal/realtime/broker/redis.py (e.g.
one from ``git show``) to compare two versions on the same machine. uvloop (the
production loop) unless ``--asyncio``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis

from tests.support.procs import RedisProcess

PAYLOAD = b'{"type":"event","matter":123,"seq":4567,"body":"' + b"x" * 200 + b'"}'

PUBLISHER = r"""
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
n, payload = int(sys.argv[2]), sys.argv[3].encode()
p = r.pipeline(transaction=False)
for i in range(n):
    p.publish(f"bench:m:{i % 100}", payload)
    if len(p) == 500:
        p.execute()
p.execute()
r.publish("bench:done", b"done")
"""


def load(path: str | None) -> ModuleType:
    if path is None:
        from rtportal.realtime.broker import redis as current

        return current
    spec = importlib.util.spec_from_file_location("redis_broker_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def server_cpu(url: str) -> float:
    client = Redis.from_url(url)
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def publish_cost(impl: ModuleType, url: str, server: RedisProcess) -> None:
    listener = await asyncio.create_subprocess_exec(
        *("redis-cli", "-p", str(server.port), "subscribe"),
        *[f"bench:m:{i}" for i in range(100)],
        stdout=subprocess.DEVNULL,
    )
    admin = Redis.from_url(server.url)
    try:
        for _ in range(200):  # up to 10 s
            if (await admin.pubsub_numsub("bench:m:99"))[0][1]:
                break
            await asyncio.sleep(0.05)  # reason: polling until redis-cli has subscribed
    finally:
        await admin.aclose()
    broker: Any = impl.RedisBroker(url)
    broker.set_handler(lambda t, d: None, lambda: None)
    await broker.start()
    try:
        for size in (1, 8, 32, 128):
            batch = [(f"m:{i % 100}", PAYLOAD) for i in range(size)]
            rounds = 20_000 // size
            worker: list[float] = []
            redis_cpu: list[float] = []
            for _ in range(5):
                await broker._send(batch)  # warm: connection, script cache
                s0 = await server_cpu(server.url)
                t0 = time.process_time()
                for _ in range(rounds):
                    await broker._send(batch)
                worker.append((time.process_time() - t0) / (rounds * size) * 1e6)
                redis_cpu.append((await server_cpu(server.url) - s0) / (rounds * size) * 1e6)
            print(
                f"publish batch={size:4d}: worker {min(worker):6.2f} us/msg"
                f" (median {statistics.median(worker):.2f}),"
                f" redis-server {statistics.median(redis_cpu):5.2f} us/msg"
            )
    finally:
        await broker.close()
        listener.terminate()
        await listener.wait()


async def receive_cost(impl: ModuleType, url: str, redis_url: str) -> None:
    got = 0
    done = asyncio.Event()

    def on_message(topic: str, data: bytes) -> None:
        nonlocal got
        if topic == "done":
            done.set()
        else:
            got += 1

    broker: Any = impl.RedisBroker(url)
    broker.set_handler(on_message, lambda: None)
    await broker.start()
    try:
        for i in range(100):
            await broker.subscribe(f"m:{i}")
        await broker.subscribe("done")
        n = 50_000
        results = []
        for _ in range(5):
            got = 0
            done.clear()
            t0 = time.process_time()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PUBLISHER, redis_url, str(n), PAYLOAD.decode()
            )
            await done.wait()
            cpu = time.process_time() - t0
            await proc.wait()
            assert got == n, f"received {got} of {n}"
            results.append(cpu / n * 1e6)
        print(
            f"receive: worker {min(results):6.2f} us/msg (median {statistics.median(results):.2f})"
        )
    finally:
        await broker.close()


async def main(args: argparse.Namespace) -> None:
    impl = load(args.impl)
    server = RedisProcess()
    server.start()
    try:
        url = f"{server.url}?prefix=bench:"
        if args.protocol:
            url += f"&protocol={args.protocol}"
        await publish_cost(impl, url, server)
        await receive_cost(impl, url, server.url)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", help="another rtportal/broker/redis.py to measure")
    parser.add_argument("--protocol", choices=["2", "3"], help="RESP version in the URL")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    arguments = parser.parse_args()
    if arguments.asyncio:
        asyncio.run(main(arguments))
    else:
        import uvloop

        uvloop.run(main(arguments))
