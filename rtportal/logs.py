"""Log lines an operator can use: one event per line, with fields.

``event(logger, "ws_closed", conn=..., code=4008)`` logs an *event*: a
name plus fields. ``setup`` installs one handler on the ``rtportal``
logger (and re-formats uvicorn's) that writes either

* JSON, one object per line (``RTPORTAL_LOG_FORMAT=json``):
  ``{"ts": "2026-12-06T02:20:00.123Z", "level": "info", "logger": "rtportal.ws",
  "event": "ws_closed", "conn": "c-1f2e3d4c5b6a", "code": 4008}``; or
* readable text (the default):
  ``2026-12-06T02:20:00.123Z info rtportal.ws ws_closed conn=c-1f2e3d4c5b6a code=4008``.

Plain log calls (``log.info("...")``) come out the same way, their message
as ``event``. Both formats write printable ASCII only: any other
character of a value (a control character, NEL, U+2028, an undecodable
byte) is escaped, in text inside a quoted JSON string, so a client-sent
value (an Origin, a close reason) can neither forge a line nor make the
handler fail. Callers pass only what is safe to keep: ids, codes, reasons,
addresses, never tokens, cookies or payloads (docs/operations.md lists the
events).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from typing import Any, Literal

__all__ = ["LogFormat", "event", "new_id", "setup"]

LogFormat = Literal["text", "json"]
_FIELDS = "rtportal_fields"  # the LogRecord attribute carrying an event's fields
_OURS = "rtportal_handler"  # marks the handler setup() installed (so it is replaced, not added)
# uvicorn's loggers get the same format, so a log is one format throughout.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


def new_id(prefix: str) -> str:
    """A short random id for a request (``r-``) or connection (``c-``) to tie its lines."""
    return f"{prefix}-{secrets.token_hex(6)}"


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``name`` with ``fields`` (JSON-encodable values)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={_FIELDS: fields})


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, _FIELDS, None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        # ASCII with escapes: a client's bytes (an Origin, a close reason) can
        # neither end the line nor fail its encoding (lone surrogates included).
        return json.dumps(line, default=str)


def _plain(text: str) -> bool:
    """Printable ASCII only: no control character (CR, TAB, ESC), no NEL or
    U+2028, no undecodable byte (a lone surrogate) that could forge or break a line."""
    return text.isascii() and text.isprintable()


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or not _plain(text) or any(c in text for c in ' "='):
        return json.dumps(text)  # ASCII with escapes (ensure_ascii), never raises
    return text


class TextFormatter(logging.Formatter):
    """``ts level logger event key=value ...`` (values quoted when they need it)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not _plain(message):
            message = json.dumps(message)
        parts = [_timestamp(record), record.levelname.lower(), record.name, message]
        parts += [f"{key}={_text_value(value)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(fmt: LogFormat = "text", level: int = logging.INFO) -> None:
    """Log ``rtportal.*`` at ``level`` to stderr in ``fmt``; uvicorn's lines too.

    Idempotent: a second call replaces the handler of the first (the CLI
    and then each worker's app factory call it).
    """
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    root = logging.getLogger("rtportal")
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _OURS, True)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for name in _UVICORN:
        for uvicorn_handler in logging.getLogger(name).handlers:
            uvicorn_handler.setFormatter(formatter)
