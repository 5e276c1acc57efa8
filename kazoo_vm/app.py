"""The one composition root: settings, the CouchDB store's lifecycle, middleware, routes, the API docs, the
operators' endpoints (request log and metrics, health probes, /metrics), the event listeners and the hooks that join
box and message rules."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.tokens import TokenService, follow_signing_key, load_or_create_signing_key
from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import AccountCache
from kazoo_vm.domain.messages import changes as message_changes
from kazoo_vm.domain.messages import counts as message_counts
from kazoo_vm.events import Events, Listener
from kazoo_vm.handlers.docs import setup_docs
from kazoo_vm.http import health, metrics_endpoint, observe
from kazoo_vm.http.middleware import kazoo_middleware
from kazoo_vm.notify.listener import outbox_recorder
from kazoo_vm.notify.worker import Worker
from kazoo_vm.routes import setup_routes
from kazoo_vm.runtime import prepare_couch, wait_for_couch
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_sync import sync_if_changed
from kazoo_vm.storage.errors import StorageError
from kazoo_vm.storage.rollover import precreate_ahead

log = logging.getLogger(__name__)


def _holder(settings: Settings) -> str:
    """This process in a cluster-wide lease: node, pid and a random part (two processes may share node and pid)."""
    return f"{settings.node_name}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


async def _sync_design_docs(store: CouchStore, settings: Settings) -> None:
    try:
        await sync_if_changed(
            store,
            holder=_holder(settings),
            workers=settings.design_sync_workers,
            page_size=settings.design_sync_page,
            share=settings.design_sync_share,
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
    app = web.Application(
        middlewares=[kazoo_middleware],
        client_max_size=settings.max_upload_bytes + 1024 * 1024,
        # Idle keep-alive connections are closed after this long (aiohttp's default is 75 s).
        # What a client still sends after its answer (a body cut off with 408) is read and dropped for at most
        # lingering_time, then the connection is closed (aiohttp's default is 10 s).
        handler_args={"keepalive_timeout": settings.keepalive_timeout_s, "lingering_time": 2.0},
    )
    app[appkeys.SETTINGS] = settings
    # Notifications: every message event that is one is written to the outbox before the write that makes it true
    # (durable), then delivered by the workers of whichever process claims it.
    recorder = outbox_recorder(lambda: app[appkeys.STORE], settings.notifications_db)
    app[appkeys.EVENTS] = Events(listeners, recorders=[recorder])
    app[appkeys.ACCOUNTS] = AccountCache(settings.account_cache_s)

    async def couch_context(app: web.Application) -> AsyncIterator[None]:
        store = CouchStore(
            couch_url, timeout_s=settings.couch_timeout_s, missing_db_recheck_s=settings.missing_db_recheck_s
        )
        try:
            await wait_for_couch(store)
            await prepare_couch(store)
            app[appkeys.STORE] = store
            tokens = TokenService(
                await load_or_create_signing_key(store, key_file=settings.token_key_file),
                settings.token_expiry_s,
                key_in_couch=settings.token_key_file is None,
            )
            app[appkeys.TOKENS] = tokens
            following = (
                asyncio.create_task(follow_signing_key(store, tokens, settings.signing_key_check_s))
                if settings.signing_key_check_s > 0 and settings.token_key_file is None
                else None
            )
            sync = settings.sync_design_docs if sync_design_docs is None else sync_design_docs
            # One read when nothing changed; a walk of every database (by one process of the cluster) when our
            # design documents did, which can take a while on a big cluster: serve meanwhile.
            syncing = asyncio.create_task(_sync_design_docs(store, settings)) if sync else None
            health.track_startup_sync(app, syncing)
            # Next month's MODBs, made in the last days of this one by one process of the cluster at a time.
            ahead = (
                asyncio.create_task(
                    precreate_ahead(
                        store,
                        holder=_holder(settings),
                        rate=settings.modb_precreate_rate,
                        days=settings.modb_precreate_days,
                    )
                )
                if settings.modb_precreate_rate > 0
                else None
            )
            await outbox.prepare(store, settings.notifications_db)
            workers = [asyncio.create_task(Worker(store, settings).run()) for _ in range(settings.notify_workers)]
            yield
            background = [*workers, *(task for task in (syncing, following, ahead) if task is not None)]
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        finally:
            await store.close()

    app.cleanup_ctx.append(couch_context)
    setup_routes(app)
    setup_docs(app)
    # Operators' view: the request log line and metrics (outermost middleware), health probes, /metrics.
    observe.install(app)
    health.install(app)
    metrics_endpoint.install(app, settings)
    install_hooks(app)
    return app
