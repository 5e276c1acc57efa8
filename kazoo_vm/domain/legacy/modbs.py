"""Making sure of a MODB before the migrator writes into it: created when missing (Kazoo's migrator skipped such
months, ``no_modb``), and given its design documents."""

from __future__ import annotations

import asyncio

from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database

MODB_CLASS = "modb"


class ModbCheck:
    """The MODBs a run has already made sure of (created, design documents in place), so that concurrent batches
    check each one once instead of all racing to create it. Only a saving: creating a database and writing design
    documents are race-safe in CouchDB itself, across processes."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def forget(self, db: str) -> None:
        task = self._tasks.get(db)
        if task is not None and task.done():
            del self._tasks[db]

    async def ensure(self, store: CouchStore, db: str) -> None:
        task = self._tasks.get(db)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.get_running_loop().create_task(_ensure_modb(store, db))
            self._tasks[db] = task
        await task


async def _ensure_modb(store: CouchStore, db: str) -> None:
    # A MODB created by an interrupted run (or by another process a moment ago) may lack its design documents.
    await ensure_database(store, db, MODB_CLASS, found_missing=True)
