"""``GET /v2/openapi.json`` (the OpenAPI description) and ``GET /v2/docs`` (Swagger UI over it), no token needed.

Swagger UI's files come from the ``swagger-ui-py`` package and are served by the service itself under
``/v2/docs/static/``: operators' networks are often closed, so the page loads nothing from elsewhere. The page
and its assets are addressed relative to the page, so it works behind a proxy that adds a path prefix.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.http.openapi import describe

OPENAPI_PATH = "/v2/openapi.json"
DOCS_PATH = "/v2/docs"
STATIC_PATH = "/v2/docs/static"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>kazoo_vm API</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      persistAuthorization: true,
      tryItOutEnabled: false
    });
  </script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    """Swagger UI's static files, as installed by the ``swagger-ui-py`` package."""
    return Path(str(resources.files("swagger_ui") / "static"))


async def openapi_json(request: web.Request) -> web.StreamResponse:
    cached = request.app[appkeys.OPENAPI_DESCRIPTION]
    if "json" not in cached:
        settings = request.app[appkeys.SETTINGS]
        cached["json"] = json.dumps(describe(request.app, version=settings.kazoo_version), indent=2)
    return web.Response(text=cached["json"], content_type="application/json")


async def docs_page(request: web.Request) -> web.StreamResponse:
    if request.path.endswith("/"):
        # Relative asset addresses resolve against the page without its trailing slash.
        raise web.HTTPFound(DOCS_PATH)
    return web.Response(text=_PAGE, content_type="text/html")


def setup_docs(app: web.Application) -> None:
    """Add the description, the page and the page's assets to ``app``."""
    app[appkeys.OPENAPI_DESCRIPTION] = {}
    app.router.add_get(OPENAPI_PATH, openapi_json, name="openapi")
    app.router.add_get(DOCS_PATH, docs_page, name="docs")
    app.router.add_get(DOCS_PATH + "/", docs_page)
    app.router.add_static(STATIC_PATH, swagger_ui_dir(), name="docs_static")
