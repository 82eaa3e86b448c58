"""Security headers on every HTTP response (pages, static files, API, errors).

``SecurityHeaders`` is pure ASGI middleware: it adds each header the
response does not set itself; websockets pass through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rtportal.settings import Settings

__all__ = ["HSTS", "SECURITY_HEADERS", "SecurityHeaders", "security_headers"]

Headers = tuple[tuple[bytes, bytes], ...]

# No MIME sniffing, no framing (clickjacking), no Referer (URLs of the
# portal say which matter a user looks at), a CSP that lets pages load only
# same-origin scripts (web E2EE is only as strong as the code the server
# serves; see docs/security.md), no powerful browser features (the portal
# uses none), a browsing context group of its own (no window.opener from
# or to other sites) and no embedding of its responses by other sites.
SECURITY_HEADERS: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; "
        b"base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    (
        b"permissions-policy",
        b"accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
        b"magnetometer=(), microphone=(), midi=(), payment=(), usb=()",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

# Only over HTTPS (a browser ignores it over HTTP, and sending it from a
# plain-HTTP development server would be wrong): one year, this host only.
HSTS: tuple[bytes, bytes] = (b"strict-transport-security", b"max-age=31536000")


def security_headers(settings: Settings) -> Headers:
    """``SECURITY_HEADERS`` for ``settings``: a ``connect-src`` naming the
    websocket origins, and HSTS when the public URL is ``https``.

    CSP3 browsers match same-origin ``ws:``/``wss:`` against ``'self'``, but
    older WebKit (iOS webviews) does not and would block the portal page's
    ``/ws``. Listing the ws form of each allowed origin (the only origins
    ``/ws`` accepts anyway) keeps the policy exact.
    """
    sockets = sorted(
        {"ws" + o[len("http") :] for o in settings.allowed_origins if o.startswith("http")}
    )
    connect = " ".join(["connect-src 'self'", *sockets]).encode()
    headers = tuple(
        (k, v + b"; " + connect if k == b"content-security-policy" else v)
        for k, v in SECURITY_HEADERS
    )
    if settings.public_url.startswith("https://"):
        headers += (HSTS,)
    return headers


class SecurityHeaders:
    """Pure ASGI middleware (websockets pass through untouched)."""

    def __init__(self, app: ASGIApp, headers: Headers = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
