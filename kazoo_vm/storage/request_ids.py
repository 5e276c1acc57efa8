"""Every request to CouchDB carries its own ``X-Couch-Request-ID``, so that an answer meant for another request is
never taken for its own.

CouchDB can answer a request twice. While a cluster node dies, CouchDB 3.5 answers a view query 500 (``progress not
possible``) and then sends a second 500 on the same keep-alive connection. Unchecked, the next request on that
connection reads the stray answer as its own, and from then on every request there reads the answer to the one
before it: a document read gets another document, an audio read gets a JSON body, a write gets a read's answer.

CouchDB 3.5 echoes a well-formed request id that the client sends (chttpd takes it as the request's nonce, also in
its log); older releases answer with an id of their own. So an answer is a stray when it carries an id of ours
(``kvm-`` and 32 hex digits) other than its request's. Its connection is then closed. A request that changes
nothing (a GET, a HEAD, or a POST that only queries) is sent again. A write fails as unreachable: CouchDB received
it and has most likely applied it, but its answer was lost with the connection.
"""

from __future__ import annotations

import logging
import re
import uuid

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

log = logging.getLogger(__name__)

HEADER = "X-Couch-Request-ID"
_PREFIX = "kvm-"  # with 32 hex digits: 36 characters, the longest id CouchDB echoes
# POST endpoints that only query (views, _all_docs and _design_docs with keys, _bulk_get).
_QUERY_POST = re.compile(r"/(_all_docs|_design_docs|_bulk_get|_view/[^/]+)$")


class OutOfStep(aiohttp.ClientConnectionError):
    """CouchDB answered a request with the answer to another one; the connection was closed."""


def new_request_id() -> str:
    return _PREFIX + uuid.uuid4().hex


def is_stray(sent: str, answered: str | None) -> bool:
    """Whether an answer with id ``answered`` belongs to another request of ours than the one sent with ``sent``.
    An answer without an id, or with the server's own, is not checked (a CouchDB that does not echo ids)."""
    return answered is not None and answered != sent and answered.startswith(_PREFIX)


def _changes_nothing(request: ClientRequest) -> bool:
    if request.method in ("GET", "HEAD"):
        return True
    return request.method == "POST" and _QUERY_POST.search(request.url.path) is not None


def _close_connection(response: ClientResponse) -> None:
    """Close the connection ``response`` came on. aiohttp puts a connection back in its pool as soon as an answer's
    body is complete (``ClientResponse._response_eof``), which for a small answer is before the caller sees it:
    ``response.close()`` alone would then leave the connection, and this request's own answer still on its way
    there, to the next request."""
    protocol = response._protocol
    response.close()
    if protocol is not None:
        protocol.close()


async def check_request_ids(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """An aiohttp client middleware for a CouchDB server (see the module's docstring)."""
    attempts = 2 if _changes_nothing(request) else 1
    for attempt in range(1, attempts + 1):
        sent = new_request_id()
        request.headers[HEADER] = sent
        response = await handler(request)
        answered = response.headers.get(HEADER)
        if not is_stray(sent, answered):
            return response
        _close_connection(response)
        log.warning(
            "CouchDB answered %s %s (request %s) with the answer to request %s (status %s); the connection was "
            "closed%s",
            request.method,
            request.url.path,
            sent,
            answered,
            response.status,
            ", the request is sent again" if attempt < attempts else ", the request failed",
        )
    raise OutOfStep(f"CouchDB answered {request.method} {request.url.path} with the answer to another request")
