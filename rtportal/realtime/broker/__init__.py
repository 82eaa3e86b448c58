"""Pub/sub brokers: one contract (``base.Broker``), backends chosen by URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from rtportal.errors import InvalidConfig
from rtportal.realtime.broker.base import Broker, OnMessage, OnReset
from rtportal.realtime.broker.memory import MemoryBroker
from rtportal.realtime.broker.redis import RedisBroker

__all__ = ["Broker", "MemoryBroker", "OnMessage", "OnReset", "RedisBroker", "from_url"]


def from_url(url: str) -> Broker:
    """The broker for ``RTPORTAL_BROKER_URL``.

    ``memory://`` (private in-process bus), ``memory://<name>`` (a named bus
    shared within the process), ``redis://host:port/db[?prefix=p]`` or
    ``rediss://...`` (Redis pub/sub). Anything else is ``InvalidConfig``.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        rest = url.split("://", 1)[1] if "://" in url else ""
        return MemoryBroker(name=rest.strip("/"))
    if scheme in {"redis", "rediss", "unix"}:
        return RedisBroker(url)
    raise InvalidConfig(
        f"unsupported broker URL scheme {scheme or '(none)'!r}: use memory:// or redis://"
    )
