"""Typed keys for what the application and each request carry (aiohttp ``web.AppKey`` / ``web.RequestKey``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account, AccountCache
from kazoo_vm.domain.vmboxes import BoxDeletedHook, CountsProvider
from kazoo_vm.events import Events
from kazoo_vm.http.route import Route
from kazoo_vm.storage.couch import CouchStore

if TYPE_CHECKING:
    from kazoo_vm.auth.context import AuthContext
    from kazoo_vm.auth.tokens import TokenService
    from kazoo_vm.http.request import ParsedRequest

ReadinessReport = tuple[bool, dict[str, str]]
"""Whether the application is ready, and each check's answer (``GET /readyz``)."""


@dataclass
class Readiness:
    """The last readiness result and the check in flight, per application (kazoo_vm.http.health)."""

    expires: float = 0.0
    result: ReadinessReport | None = None
    running: asyncio.Task[ReadinessReport] | None = None
    startup_sync: asyncio.Task[Any] | None = None
    sync_enabled: bool = False


@dataclass
class Activity:
    """Requests being answered by one application, and whether it is stopping (for a graceful drain)."""

    in_flight: int = 0
    stopping: bool = False


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", CouchStore)
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
EVENTS = web.AppKey("events", Events)
# Accounts read to authorise requests, kept for at most Settings.account_cache_s seconds.
ACCOUNTS = web.AppKey("accounts", AccountCache)
# Per-box message counts merged into the box listing, and what happens to a box's messages when it is deleted:
# message rules the box module cannot import (the message modules import it), wired in by kazoo_vm.app.
COUNTS: web.AppKey[CountsProvider] = web.AppKey("vmbox_counts")
BOX_DELETED_HOOK: web.AppKey[BoxDeletedHook] = web.AppKey("vmbox_deleted_hook")
# The route table the app serves (kazoo_vm.routes), read by the OpenAPI description.
ROUTES: web.AppKey[tuple[Route, ...]] = web.AppKey("routes")
# The OpenAPI description, built once on first request when every route of the application is in place.
OPENAPI_DESCRIPTION: web.AppKey[dict[str, str]] = web.AppKey("openapi_description")
READINESS = web.AppKey("readiness", Readiness)
ACTIVITY = web.AppKey("activity", Activity)

PARSED: web.RequestKey[ParsedRequest] = web.RequestKey("parsed")
AUTH: web.RequestKey[AuthContext] = web.RequestKey("auth")
ALLOWED_METHODS: web.RequestKey[tuple[str, ...]] = web.RequestKey("allowed_methods")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
ACCOUNT: web.RequestKey[Account] = web.RequestKey("account")
