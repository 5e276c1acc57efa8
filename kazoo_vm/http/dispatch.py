"""Routes as data, and the aiohttp handler that runs Kazoo's request pipeline in front of a path's routes.

Kazoo's order decides which error wins (api_resource, docs/compatibility.md): body (400) → method (405) → account in the
path (404, before authentication) → authentication (401) → authorisation (403) → the module's own checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.authenticate import authenticate, authorize
from kazoo_vm.errors import MethodNotAllowed, UnsupportedMediaType
from kazoo_vm.http.request import parse_request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_CONTENT_TYPES = ["application/json", "application/x-json"]

Auth = Literal["public", "account"]
"""``public``: no credentials, no account in the path (``/v2/api_auth``); ``account``: the account in the path must
exist, the request must carry a valid token (or Basic credentials) and be allowed on that account."""

Body = Literal["json", "json_or_audio"]
"""``json``: a file body (audio, octet-stream...) is refused with 415, as Kazoo's ``known_content_type`` does for
modules that accept only JSON; ``json_or_audio``: a multipart or audio body is accepted too."""


@dataclass(frozen=True)
class Route:
    """One method on one path: who may call it, what body it takes and which JSON schema checks its data (None:
    no schema; the handler's own checks). The app, the docs and an OpenAPI generator all read these."""

    method: str
    path: str
    handler: Handler
    name: str
    auth: Auth = "account"
    body: Body = "json"
    schema: str | None = None


def endpoint(routes: Sequence[Route]) -> Handler:
    """An aiohttp handler serving the ``routes`` of one path (one per method) with Kazoo's pipeline in front."""
    by_method = {route.method: route for route in routes}
    allowed = tuple(by_method)

    async def handle(request: web.Request) -> web.StreamResponse:
        request[appkeys.ALLOWED_METHODS] = allowed
        if request.method == "OPTIONS":
            return web.Response(status=200)  # CORS preflight: no authentication (api_util.erl L903-906)
        settings = request.app[appkeys.SETTINGS]
        parsed = await parse_request(request, max_body_bytes=settings.max_upload_bytes)
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
