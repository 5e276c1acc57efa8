"""Every request to CouchDB carries its own ``X-Couch-Request-ID``, and its answer must carry it back.

CouchDB 3 echoes a well-formed request id that a client sends (chttpd takes it as the request's nonce, also in its
log). The check exists because CouchDB can answer a request twice. While a cluster node died, the node-kill test
saw a view query answered 500 (``progress not possible``) and then a second 500 that arrived 30 ms later on the
same keep-alive connection. Unchecked, the next request on that connection reads the stray answer as its own. From
then on every request there reads the answer to the one before it: a document read gets another document, an
audio read gets a JSON body, a write gets a read's answer. The check finds the stray answer and closes the
connection. A read is then sent again on a fresh connection. A write fails as unreachable, its outcome unknown, as
when a connection drops mid-request.

A server that never echoes ids (a proxy that strips the header, an older CouchDB) is not checked. Once a server has
echoed one id, every answer from it must carry the id of its request.
"""

from __future__ import annotations

import logging
import uuid

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

log = logging.getLogger(__name__)

HEADER = "X-Couch-Request-ID"
# Sent again on a fresh connection when the first answer was another request's: they change nothing.
_RESENDABLE = frozenset({"GET", "HEAD"})


class OutOfStep(aiohttp.ClientConnectionError):
    """CouchDB answered a request with the answer to another one; the connection was closed."""


def _close_connection(response: ClientResponse) -> None:
    """Close the connection ``response`` came on. aiohttp puts a connection back in its pool as soon as an answer's
    body is complete (``ClientResponse._response_eof``), which for a small answer is before the caller sees it:
    ``response.close()`` alone would then leave the connection, and this request's own answer still on its way
    there, to the next request."""
    protocol = getattr(response, "_protocol", None)
    response.close()
    if protocol is not None:
        protocol.close()


class RequestIds:
    """An aiohttp client middleware for one CouchDB server (see the module's docstring)."""

    def __init__(self) -> None:
        self._server_echoes = False

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        attempts = 2 if request.method in _RESENDABLE else 1
        for attempt in range(1, attempts + 1):
            sent = uuid.uuid4().hex
            request.headers[HEADER] = sent
            response = await handler(request)
            answered = response.headers.get(HEADER)
            if answered == sent:
                self._server_echoes = True
                return response
            if answered is None and not self._server_echoes:
                return response
            _close_connection(response)
            log.warning(
                "CouchDB answered %s %s with the answer to request %s (status %s); the connection was closed%s",
                request.method,
                request.url.path,
                answered,
                response.status,
                "" if attempt < attempts else "; the request failed",
            )
        raise OutOfStep(f"CouchDB answered {request.method} {request.url.path} with the answer to another request")
