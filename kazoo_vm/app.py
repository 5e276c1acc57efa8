"""The one composition root: settings, the CouchDB store's lifecycle, middleware, routes, the event listeners and
the hooks that join box and message rules."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.tokens import TokenService, load_or_create_signing_key
from kazoo_vm.config import Settings
from kazoo_vm.domain.messages import changes as message_changes
from kazoo_vm.domain.messages import counts as message_counts
from kazoo_vm.events import Events, Listener
from kazoo_vm.http.middleware import kazoo_middleware
from kazoo_vm.routes import setup_routes
from kazoo_vm.runtime import prepare_couch, wait_for_couch
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_sync import sync_if_changed
from kazoo_vm.storage.errors import StorageError

log = logging.getLogger(__name__)


async def _sync_design_docs(store: CouchStore, settings: Settings) -> None:
    try:
        # The lease names this process: node, pid and a random part (two processes may share node and pid).
        await sync_if_changed(
            store,
            holder=f"{settings.node_name}/{os.getpid()}/{uuid.uuid4().hex[:8]}",
            workers=settings.design_sync_workers,
            page_size=settings.design_sync_page,
        )
    except StorageError:
        log.exception("design document sync at start-up failed; views are repaired when first queried")


def install_hooks(app: web.Application) -> None:
    """Box listing counts and what happens to a box's messages when it is deleted (cb_vmboxes delete/2 soft-deletes
    them first): message rules the box module cannot import."""
    app[appkeys.COUNTS] = message_counts.account_counts
    app[appkeys.BOX_DELETED_HOOK] = message_changes.delete_box_messages


def create_app(
    settings: Settings,
    *,
    sync_design_docs: bool | None = None,
    listeners: Iterable[Listener] = (),
) -> web.Application:
    """The aiohttp application; ``sync_design_docs`` overrides the setting (tests switch it off); ``listeners``
    hear every message event (:mod:`kazoo_vm.events`; none by default)."""
    if settings.couch_url is None:
        raise ValueError("create_app needs settings.couch_url (kazoo-vm serve starts the bundled CouchDB first)")
    couch_url = settings.couch_url
    app = web.Application(middlewares=[kazoo_middleware], client_max_size=settings.max_upload_bytes + 1024 * 1024)
    app[appkeys.SETTINGS] = settings
    app[appkeys.EVENTS] = Events(listeners)

    async def couch_context(app: web.Application) -> AsyncIterator[None]:
        store = CouchStore(couch_url)
        try:
            await wait_for_couch(store)
            await prepare_couch(store)
            app[appkeys.STORE] = store
            app[appkeys.TOKENS] = TokenService(await load_or_create_signing_key(store), settings.token_expiry_s)
            sync = settings.sync_design_docs if sync_design_docs is None else sync_design_docs
            # One read when nothing changed; a walk of every database (by one process of the cluster) when our
            # design documents did, which can take a while on a big cluster: serve meanwhile.
            syncing = asyncio.create_task(_sync_design_docs(store, settings)) if sync else None
            yield
            if syncing is not None:
                syncing.cancel()
                await asyncio.gather(syncing, return_exceptions=True)
        finally:
            await store.close()

    app.cleanup_ctx.append(couch_context)
    setup_routes(app)
    install_hooks(app)
    return app
