"""Typed keys for what the application and each request carry (aiohttp ``web.AppKey`` / ``web.RequestKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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

PARSED: web.RequestKey[ParsedRequest] = web.RequestKey("parsed")
AUTH: web.RequestKey[AuthContext] = web.RequestKey("auth")
ALLOWED_METHODS: web.RequestKey[tuple[str, ...]] = web.RequestKey("allowed_methods")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
ACCOUNT: web.RequestKey[Account] = web.RequestKey("account")
