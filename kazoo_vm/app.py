"""The application factory: settings, the CouchDB store's lifecycle, middleware and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.tokens import TokenService, load_or_create_signing_key
from kazoo_vm.config import Settings
from kazoo_vm.handlers.docs import setup_docs
from kazoo_vm.handlers.messages import install_hooks as install_message_hooks
from kazoo_vm.http import health, metrics_endpoint, observe
from kazoo_vm.http.middleware import kazoo_middleware
from kazoo_vm.routes import setup_routes
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database, sync_all
from kazoo_vm.storage.errors import StorageError, StorageUnreachable

log = logging.getLogger(__name__)


async def wait_for_couch(store: CouchStore, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await store.server_info()
            return
        except StorageUnreachable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def prepare_couch(store: CouchStore) -> None:
    """The databases every deployment needs."""
    await ensure_database(store, naming.ACCOUNTS_DB, "accounts")


async def _sync_design_docs(store: CouchStore) -> None:
    try:
        await sync_all(store)
    except StorageError:
        log.exception("design document sync at start-up failed; views are repaired when first queried")


def create_app(settings: Settings, *, sync_design_docs: bool | None = None) -> web.Application:
    """The aiohttp application; ``sync_design_docs`` overrides the setting (tests switch it off)."""
    if settings.couch_url is None:
        raise ValueError("create_app needs settings.couch_url (kazoo-vm serve starts the bundled CouchDB first)")
    couch_url = settings.couch_url
    app = web.Application(middlewares=[kazoo_middleware], client_max_size=settings.max_upload_bytes + 1024 * 1024)
    app[appkeys.SETTINGS] = settings

    async def couch_context(app: web.Application) -> AsyncIterator[None]:
        store = CouchStore(couch_url)
        try:
            await wait_for_couch(store)
            await prepare_couch(store)
            app[appkeys.STORE] = store
            app[appkeys.TOKENS] = TokenService(await load_or_create_signing_key(store), settings.token_expiry_s)
            sync = settings.sync_design_docs if sync_design_docs is None else sync_design_docs
            # Walking every database can take a while on a big cluster: serve meanwhile.
            syncing = asyncio.create_task(_sync_design_docs(store)) if sync else None
            health.track_startup_sync(app, syncing)
            yield
            if syncing is not None:
                syncing.cancel()
                await asyncio.gather(syncing, return_exceptions=True)
        finally:
            await store.close()

    app.cleanup_ctx.append(couch_context)
    setup_routes(app)
    setup_docs(app)
    # Operators' view: the request log line and metrics (outermost middleware), health probes, /metrics.
    observe.install(app)
    health.install(app)
    metrics_endpoint.install(app, settings)
    install_message_hooks(app)
    return app
