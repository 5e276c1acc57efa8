"""When and how the design documents of every database are brought up to date: the walk over the cluster.

A start-up does constant work: it reads one marker document (``accounts/kazoo_vm_design_sync``) holding the hash
of the design documents last brought to every database (:func:`design_set_hash`, over ``couch_design_docs/``);
when it matches, nothing else happens. When it does not, one process at a time walks the databases: it takes a
lease in that same document (a conditional write, so of several processes starting together exactly one wins),
reads ``_all_dbs`` a page at a time, hands each page to a few workers, and after each page records how far it got
and renews the lease. A walk that stops (crash, shutdown) is resumed from its last page by the next process that
finds the lease expired. Meanwhile a view query that finds its design document missing or stale repairs it
(:func:`~kazoo_vm.storage.design_docs.query_view`), so correctness never waits for the walk.

Design documents we no longer ship (merged into others) are deleted by the walk, and the database's index files
for them removed (``_view_cleanup``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from kazoo_vm.resources import design_docs_dir
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import DATABASE_CLASSES, bring_up_to_date
from kazoo_vm.storage.errors import DatabaseNotFound, StorageError
from kazoo_vm.storage.leases import Lease, live_holder, read_marker, take_lease

log = logging.getLogger(__name__)

MARKER_DB = naming.ACCOUNTS_DB
MARKER_ID = "kazoo_vm_design_sync"

# Design documents of ours that were merged into another one; the walk deletes them from every database.
RETIRED: dict[str, tuple[str, ...]] = {
    "modb": ("_design/kazoo_vm_counts", "_design/kazoo_vm_legacy_messages"),
}

Status = Literal["current", "busy", "done", "lost", "incomplete"]


@dataclass
class SyncResult:
    """What a call of :func:`sync_if_changed` did: ``current`` (nothing to do), ``busy`` (another process holds
    the lease), ``done`` (walked to the end), ``lost`` (another process took the lease over mid-walk),
    ``incomplete`` (some databases failed; the next start walks again)."""

    status: Status
    databases: int = 0
    written: int = 0
    retired: int = 0
    failed: int = 0
    seconds: float = 0.0


def design_set_hash() -> str:
    """A hash of every file under ``couch_design_docs/`` and of the retired names: it changes when and only when
    the design documents every database should have change."""
    digest = hashlib.sha256()
    root = design_docs_dir()
    for path in sorted(root.rglob("*.json")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(json.dumps(RETIRED, sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class _Walk:
    store: CouchStore
    lease: Lease
    result: SyncResult
    share: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def rest_after(self, busy_s: float) -> float:
        """How long a worker rests after ``busy_s`` spent on one database, so that it is busy at most ``share`` of
        the time: in proportion to its own latency, so a walk slows down as much as CouchDB is busy."""
        return busy_s * (1.0 / self.share - 1.0)

    async def one(self, db: str, db_class: str) -> None:
        try:
            brought = await bring_up_to_date(self.store, db, db_class, retire=RETIRED.get(db_class, ()))
            self.result.written += brought.written
            self.result.retired += brought.retired
        except DatabaseNotFound:
            pass  # deleted since _all_dbs listed it
        except StorageError as exc:
            self.result.failed += 1
            log.warning("design documents of %s not brought up to date: %s", db, exc)
        self.result.databases += 1


async def sync_if_changed(
    store: CouchStore,
    *,
    holder: str,
    marker_db: str = MARKER_DB,
    marker_id: str = MARKER_ID,
    workers: int = 2,
    page_size: int = 500,
    lease_s: float = 60.0,
    share: float = 1.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    wanted: str | None = None,
) -> SyncResult:
    """Bring every database's design documents up to date if our set changed since the last complete walk.

    ``holder`` names this process in the lease; each of the ``workers`` is busy at most ``share`` of the time
    (:meth:`_Walk.rest_after`); ``wanted`` overrides :func:`design_set_hash` (tests).
    """
    started = time.monotonic()
    wanted = wanted or design_set_hash()
    marker = await read_marker(store, marker_db, marker_id)
    if marker is not None and marker.get("hash") == wanted:
        log.info("design documents current (set %s): no sync needed", wanted[:12])
        return SyncResult("current")
    if (other := live_holder(marker, holder, clock())) is not None:
        log.info("design-document sync: another process (%s) is walking the databases", other)
        return SyncResult("busy")
    lease = await take_lease(
        store,
        marker_db,
        marker_id,
        marker,
        job=wanted,
        holder=holder,
        lease_s=lease_s,
        clock=clock,
        doc_type="kazoo_vm_design_sync",
    )
    if lease is None:
        log.info("design-document sync: another process took the lease first")
        return SyncResult("busy")
    resume = lease.after
    state = _Walk(store, lease, SyncResult("done"), share=share, sleep=sleep)
    log.info("design-document sync started (set %s)%s", wanted[:12], f", resuming after {resume}" if resume else "")
    status = await _walk(state, resume, workers=workers, page_size=page_size)
    if status == "done" and state.result.failed:
        status = "incomplete"
        # Give the lease back but keep the old hash: the next start walks again.
        await lease.release()
    elif status == "done" and not await lease.finish({"hash": wanted, "synced_at": int(clock())}):
        status = "lost"
    state.result.status = status
    state.result.seconds = time.monotonic() - started
    r = state.result
    log.info(
        "design-document sync %s: %d databases checked, %d design documents written, %d retired, %d failed, in %.1f s",
        status,
        r.databases,
        r.written,
        r.retired,
        r.failed,
        r.seconds,
    )
    return r


async def _walk(state: _Walk, after: str | None, *, workers: int, page_size: int) -> Status:
    """Pages of ``_all_dbs`` through a fixed pool of workers; a checkpoint after each page."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=workers * 2)

    async def worker() -> None:
        while True:
            db, db_class = await queue.get()
            started = time.monotonic()
            try:
                await state.one(db, db_class)
            except Exception:  # one database's surprise must not stall the walk
                state.result.failed += 1
                log.exception("design documents of %s not brought up to date", db)
            finally:
                queue.task_done()
            rest = state.rest_after(time.monotonic() - started)
            if rest > 0:
                await state.sleep(rest)

    pool = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        while True:
            names = await state.store.all_dbs_page(after, page_size)
            for db in names:
                db_class = naming.database_class(db)
                if db_class in DATABASE_CLASSES:
                    await queue.put((db, db_class))
            await queue.join()
            if len(names) < page_size:
                return "done"
            after = names[-1]
            if not await state.lease.checkpoint(after):
                log.warning("design-document sync: the lease was taken over by another process; stopping")
                return "lost"
            log.info(
                "design-document sync: %d databases checked, %d design documents written (up to %s)",
                state.result.databases,
                state.result.written,
                after,
            )
    finally:
        for task in pool:
            task.cancel()
        await asyncio.gather(*pool, return_exceptions=True)
