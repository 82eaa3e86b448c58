"""SMS providers: the ``Transport`` contract, and one HTTP provider.

``WebhookSms`` POSTs ``{"to": "+61...", "body": "..."}`` (JSON) to
``RTPORTAL_SMS_URL`` (a gateway the operator runs or rents); any 2xx is
sent. With ``RTPORTAL_SMS_SECRET`` set, the request carries
``X-Rtportal-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``
so the gateway can tell the portal's requests from anyone else's.
httpx is the client (async, timeouts, TLS verification by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from urllib.parse import urlsplit

import httpx
import orjson

from rtportal.errors import InvalidConfig
from rtportal.notify.transport import DeliveryFailed, Outgoing, reason

__all__ = ["SIGNATURE_HEADER", "WebhookSms", "sign"]

SIGNATURE_HEADER = "X-Rtportal-Signature"
DEFAULT_TIMEOUT = 10.0
DEFAULT_CONCURRENCY = 4


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSms:
    """A generic JSON webhook SMS gateway."""

    name = "sms_http"

    def __init__(
        self,
        url: str,
        secret: bytes | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidConfig("RTPORTAL_SMS_URL must be an http:// or https:// URL")
        self._url = url
        # What a failure may show: the gateway without its path or query (they may hold a key).
        self._where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self._secret = secret
        self._slots = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=concurrency),
        )

    async def send(self, message: Outgoing) -> None:
        body = orjson.dumps({"to": message.recipient, "body": message.body})
        headers = {"Content-Type": "application/json"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        async with self._slots:
            try:
                response = await self._client.post(self._url, content=body, headers=headers)
            except httpx.TimeoutException:
                raise DeliveryFailed(reason(f"sms gateway {self._where} timed out")) from None
            except httpx.HTTPError as exc:
                raise DeliveryFailed(
                    reason(f"cannot reach sms gateway {self._where}: {type(exc).__name__}")
                ) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(
                reason(f"sms gateway answered {response.status_code} {response.reason_phrase}")
            )

    async def close(self) -> None:
        await self._client.aclose()
