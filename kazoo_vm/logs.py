"""Logging: structlog over the standard library, one JSON object per line (or human-readable on a terminal).

Every record, ours and the libraries' (aiohttp, aiocouch), goes through the same processors: the request's bound
context (request id, account, route), a UTC timestamp, the level, and :func:`redact`, which masks credentials
wherever they appear (keys such as ``password``, ``auth_token=`` in query strings, passwords in URLs, bearer
tokens), so no log line ever carries one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from kazoo_vm.config import Settings

MASK = "********"

# Keys whose values are credentials wherever they appear in a log event (compared in lower case, '-' as '_').
SECRET_KEYS = frozenset(
    {
        "api_key",
        "auth_token",
        "authorization",
        "credentials",
        "metrics_token",
        "password",
        "pin",
        "secret",
        "token",
        "x_auth_token",
    }
)

_SECRET_WORDS = "api_key|auth_token|password|pin|token|x-auth-token|metrics_token|secret"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # auth_token=... in query strings and form bodies
    (re.compile(rf"(?i)\b({_SECRET_WORDS})=([^&\s\"',;]+)"), rf"\1={MASK}"),
    # "password": "..." in JSON text, 'pin': '...' in reprs
    (re.compile(rf"(?i)([\"']({_SECRET_WORDS})[\"']\s*:\s*)([\"'])(.*?)(?<!\\)\3"), rf"\1\3{MASK}\3"),
    # user:password@ in URLs
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)@"), rf"\1{MASK}@"),
    # Authorization: Bearer ... / Basic ...
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
)


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and key.lower().replace("-", "_") in SECRET_KEYS and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(None, item) for item in value]
    return value


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask every credential in the event."""
    for key in list(event_dict):
        if key.startswith("_"):
            continue  # structlog's own bookkeeping (the stdlib record, the formatter's metadata)
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


_LEADING = ("timestamp", "level", "logger", "message")


def _json_shape(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """JSON lines call the text ``message``, as log pipelines expect, and start with when, how bad and what."""
    if "event" in event_dict:
        event_dict["message"] = event_dict.pop("event")
    leading = {key: event_dict.pop(key) for key in _LEADING if key in event_dict}
    return {**leading, **event_dict}


def _add_pid(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Which process wrote the line: several workers may share one log."""
    event_dict["pid"] = os.getpid()
    return event_dict


def uses_json(settings: Settings, stream: TextIO) -> bool:
    if settings.log_format == "auto":
        return not stream.isatty()
    return settings.log_format == "json"


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced after start-up)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (default: standard error), as JSON lines or for a terminal."""
    out = stream if stream is not None else sys.stderr
    as_json = uses_json(settings, out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact,
    ]
    if as_json:
        final += [_json_shape, structlog.processors.JSONRenderer(sort_keys=False)]
    else:
        final.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler: logging.Handler = logging.StreamHandler(out) if stream is not None else _StandardError()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # aiohttp's access log is replaced by the service's own request line.
    logging.getLogger("aiohttp.access").disabled = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
