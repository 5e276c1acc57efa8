"""One row of the route table (:class:`Route`): what the app serves, the request pipeline enforces and the OpenAPI
description reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

Auth = Literal["public", "account"]
"""``public``: no credentials, no account in the path (``/v2/api_auth``); ``account``: the account in the path must
exist, the request must carry a valid token (or Basic credentials) and be allowed on that account."""

Body = Literal["json", "json_or_audio"]
"""``json``: a file body (audio, octet-stream...) is refused with 415, as Kazoo's ``known_content_type`` does for
modules that accept only JSON; ``json_or_audio``: a multipart or audio body is accepted too."""


@dataclass(frozen=True)
class Route:
    """One method on one path: who may call it, what body it takes and which JSON schema checks its data (None:
    no schema; the handler's own checks). The app, the docs and the OpenAPI description all read these."""

    method: str
    path: str
    handler: Handler
    name: str
    auth: Auth = "account"
    body: Body = "json"
    schema: str | None = None
