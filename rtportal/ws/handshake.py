"""Reading a websocket upgrade request and its connection: single-valued headers,
trusted proxies, and who closed (for the close log line)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from websockets.datastructures import Headers
from websockets.server import ServerProtocol

__all__ = ["RepeatedHeader", "closer", "single_header", "trusted_proxies"]


class RepeatedHeader(Exception):
    """A header that must appear at most once came twice (ambiguous: refused)."""


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    """Never called: ``ProxyHeadersMiddleware`` is built only for its trust check."""


def trusted_proxies(config: Any) -> Callable[[str | None], bool] | None:
    """Whether uvicorn trusts a peer's forwarded headers (``--forwarded-allow-ips``);
    ``None`` when proxy headers are off."""
    if not getattr(config, "proxy_headers", False):
        return None
    return ProxyHeadersMiddleware(_no_app, config.forwarded_allow_ips).trusted_hosts.__contains__


def single_header(headers: Headers, name: str) -> str | None:
    """The header's one value (or ``None``); ``RepeatedHeader`` if it came twice."""
    values = headers.get_all(name)
    if len(values) > 1:
        raise RepeatedHeader(name)
    return str(values[0]) if values else None


def closer(ws: ServerProtocol) -> str:
    """Who started the closing handshake: ``server``, ``client`` or ``network`` (no close frame)."""
    if ws.close_rcvd_then_sent is not None:
        return "client" if ws.close_rcvd_then_sent else "server"
    if ws.close_sent is not None:
        return "server"
    return "client" if ws.close_rcvd is not None else "network"
