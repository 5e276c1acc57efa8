"""The outermost middleware: each request's log line and HTTP metrics, and its log context.

Every record logged while a request runs carries its request id, account id, route template and method; when
it is answered, one line says how: status, duration, CouchDB round trips, and the error with its cause. Routes
are the templates (``/v2/accounts/{account_id}/vmboxes/{box_id}``), never the raw path, so neither ids nor query
strings (where clients may put ``auth_token``) reach the logs or the metric labels.
"""

from __future__ import annotations

import logging
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from kazoo_vm import appkeys
from kazoo_vm.appkeys import ACTIVITY, Activity
from kazoo_vm.http.request import request_id_of
from kazoo_vm.observability import metrics
from kazoo_vm.observability.context import RequestStats, end_request, start_request

log = logging.getLogger("kazoo_vm.request")

UNMATCHED = "unmatched"


def route_template(request: web.Request) -> str:
    """The route's path template; trailing-slash twins share their template."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    template = resource.canonical
    return template.rstrip("/") if len(template) > 1 else template


def _audio_in(request: web.Request, status: int) -> int:
    parsed = request.get(appkeys.PARSED)
    if parsed is None or status >= 400:
        return 0
    return sum(len(upload.data) for upload in parsed.files)


def _record(
    request: web.Request,
    route: str,
    response: web.StreamResponse | None,
    status: int,
    stats: RequestStats,
    duration: float,
) -> None:
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    fields: dict[str, object] = {
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "couch_requests": stats.couch_requests,
    }
    if stats.error is not None:
        fields["error"] = stats.error
        if stats.cause:
            fields["cause"] = stats.cause
    log.log(level, "%s %s %s", request.method, route, status, extra=fields)
    metrics.http_series(route, request.method, str(status)).inc()
    metrics.http_duration(route, request.method).observe(duration)
    received = _audio_in(request, status)
    if received:
        metrics.AUDIO_BYTES.labels(direction="in").inc(received)
    if response is not None and status == 200 and response.content_type == "application/zip":
        metrics.ZIPS_STREAMED.inc()


def install(app: web.Application) -> None:
    """Put the observing middleware in front of every other one."""
    app[ACTIVITY] = Activity()
    app.middlewares.insert(0, observe_middleware)


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[appkeys.REQUEST_ID] = request_id_of(request)
    route = route_template(request)
    stats, token = start_request()
    started = time.perf_counter()
    response: web.StreamResponse | None = None
    status = 500  # what a request cut short (cancelled, disconnected) counts as
    activity = request.app[ACTIVITY]
    activity.in_flight += 1
    metrics.HTTP_IN_FLIGHT.inc()
    try:
        with structlog.contextvars.bound_contextvars(
            request_id=request[appkeys.REQUEST_ID],
            account_id=request.match_info.get("account_id"),
            route=route,
            method=request.method,
        ):
            try:
                response = await handler(request)
                status = response.status
                if activity.stopping and not response.prepared:
                    response.force_close()  # no further requests on this connection: the process is stopping
                return response
            except web.HTTPException as exc:  # redirects pass through the error middleware as exceptions
                status = exc.status
                raise
            finally:
                _record(request, route, response, status, stats, time.perf_counter() - started)
    finally:
        activity.in_flight -= 1
        metrics.HTTP_IN_FLIGHT.dec()
        end_request(token)
