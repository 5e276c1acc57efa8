"""The delivery worker of one ``kazoo-vm serve`` process.

It follows the outbox database's ``_changes`` feed (long polls), so a new item is taken as soon as it is written,
by whichever process's worker claims it first (:mod:`kazoo_vm.notify.queue`). Items waiting for a retry or for an
expired lease are found through the ``due`` view when their time comes: the worker sleeps in the long poll until
the earliest such time (or a few minutes at most), never polling in a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import aiohttp

from kazoo_vm.config import Settings
from kazoo_vm.errors import KazooError
from kazoo_vm.model import JsonDict
from kazoo_vm.notify import deliveries, queue
from kazoo_vm.observability import metrics
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import StorageError
from kazoo_vm.storage.outbox import Item

log = logging.getLogger(__name__)

# A long poll must end before the store's request timeout (30 s).
LONGPOLL_MAX_S = 20.0
# Even with nothing due, the due view is read this often: items of a process that died without a change since.
SWEEP_EVERY_S = 300.0
PAUSE_AFTER_ERROR_S = 2.0


class Worker:
    def __init__(self, store: CouchStore, settings: Settings, *, concurrency: int = 16) -> None:
        self.store = store
        self.settings = settings
        self.db = settings.notifications_db
        self.owner = f"{settings.node_name}/{socket.gethostname()}/{os.getpid()}/{id(self):x}"
        self.backoff = queue.Backoff(settings.notify_backoff_s, settings.notify_backoff_max_s)
        self._slots = asyncio.Semaphore(concurrency)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_at = 0.0
        # Set when a retry is scheduled sooner than the long poll in progress would end.
        self._nudge = asyncio.Event()

    def _wake_by(self, when: float) -> None:
        if when < self._wake_at:
            self._wake_at = when
            self._nudge.set()

    async def _next_changes(self, since: str, wait_s: float) -> tuple[list[JsonDict], str]:
        """The long poll, cut short by a nudge (then nothing was read and ``since`` stays)."""
        self._nudge.clear()
        polling = asyncio.ensure_future(self.store.changes(self.db, since, timeout_ms=int(wait_s * 1000)))
        nudged = asyncio.ensure_future(self._nudge.wait())
        try:
            await asyncio.wait({polling, nudged}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nudged.cancel()
            if not polling.done():
                polling.cancel()
                await asyncio.gather(polling, return_exceptions=True)
        if polling.cancelled():
            return [], since
        return polling.result()

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            ctx = deliveries.Context(self.store, self.settings, session)
            try:
                await self._loop(ctx)
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _loop(self, ctx: deliveries.Context) -> None:
        since: str | None = None
        while True:
            try:
                if since is None:
                    await outbox.prepare(self.store, self.db)
                    since = await self.store.update_seq(self.db)
                    self._wake_at = 0.0
                now = time.time()
                if now >= self._wake_at:
                    await self._sweep(ctx)
                wait = min(max(self._wake_at - time.time(), 0.05), LONGPOLL_MAX_S)
                docs, since = await self._next_changes(since, wait)
                now = time.time()
                for doc in docs:
                    if outbox.is_item(doc):
                        self._consider(ctx, Item.from_doc(doc), now)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever went wrong (CouchDB unreachable, most likely), the worker must not stop for good.
                log.exception("notification worker failed; starting over shortly")
                since = None
                await asyncio.sleep(PAUSE_AFTER_ERROR_S)

    async def _sweep(self, ctx: deliveries.Context) -> None:
        now = time.time()
        # Raised first, then only lowered: a retry scheduled while the sweep waits on CouchDB keeps its time.
        self._wake_at = now + SWEEP_EVERY_S
        for item in await outbox.due(self.store, self.db, now):
            self._consider(ctx, item, now)
        upcoming = await outbox.next_due(self.store, self.db)
        if upcoming is not None and upcoming > now:
            self._wake_by(upcoming)

    def _consider(self, ctx: deliveries.Context, item: Item, now: float) -> None:
        due = item.due_at()
        if due is None:
            return
        if due > now:
            # Also for an item this worker is still finishing: its retry time arrives through the feed.
            self._wake_by(due)
            return
        if item.id in self._busy:
            return
        self._busy.add(item.id)
        task = asyncio.create_task(self._process(ctx, item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, ctx: deliveries.Context, item: Item) -> None:
        try:
            async with self._slots:
                if not await queue.claim(self.store, self.db, item, self.owner, self.settings.notify_lease_s):
                    return
                await self._attempt(ctx, item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification %s: could not record its outcome", item.id)
        finally:
            self._busy.discard(item.id)

    async def _attempt(self, ctx: deliveries.Context, item: Item) -> None:
        try:
            note = await deliveries.deliver(ctx, item)
        except deliveries.Undeliverable as exc:
            await queue.give_up(self.store, self.db, item, str(exc))
            metrics.record_delivery(item.kind, "failed")
            return
        except deliveries.DeliveryFailed as exc:
            failed = await queue.attempt_failed(self.store, self.db, item, str(exc), self.backoff)
        except (StorageError, KazooError) as exc:
            failed = await queue.attempt_failed(self.store, self.db, item, f"{type(exc).__name__}: {exc}", self.backoff)
        else:
            metrics.record_delivery(item.kind, "delivered")
            if not await queue.delivered(self.store, self.db, item, note):
                log.warning("notification %s was delivered after its lease ran out", item.id)
            return
        metrics.record_delivery(item.kind, "retry" if item.state == "pending" else "failed")
        if failed and item.state == "pending":
            self._wake_by(item.next_attempt_at)
