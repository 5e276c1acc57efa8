"""Measuring every CouchDB request at the storage layer's request points: metrics by kind and outcome, latency,
conflicts, and the per-request round-trip count that the request's log line reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from kazoo_vm.observability import metrics
from kazoo_vm.observability.context import count_couch_request
from kazoo_vm.storage.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    RangeNotSatisfiable,
    StorageUnreachable,
    Unauthorized,
)

_SERVER_KINDS = {"": "server", "_all_dbs": "all_dbs", "_up": "server", "_session": "server"}
_DB_KINDS = {"_all_docs": "all_docs", "_bulk_docs": "bulk_docs", "_security": "db", "_find": "find"}


def kind_of(path: str) -> str:
    """The kind of CouchDB request a path names (bounded, so it can be a metric label)."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    if len(segments) <= 1:
        first = segments[0] if segments else ""
        if first.startswith("_"):
            return _SERVER_KINDS.get(first, "server")
        return "db"
    second = segments[1]
    if second == "_design":
        return "view" if len(segments) >= 4 and segments[3] == "_view" else "doc"
    if second.startswith("_"):
        return _DB_KINDS.get(second, "db")
    return "attachment" if len(segments) >= 3 else "doc"


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Unauthorized):
        return "unauthorized"
    if isinstance(exc, (AlreadyExists, RangeNotSatisfiable)):
        return "refused"
    if isinstance(exc, StorageUnreachable):
        return "unreachable"
    if isinstance(exc, Exception):  # StorageFault, BadRequest, and anything unexpected
        return "error"
    return "cancelled"


class CouchCall:
    """One CouchDB request being measured; :meth:`answered` ends the measure early (streamed attachments)."""

    def __init__(self, method: str, kind: str) -> None:
        self.method = method
        self.kind = kind
        self.started = time.perf_counter()
        self.recorded = False

    def answered(self, exc: BaseException | None = None) -> None:
        if self.recorded:
            return
        self.recorded = True
        outcome = outcome_of(exc)
        metrics.couch_duration(self.kind, self.method).observe(time.perf_counter() - self.started)
        metrics.couch_series(self.kind, self.method, outcome).inc()
        if outcome == "conflict":
            metrics.COUCH_CONFLICTS.labels(kind=self.kind).inc()


@contextmanager
def couch_call(method: str, path: str, *, kind: str | None = None) -> Iterator[CouchCall]:
    """Measure the CouchDB request made inside the block (which raises storage errors, or nothing)."""
    count_couch_request()
    call = CouchCall(method, kind or kind_of(path))
    try:
        yield call
    except BaseException as exc:
        call.answered(exc)
        raise
    call.answered()


def audio_sent(size: int) -> None:
    """Attachment bytes streamed out of CouchDB: recordings on their way to a client (single or in a ZIP)."""
    metrics.AUDIO_BYTES.labels(direction="out").inc(size)
