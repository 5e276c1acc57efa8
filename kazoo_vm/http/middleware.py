"""The single middleware every request passes: request id, CORS, and every error in Kazoo's envelope."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from kazoo_vm import appkeys
from kazoo_vm.errors import MethodNotAllowed, RequestTimeout, UnspecifiedFault
from kazoo_vm.http.envelope import error_body, render
from kazoo_vm.http.error_handlers import to_kazoo_error
from kazoo_vm.http.request import request_id_of
from kazoo_vm.observability.context import error_cause, note_error

log = logging.getLogger("kazoo_vm.http")

# api_util.erl: the CORS headers Kazoo sends on CORS requests and on every error.
CORS_ALLOW_HEADERS = (
    "content-type, depth, user-agent, x-http-method-override, x-file-size, x-requested-with, "
    "if-modified-since, x-file-name, cache-control, x-auth-token, x-kazoo-cluster-id, if-match"
)
CORS_EXPOSE_HEADERS = "content-type, x-auth-token, x-request-id, x-kazoo-cluster-id, location, etag, etag"


def is_cors_request(request: web.Request) -> bool:
    headers = request.headers
    return any(
        name in headers for name in ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
    )


def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    methods = ["OPTIONS", *request.get(appkeys.ALLOWED_METHODS, ())]
    requested = request.headers.get("Access-Control-Request-Method", "").upper()
    if requested and requested not in methods:
        methods.append(requested)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    response.headers["Access-Control-Max-Age"] = "86400"


def finish_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every answer carries, set before it is sent: a streamed body calls this before ``prepare``."""
    if is_cors_request(request):
        add_cors_headers(request, response)
    response.headers["X-Request-Id"] = str(request.get(appkeys.REQUEST_ID, ""))
    parsed = request.get(appkeys.PARSED)
    if parsed is not None and parsed.method in ("PUT", "POST", "PATCH") and "Content-Type" not in request.headers:
        # api_resource.erl L477-486: Kazoo's hint that a write should say what it sends.
        response.headers["X-RFC2616"] = "Section 14.17 (Try it, you'll like it)"


@web.middleware
async def kazoo_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if appkeys.REQUEST_ID not in request:  # the observing middleware sets it first when installed
        request[appkeys.REQUEST_ID] = request_id_of(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error_response(request, exc)
    except Exception as exc:  # every failure is answered in the envelope
        response = _error_response(request, exc)
    if not response.prepared:
        finish_headers(request, response)
        compress(request, response)
    return response


# Bodies gzip does not shrink: recordings are compressed already, and ZIPs are streamed (prepared) anyway.
_INCOMPRESSIBLE_PREFIXES = ("audio/", "application/zip")


def compress(request: web.Request, response: web.StreamResponse) -> None:
    """gzip an answer whose client accepts it, as Kazoo's Cowboy does (``crossbar.compress_response_body``,
    default true); audio and ZIP excepted."""
    if not isinstance(response, web.Response) or response.status in (204, 304) or not response.body:
        return
    if response.content_type.startswith(_INCOMPRESSIBLE_PREFIXES):
        return
    accepted = request.headers.get("Accept-Encoding", "").lower()
    if any(item.split(";", 1)[0].strip() == "gzip" for item in accepted.split(",")):
        response.enable_compression(web.ContentCoding.gzip)


def _error_response(request: web.Request, exc: BaseException) -> web.Response:
    error = to_kazoo_error(exc)
    if error is None:
        log.exception("request %s failed unexpectedly", request.get(appkeys.REQUEST_ID), exc_info=exc)
        error = UnspecifiedFault()
    elif error.status >= 500:
        log.error("request %s: %s (%r)", request.get(appkeys.REQUEST_ID), error.message, exc)
    note_error(error.message, error_cause(error))
    if isinstance(error, MethodNotAllowed) and error.allowed and appkeys.ALLOWED_METHODS not in request:
        request[appkeys.ALLOWED_METHODS] = error.allowed
    response = render(request, error_body(request, error), error.status)
    add_cors_headers(request, response)
    if isinstance(error, RequestTimeout):
        response.force_close()  # the rest of the body may still trickle in: never read it
    return response
