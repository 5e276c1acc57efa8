"""``GET /metrics`` in Prometheus text format: on the API's port, or on its own port (``metrics_port``), and
behind a bearer token when ``metrics_token`` is set."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from kazoo_vm.config import Settings
from kazoo_vm.observability.metrics import exposition

log = logging.getLogger(__name__)


def metrics_handler(settings: Settings) -> Handler:
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    async def metrics(request: web.Request) -> web.StreamResponse:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {"status": "error", "message": "metrics need Authorization: Bearer <metrics token>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        body, content_type = exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return metrics


def install(app: web.Application, settings: Settings) -> None:
    """Serve ``/metrics`` on the API's port, or start its own listener on ``metrics_port`` with the app."""
    handler = metrics_handler(settings)
    if settings.metrics_port is None:
        app.router.add_get("/metrics", handler, name="metrics")
        return
    port = settings.metrics_port

    async def separate_listener(app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", handler)
        runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, port)
        await site.start()
        log.info("metrics served on http://%s:%s/metrics", settings.host, port)
        try:
            yield
        finally:
            await runner.cleanup()

    app.cleanup_ctx.append(separate_listener)
