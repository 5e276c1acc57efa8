"""Turning a route's method table into an aiohttp handler that runs Kazoo's request pipeline in order.

Kazoo's order decides which error wins (kazoo-crossbar-http.md §2.1): body (400) → method (405) → account in the
path (404, before authentication) → authentication (401) → authorisation (403) → the module's own checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.authenticate import authenticate, authorize
from kazoo_vm.domain.accounts import load_account
from kazoo_vm.errors import MethodNotAllowed, UnsupportedMediaType
from kazoo_vm.http.request import parse_request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AioHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


JSON_CONTENT_TYPES = ["application/json", "application/x-json"]


def endpoint(methods: Mapping[str, Handler], *, account_scoped: bool = True, json_only: bool = False) -> AioHandler:
    """An aiohttp handler serving ``methods`` (verb → handler) with Kazoo's pipeline in front.

    ``json_only`` endpoints refuse bodies that are files (audio, octet-stream...) with 415, as Kazoo's
    ``known_content_type`` does for modules that accept only JSON.
    """
    allowed = tuple(methods)

    async def handle(request: web.Request) -> web.StreamResponse:
        request[appkeys.ALLOWED_METHODS] = allowed
        if request.method == "OPTIONS":
            return web.Response(status=200)  # CORS preflight: no authentication (api_util.erl L903-906)
        settings = request.app[appkeys.SETTINGS]
        parsed = await parse_request(request, max_body_bytes=settings.max_upload_bytes)
        request[appkeys.PARSED] = parsed
        handler = methods.get(parsed.method)
        if handler is None:
            raise MethodNotAllowed(allowed)
        if json_only and parsed.files:
            raise UnsupportedMediaType(parsed.content_type, JSON_CONTENT_TYPES)
        if account_scoped:
            store = request.app[appkeys.STORE]
            account = await load_account(store, request.match_info["account_id"])
            request[appkeys.ACCOUNT] = account
            auth = await authenticate(store, request.app[appkeys.TOKENS], request.headers, parsed)
            request[appkeys.AUTH] = auth
            await authorize(store, auth, account)
        return await handler(request)

    return handle
