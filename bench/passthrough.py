#!/usr/bin/env python3
"""The cheapest hop a Python service over CouchDB can be, for ``bench_fast_path.py --parts floor``: an aiohttp server
whose one route (``GET /``) reads one CouchDB document with an aiohttp client session and answers its body as it
came: no routing tables, middleware, authentication, validation or envelope. What the load generator sees of it
next to the bare CouchDB GET is the price of one more process on the path, whatever that process does.

    passthrough.py PORT DOCUMENT_URL [AUTHORIZATION]
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)


def app(document_url: str, authorization: str) -> web.Application:
    application = web.Application()

    async def session(application: web.Application):  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession(headers={"Authorization": authorization} if authorization else {}) as opened:
            application[SESSION] = opened
            yield

    async def forward(request: web.Request) -> web.Response:
        async with request.app[SESSION].get(document_url) as answer:
            return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")

    application.cleanup_ctx.append(session)
    application.router.add_get("/", forward)
    return application


if __name__ == "__main__":
    port, document_url, *rest = sys.argv[1:]
    web.run_app(
        app(document_url, rest[0] if rest else ""), host="127.0.0.1", port=int(port), access_log=None, print=None
    )
