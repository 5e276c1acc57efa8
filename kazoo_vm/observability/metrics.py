"""The service's Prometheus metrics (prometheus_client's default registry, with the process collectors).

Label values are bounded: routes are templates (``/v2/accounts/{account_id}/vmboxes``), never paths with ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

NAMESPACE = "kazoo_vm"

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    namespace=NAMESPACE,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to the end of its answer (streamed bodies included), by route template.",
    ["route", "method"],
    namespace=NAMESPACE,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered.", namespace=NAMESPACE)

COUCH_REQUESTS = Counter(
    "couch_requests",
    "Requests to CouchDB, by kind (doc, view, all_docs, bulk_docs, attachment, db, all_dbs, server), method "
    "and outcome (ok, conflict, not_found, unauthorized, error, unreachable).",
    ["kind", "method", "outcome"],
    namespace=NAMESPACE,
)
COUCH_DURATION = Histogram(
    "couch_request_duration_seconds",
    "Time CouchDB took to answer (to the response headers for attachment downloads), by kind.",
    ["kind", "method"],
    namespace=NAMESPACE,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COUCH_CONFLICTS = Counter(
    "couch_conflicts",
    "Document update conflicts (409) CouchDB answered; the service re-reads and retries them (up to its attempt "
    "limit, then answers datastore_conflict).",
    ["kind"],
    namespace=NAMESPACE,
)

AUDIO_BYTES = Counter(
    "audio_bytes",
    "Bytes of audio received (direction=in: uploads) and sent (direction=out: downloads and ZIP archives).",
    ["direction"],
    namespace=NAMESPACE,
)
ZIPS_STREAMED = Counter("zips_streamed", "ZIP archives of recordings streamed to clients.", namespace=NAMESPACE)

MIGRATION_ENTRIES = Counter(
    "migration_entries",
    "Legacy voicemail entries migrated in this process (by a migration run, or by a message API request that "
    "met them), by outcome status (migrated, already_migrated, planned, failed, gone).",
    ["status"],
    namespace=NAMESPACE,
)


NOTIFICATION_DELIVERIES = Counter(
    "notification_deliveries",
    "Delivery attempts of notifications by this process, by kind (event, email, webhook) and outcome (delivered; "
    "retry: failed, tried again later; failed: given up for good).",
    ["kind", "outcome"],
    namespace=NAMESPACE,
)


# The labelled series of the per-request metrics, found once per label values: prometheus_client's ``labels()``
# validates and locks on every call, which a request paid several times. The label sets are bounded (see above).


@lru_cache(maxsize=1024)
def http_series(route: str, method: str, status: str) -> Counter:
    return HTTP_REQUESTS.labels(route=route, method=method, status=status)


@lru_cache(maxsize=1024)
def http_duration(route: str, method: str) -> Histogram:
    return HTTP_DURATION.labels(route=route, method=method)


@lru_cache(maxsize=256)
def couch_series(kind: str, method: str, outcome: str) -> Counter:
    return COUCH_REQUESTS.labels(kind=kind, method=method, outcome=outcome)


@lru_cache(maxsize=256)
def couch_duration(kind: str, method: str) -> Histogram:
    return COUCH_DURATION.labels(kind=kind, method=method)


def record_delivery(kind: str, outcome: str) -> None:
    """Count one delivery attempt of a notification and how it ended."""
    NOTIFICATION_DELIVERIES.labels(kind=kind, outcome=outcome).inc()


def record_migration(statuses: Iterable[str]) -> None:
    """Count the outcome statuses of migrated legacy entries."""
    for status in statuses:
        MIGRATION_ENTRIES.labels(status=status).inc()


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
