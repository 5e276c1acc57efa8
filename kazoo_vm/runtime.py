"""Process wiring shared by the server and the command line: which CouchDB to use (the configured one or the bundled
development server), waiting for it to answer, and the databases every deployment needs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kazoo_vm import devserver
from kazoo_vm.config import Settings
from kazoo_vm.config_reference import mask_url
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import StorageUnreachable


@contextmanager
def couch_for(
    settings: Settings, *, announce: bool = False, on_couch_exit: Callable[[int], None] | None = None
) -> Iterator[Settings]:
    """Settings whose ``couch_url`` is reachable: the configured CouchDB, the bundled server of a running
    ``kazoo-vm serve``, or a bundled server started here (and stopped on exit; it also exits by itself when
    this process dies). ``on_couch_exit(code)`` is called, from another thread, if a bundled server started
    here dies first."""
    if settings.couch_url is not None:
        yield settings
        return
    running = devserver.running_url(settings)
    if running is not None:
        yield dataclasses.replace(settings, couch_url=running)
        return
    bundled = devserver.start_for(settings)
    devserver.write_state(settings, bundled.url)
    if on_couch_exit is not None:
        bundled.watch(on_couch_exit)
    if announce:
        print(
            f"bundled CouchDB (development server) at {mask_url(bundled.url)}, data in "
            f"{settings.data_dir / 'couchdb'}, admin password in {settings.data_dir / devserver.PASSWORD_FILE}",
            flush=True,
        )
    try:
        yield dataclasses.replace(settings, couch_url=bundled.url)
    finally:
        devserver.clear_state(settings)
        bundled.stop()


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
