"""The raw relay: the ceiling. In-memory broadcast, no persistence, no auth.

A bare ASGI app served by the same uvicorn stack as rtportal (one worker,
uvloop, httptools, websockets-sansio, no per-message deflate), speaking the
subset of rtportal's protocol the load generator uses: ``hello`` on connect,
``subscribe``/``subscribed``, ``send``/``ack`` and broadcast ``event`` frames
with a per-matter ``seq``. Whatever rtportal does on top (auth, database,
broker, audience filtering, queues) is the cost measured against this.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_members: dict[str, list[Send]] = {}
_seq: dict[str, int] = {}
_HELLO = json.dumps(
    {
        "type": "hello",
        "v": 1,
        "principal": {"kind": "bot", "id": 0, "name": "relay"},
        "limits": {"max_frame_bytes": 1_048_576},
    }
)


async def _broadcast(matter: str, text: str) -> None:
    for send in list(_members.get(matter, ())):
        try:
            await send({"type": "websocket.send", "text": text})
        except Exception:  # a peer that went away; its own loop removes it
            pass


async def _session(receive: Receive, send: Send) -> None:
    joined: list[str] = []
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "send":
                matter = frame["matter"]
                seq = _seq.get(matter, 0) + 1
                _seq[matter] = seq
                event = {
                    "type": "event",
                    "matter": matter,
                    "seq": seq,
                    "kind": frame.get("kind"),
                    "audience": frame.get("audience"),
                    "payload": frame.get("payload"),
                    "blob": frame.get("blob"),
                    "client_id": frame.get("id"),
                }
                await send(
                    {
                        "type": "websocket.send",
                        "text": json.dumps(
                            {
                                "type": "ack",
                                "id": frame.get("id"),
                                "matter": matter,
                                "seq": seq,
                                "duplicate": False,
                            }
                        ),
                    }
                )
                await _broadcast(matter, json.dumps(event))
            elif kind == "subscribe":
                for sub in frame.get("subs", ()):
                    matter = sub["matter"]
                    _members.setdefault(matter, []).append(send)
                    joined.append(matter)
                    await send(
                        {
                            "type": "websocket.send",
                            "text": json.dumps(
                                {
                                    "type": "subscribed",
                                    "id": frame.get("id"),
                                    "matter": matter,
                                    "head": _seq.get(matter, 0),
                                }
                            ),
                        }
                    )
            elif kind == "ping":
                await send(
                    {
                        "type": "websocket.send",
                        "text": json.dumps({"type": "pong", "id": frame.get("id")}),
                    }
                )
    finally:
        for matter in joined:
            members = _members.get(matter)
            if members is not None and send in members:
                members.remove(send)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI entry point: websockets at any path; lifespan acknowledged; HTTP 404."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    message = await receive()  # websocket.connect
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": _HELLO})
    await _session(receive, send)
