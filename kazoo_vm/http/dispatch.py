"""The aiohttp handler that runs Kazoo's request pipeline in front of a path's routes (:mod:`kazoo_vm.http.route`).

Kazoo's order decides which error wins (api_resource, docs/compatibility.md): body (400) → method (405) → account in the
path (404, before authentication) → authentication (401) → authorisation (403) → the module's own checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.authenticate import authenticate, authorize
from kazoo_vm.errors import MethodNotAllowed, UnsupportedMediaType
from kazoo_vm.http.request import parse_request
from kazoo_vm.http.route import Handler, Route

JSON_CONTENT_TYPES = ["application/json", "application/x-json"]


def endpoint(routes: Sequence[Route]) -> Handler:
    """An aiohttp handler serving the ``routes`` of one path (one per method) with Kazoo's pipeline in front."""
    by_method = {route.method: route for route in routes}
    allowed = tuple(by_method)

    async def handle(request: web.Request) -> web.StreamResponse:
        request[appkeys.ALLOWED_METHODS] = allowed
        if request.method == "OPTIONS":
            return web.Response(status=200)  # CORS preflight: no authentication (api_util.erl L903-906)
        settings = request.app[appkeys.SETTINGS]
        parsed = await parse_request(
            request,
            max_body_bytes=settings.max_upload_bytes,
            read_timeout_s=settings.body_read_timeout_s,
            request_id=request.get(appkeys.REQUEST_ID),
        )
        request[appkeys.PARSED] = parsed
        route = by_method.get(parsed.method)
        if route is None:
            raise MethodNotAllowed(allowed)
        if route.body == "json" and parsed.files:
            raise UnsupportedMediaType(parsed.content_type, JSON_CONTENT_TYPES)
        if route.auth == "account":
            store = request.app[appkeys.STORE]
            cache = request.app[appkeys.ACCOUNTS]
            account = await cache.load(store, request.match_info["account_id"])
            request[appkeys.ACCOUNT] = account
            auth = await authenticate(store, request.app[appkeys.TOKENS], request.headers, parsed)
            request[appkeys.AUTH] = auth
            await authorize(store, cache, auth, account)
        return await route.handler(request)

    return handle
