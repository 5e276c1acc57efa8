"""What one request has done so far, for its log line: a per-task counter the storage layer increments.

A :class:`contextvars.ContextVar` holds it, so it follows the request's task (and tasks it starts) without being
passed down through every call.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from kazoo_vm.errors import KazooError, ValidationFailed


@dataclass
class RequestStats:
    couch_requests: int = 0
    # The Kazoo error the request was answered with, and what caused it (for its log line).
    error: str | None = None
    cause: str | None = None


_CURRENT: ContextVar[RequestStats | None] = ContextVar("kazoo_vm_request_stats", default=None)


def start_request() -> tuple[RequestStats, Token[RequestStats | None]]:
    """Fresh stats for the request running in this context; pass the token to :func:`end_request`."""
    stats = RequestStats()
    return stats, _CURRENT.set(stats)


def end_request(token: Token[RequestStats | None]) -> None:
    _CURRENT.reset(token)


def count_couch_request() -> None:
    stats = _CURRENT.get()
    if stats is not None:
        stats.couch_requests += 1


def note_error(error: str, cause: str | None) -> None:
    """Record the error the current request is answered with."""
    stats = _CURRENT.get()
    if stats is not None:
        stats.error, stats.cause = error, cause


def error_cause(error: KazooError) -> str | None:
    """What caused ``error``, in words safe to log: validation errors name fields and rules, never the values."""
    data = error.data
    if not isinstance(data, dict):
        return None
    cause = data.get("cause")
    if isinstance(cause, str):
        return cause
    if isinstance(error, ValidationFailed):
        failures = []
        for name, rules in data.items():
            rules_named = ",".join(str(rule) for rule in rules) if isinstance(rules, dict) else ""
            failures.append(f"{name}:{rules_named}" if rules_named else str(name))
        return "; ".join(failures) or None
    message = data.get("message")
    return message if isinstance(message, str) else None
