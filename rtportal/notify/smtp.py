"""``SmtpTransport``: email through an SMTP server with aiosmtplib.

``RTPORTAL_SMTP_URL`` names the server: ``smtp://[user:pass@]host[:port]``
(plain, or ``?starttls=1`` to upgrade), ``smtps://`` for implicit TLS
(port 465 by default). Each message is its own connection, bounded by a
timeout; at most ``concurrency`` connections at once, so a burst of
invites cannot open hundreds of sockets. A failure becomes
``DeliveryFailed`` with the server's reply code and text, never the
credentials.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from rtportal.errors import InvalidConfig
from rtportal.notify.transport import DeliveryFailed, Outgoing, reason

__all__ = ["SmtpConfig", "SmtpTransport", "parse_smtp_url"]

DEFAULT_TIMEOUT = 20.0  # seconds for one message: connect, dialogue and data
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp://`` / ``smtps://`` URL -> settings; ``InvalidConfig`` (without the password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise InvalidConfig("RTPORTAL_SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://")
    try:
        port = parts.port
    except ValueError:
        raise InvalidConfig("RTPORTAL_SMTP_URL has an invalid port") from None
    implicit = parts.scheme == "smtps"
    flag = parse_qs(parts.query).get("starttls", ["0"])[-1].lower()
    if flag not in ("0", "1", "true", "false", "yes", "no"):
        raise InvalidConfig("RTPORTAL_SMTP_URL: starttls must be 1 or 0")
    starttls = flag in ("1", "true", "yes")
    if implicit and starttls:
        raise InvalidConfig("RTPORTAL_SMTP_URL: smtps:// is already TLS; drop ?starttls")
    return SmtpConfig(
        host=parts.hostname,
        port=port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=starttls,
    )


class SmtpTransport:
    """Sends each message over its own SMTP connection, ``concurrency`` at a time."""

    name = "smtp"

    def __init__(
        self,
        url: str,
        mail_from: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._config = parse_smtp_url(url)
        self._from = mail_from
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._tls = tls_context

    def _message(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self._from.rpartition("@")[2] or None)
        mail.set_content(message.body)  # text/plain; utf-8
        return mail

    async def send(self, message: Outgoing) -> None:
        config = self._config
        try:
            mail = self._message(message)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            raise DeliveryFailed(reason(f"message not valid: {exc}")) from None
        async with self._slots:
            try:
                await aiosmtplib.send(
                    mail,
                    hostname=config.host,
                    port=config.port,
                    username=config.username,
                    password=config.password,
                    use_tls=config.implicit_tls,
                    start_tls=config.starttls,
                    tls_context=self._tls,
                    timeout=self._timeout,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = "; ".join(f"{e.code} {e.message}" for e in exc.recipients[:3])
                raise DeliveryFailed(reason(f"recipient refused: {refused}")) from None
            except aiosmtplib.SMTPResponseException as exc:
                raise DeliveryFailed(reason(f"smtp {exc.code}: {exc.message}")) from None
            except aiosmtplib.SMTPConnectError:
                raise DeliveryFailed(
                    reason(f"cannot connect to {config.host}:{config.port}")
                ) from None
            except (aiosmtplib.SMTPTimeoutError, TimeoutError):
                raise DeliveryFailed(reason(f"timed out after {self._timeout:g} s")) from None
            except aiosmtplib.SMTPException as exc:  # the library's own words, no credentials
                raise DeliveryFailed(reason(f"smtp: {exc.message}")) from None
            except (OSError, ssl.SSLError) as exc:
                raise DeliveryFailed(
                    reason(f"cannot reach {config.host}:{config.port}: {type(exc).__name__}")
                ) from None

    async def close(self) -> None:
        return None
