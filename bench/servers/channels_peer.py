"""The Django Channels peer: AsyncJsonWebsocketConsumer + channels_redis.

What a Python team picks today for "websocket groups across processes":
a real ``AsyncJsonWebsocketConsumer`` whose ``subscribe`` is ``group_add``
and whose ``send`` is ``group_send`` through ``channels_redis.core.
RedisChannelLayer`` (default capacity and expiry, a per-run key prefix).
Like the raw relay it has no persistence and no auth; ``seq`` is a
process-local counter (there is one worker).

Environment: ``BENCH_REDIS_URL`` (the runner's private redis-server) and
``BENCH_RUN_ID`` (key prefix, so runs never see each other's groups).
"""

from __future__ import annotations

import os
from typing import Any

import django  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        DATABASES={},
        USE_TZ=True,
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    # redis-py 8 reads with a 5 s socket timeout by default, exactly
                    # channels_redis's BZPOPMIN timeout: an idle consumer's receive
                    # then dies with TimeoutError and its websocket drops. Longer
                    # socket timeout = the configuration that works.
                    "hosts": [
                        {
                            "address": os.environ.get(
                                "BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"
                            ),
                            "socket_timeout": 30,
                        }
                    ],
                    "prefix": "bench" + os.environ.get("BENCH_RUN_ID", "0") + ":",
                },
            }
        },
    )
    django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # type: ignore[import-untyped]
from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]
from django.urls import re_path  # type: ignore[import-untyped]

__all__ = ["application"]

_seq: dict[str, int] = {}


def _group(matter: str) -> str:
    return "m." + matter


class MatterConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One websocket: subscribe = group_add, send = group_send, event = send_json."""

    async def connect(self) -> None:
        self.joined: list[str] = []
        await self.accept()
        await self.send_json(
            {
                "type": "hello",
                "v": 1,
                "principal": {"kind": "bot", "id": 0, "name": "channels"},
                "limits": {"max_frame_bytes": 1_048_576},
            }
        )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type")
        if kind == "send":
            matter = content["matter"]
            seq = _seq.get(matter, 0) + 1
            _seq[matter] = seq
            event = {
                "type": "event",
                "matter": matter,
                "seq": seq,
                "kind": content.get("kind"),
                "audience": content.get("audience"),
                "payload": content.get("payload"),
                "blob": content.get("blob"),
                "client_id": content.get("id"),
            }
            await self.send_json(
                {
                    "type": "ack",
                    "id": content.get("id"),
                    "matter": matter,
                    "seq": seq,
                    "duplicate": False,
                }
            )
            await self.channel_layer.group_send(
                _group(matter), {"type": "matter.event", "event": event}
            )
        elif kind == "subscribe":
            for sub in content.get("subs", ()):
                matter = sub["matter"]
                await self.channel_layer.group_add(_group(matter), self.channel_name)
                self.joined.append(_group(matter))
                await self.send_json(
                    {
                        "type": "subscribed",
                        "id": content.get("id"),
                        "matter": matter,
                        "head": _seq.get(matter, 0),
                    }
                )
        elif kind == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})

    async def disconnect(self, code: int) -> None:
        # Dynamic groups are not left automatically; a dead channel would keep
        # receiving group_send traffic until the group expires.
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def matter_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


application = ProtocolTypeRouter(
    {"websocket": URLRouter([re_path(r"^.*$", MatterConsumer.as_asgi())])}
)
