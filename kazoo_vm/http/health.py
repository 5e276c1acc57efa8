"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness) for load balancers: no token, cheap.

Readiness means: CouchDB answers our credentials within ``readiness_timeout_s`` (one light read: the accounts
database's info), the token signing key is loaded, and the start-up design document sync has finished. The result
is reused for ``health_cache_s``, and concurrent probes share one check, so a load balancer polling every second
costs CouchDB at most one read per period. Nothing is ever written.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.appkeys import READINESS, Readiness
from kazoo_vm.appkeys import ReadinessReport as Report
from kazoo_vm.storage import naming
from kazoo_vm.storage.errors import StorageError, StorageUnreachable, Unauthorized


def track_startup_sync(app: web.Application, task: asyncio.Task[Any] | None) -> None:
    """Tell readiness about the start-up design document sync (None: switched off)."""
    readiness = app[READINESS]
    readiness.startup_sync = task
    readiness.sync_enabled = task is not None


async def _couch(app: web.Application) -> str:
    store = app.get(appkeys.STORE)
    if store is None:
        return "not connected"
    timeout = app[appkeys.SETTINGS].readiness_timeout_s
    try:
        found = await asyncio.wait_for(store.db_exists(naming.ACCOUNTS_DB), timeout)
    except (StorageUnreachable, TimeoutError):
        return "unreachable"
    except Unauthorized:
        return "credentials refused"
    except StorageError as exc:
        return f"error ({exc.status or 'no status'})"
    return "ok" if found else "accounts database missing"


def _design_docs(readiness: Readiness) -> str:
    if not readiness.sync_enabled:
        return "ok"  # not synced at start-up by configuration: views are repaired when first queried
    task = readiness.startup_sync
    if task is None or not task.done():
        return "syncing"
    return "ok"


async def _check(app: web.Application) -> Report:
    checks = {
        "couchdb": await _couch(app),
        "signing_key": "ok" if appkeys.TOKENS in app else "not loaded",
        "design_docs": _design_docs(app[READINESS]),
    }
    return all(value == "ok" for value in checks.values()), checks


async def readiness_of(app: web.Application) -> Report:
    readiness = app[READINESS]
    now = time.monotonic()
    if readiness.result is not None and now < readiness.expires:
        return readiness.result
    if readiness.running is None or readiness.running.done():
        readiness.running = asyncio.create_task(_check(app))
    result = await asyncio.shield(readiness.running)
    readiness.result = result
    readiness.expires = time.monotonic() + app[appkeys.SETTINGS].health_cache_s
    return result


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.StreamResponse:
    ready, checks = await readiness_of(request.app)
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


def install(app: web.Application) -> None:
    app[READINESS] = Readiness()
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
