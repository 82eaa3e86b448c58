"""A request id for every HTTP request: in its log lines and its ``X-Request-Id`` header.

Pure ASGI middleware: the id (``r-`` and 12 hex digits) goes into the
request's scope state (``request_id``, read by ``request_id``) and back
to the client as ``X-Request-Id``, so an operator can find a user's
failed request in the log from the answer's headers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rtportal.logs import new_id

__all__ = ["RequestIds", "request_id"]

_KEY = "request_id"


def request_id(request: Request) -> str:
    """The id ``RequestIds`` gave this request (``"-"`` without the middleware)."""
    state = request.scope.get("state")
    value = state.get(_KEY) if isinstance(state, dict) else None
    return value if isinstance(value, str) else "-"


class RequestIds:
    """Gives each HTTP request an id (see the module docstring); websockets pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_id("r")
        scope["state"] = {**scope.get("state", {}), _KEY: rid}
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
