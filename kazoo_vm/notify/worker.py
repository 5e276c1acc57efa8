"""The delivery worker of one ``kazoo-vm serve`` process.

It follows the outbox database's ``_changes`` feed (long polls), so a new item is taken as soon as it is written,
by whichever process's worker claims it first (:mod:`kazoo_vm.notify.queue`). An item the feed shows that is not
due yet (an event waiting for its message, a retry, another worker's lease) is kept in a small schedule and taken
when its time comes, without asking CouchDB again; the ``due`` view is read at start-up and every few minutes, for
whatever the schedule cannot know (it is full, or the item changed while this worker was not following). The
worker sleeps in the long poll until the earliest time in its schedule, never polling in a tight loop.

Throughput: every state change of an item is a write over its revision, and the writes of items handled at the
same time go out together in one ``_bulk_docs`` request (:class:`~kazoo_vm.notify.queue.Batcher`); an event's
deliveries are written already claimed by the worker that fans it out, which carries them out at once with what it
has just read; up to ``notify_batch`` items are handled at once.
"""

from __future__ import annotations

import asyncio
import heapq
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
SWEEP_AGAIN_S = 30.0
SWEEP_LIMIT = 200
# An event whose message does not carry it yet is looked at again after about as long as it has waited so far.
NOT_YET_PAUSE_S = 0.25
NOT_YET_PAUSE_MAX_S = 30.0
# Items the schedule keeps at most; beyond, the due view finds them.
SCHEDULE_MAX = 10_000


class Worker:
    def __init__(self, store: CouchStore, settings: Settings, *, concurrency: int | None = None) -> None:
        self.store = store
        self.settings = settings
        self.db = settings.notifications_db
        self.owner = f"{settings.node_name}/{socket.gethostname()}/{os.getpid()}/{id(self):x}"
        self.backoff = queue.Backoff(settings.notify_backoff_s, settings.notify_backoff_max_s)
        self.save = queue.Batcher(store, self.db, settings.notify_batch)
        self._slots = asyncio.Semaphore(concurrency or settings.notify_batch)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Items seen but not due yet: the latest version of each, and (due, id) in time order (stale entries are
        # skipped when popped).
        self._later: dict[str, Item] = {}
        self._times: list[tuple[float, str]] = []
        self._sweep_at = 0.0
        # Set when something comes due sooner than the long poll in progress would end.
        self._nudge = asyncio.Event()
        self._waiting_until = 0.0

    def _next_wake(self) -> float:
        return min(self._sweep_at, self._times[0][0]) if self._times else self._sweep_at

    def _schedule(self, item: Item, due: float) -> None:
        if item.id not in self._later and len(self._later) >= SCHEDULE_MAX:
            self._sweep_at = min(self._sweep_at, due)  # the due view will find it
        else:
            self._later[item.id] = item
            heapq.heappush(self._times, (due, item.id))
        if due < self._waiting_until:
            self._nudge.set()

    def _take_due(self, now: float) -> list[Item]:
        found = []
        while self._times and self._times[0][0] <= now:
            due, item_id = heapq.heappop(self._times)
            item = self._later.get(item_id)
            if item is not None and item.due_at() == due:
                del self._later[item_id]
                found.append(item)
        return found

    async def _next_changes(self, since: str, wait_s: float) -> tuple[list[JsonDict], str]:
        """The long poll, cut short by a nudge (then nothing was read and ``since`` stays)."""
        self._nudge.clear()
        self._waiting_until = time.time() + wait_s
        polling = asyncio.ensure_future(self.store.changes(self.db, since, timeout_ms=int(wait_s * 1000)))
        nudged = asyncio.ensure_future(self._nudge.wait())
        try:
            await asyncio.wait({polling, nudged}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiting_until = 0.0
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
        ready = False
        while True:
            try:
                if not ready:
                    await outbox.prepare(self.store, self.db)
                    # After an error the feed goes on where it was: nothing written meanwhile is missed.
                    since = since or await self.store.update_seq(self.db)
                    self._sweep_at = 0.0
                    ready = True
                assert since is not None
                now = time.time()
                if now >= self._sweep_at:
                    await self._sweep(ctx)
                for item in self._take_due(time.time()):
                    self._consider(ctx, item, time.time())
                wait = min(max(self._next_wake() - time.time(), 0.05), LONGPOLL_MAX_S)
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
                ready = False
                await asyncio.sleep(PAUSE_AFTER_ERROR_S)

    async def _sweep(self, ctx: deliveries.Context) -> None:
        """Read the due view. A view CouchDB is slow to bring up to date (many items written since the last read)
        does not stop the feed: the sweep is tried again a little later."""
        now = time.time()
        self._sweep_at = now + SWEEP_EVERY_S
        try:
            found = await outbox.due(self.store, self.db, now, limit=SWEEP_LIMIT)
            for item in found:
                self._consider(ctx, item, now)
            upcoming = await outbox.next_due(self.store, self.db, now)
        except StorageError as exc:
            log.warning("notification worker: the due view could not be read (%s); trying again shortly", exc)
            self._sweep_at = now + SWEEP_AGAIN_S
            return
        if len(found) >= SWEEP_LIMIT:
            upcoming = now + 1.0  # more are due than one read returns: read again once these are under way
        if upcoming is not None:
            self._sweep_at = min(self._sweep_at, upcoming)

    def _consider(self, ctx: deliveries.Context, item: Item, now: float) -> None:
        due = item.due_at()
        if due is None:
            self._later.pop(item.id, None)  # finished
            return
        if due > now:
            # Also an item this worker is still finishing: its next time arrives through the feed.
            self._schedule(item, due)
            return
        self._later.pop(item.id, None)
        if item.id in self._busy:
            return
        self._busy.add(item.id)
        task = asyncio.create_task(self._process(ctx, item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, ctx: deliveries.Context, item: Item) -> None:
        try:
            async with self._slots:
                lease = self.settings.notify_lease_s
                if not await queue.claim(self.store, self.db, item, self.owner, lease, self.save):
                    return
                if item.kind == "event":
                    await self._fan_out(ctx, item)
                else:
                    await self._attempt(ctx, item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification %s: could not record its outcome", item.id)
        finally:
            self._busy.discard(item.id)

    async def _fan_out(self, ctx: deliveries.Context, item: Item) -> None:
        """Turn a claimed event into its deliveries, written claimed by this worker, then carry them out at once
        (an event that is not confirmed yet is looked at again shortly; one that never will be is removed)."""
        try:
            read = await deliveries.fan_out(ctx, item)
        except deliveries.NotYet:
            pause = min(max(time.time() - item.created, NOT_YET_PAUSE_S), NOT_YET_PAUSE_MAX_S)
            if await queue.not_yet(self.save, item, pause):
                self._schedule(item, item.next_attempt_at)
            return
        except deliveries.Void as exc:
            # Normal for a create the full-box check refused after its event was recorded; also the trace of a
            # writer that died between the event and its write.
            log.info("notification %s removed: %s", item.id, exc)
            await outbox.remove(self.store, self.db, item)
            return
        except deliveries.Undeliverable as exc:
            await queue.give_up(self.save, item, str(exc))
            return
        except (StorageError, KazooError) as exc:
            await self._retry_later(item, f"{type(exc).__name__}: {exc}")
            return
        mine = await queue.add_claimed(self.store, self.db, read.deliveries, self.owner, self.settings.notify_lease_s)
        if not await queue.delivered(self.save, item, f"{len(read.deliveries)} deliveries"):
            log.warning("notification %s was fanned out after its lease ran out", item.id)
        outcomes = await asyncio.gather(*(self._attempt(ctx, one, read) for one in mine), return_exceptions=True)
        for delivery, outcome in zip(mine, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("notification %s: could not record its outcome", delivery.id, exc_info=outcome)

    async def _retry_later(self, item: Item, error: str) -> None:
        saved = await queue.attempt_failed(self.save, item, error, self.backoff)
        metrics.record_delivery(item.kind, "retry" if item.state == "pending" else "failed")
        if saved and item.state == "pending":
            self._schedule(item, item.next_attempt_at)

    async def _attempt(self, ctx: deliveries.Context, item: Item, known: deliveries.Read | None = None) -> None:
        try:
            note = await deliveries.deliver(ctx, item, known)
        except deliveries.Undeliverable as exc:
            await queue.give_up(self.save, item, str(exc))
            metrics.record_delivery(item.kind, "failed")
            return
        except deliveries.DeliveryFailed as exc:
            await self._retry_later(item, str(exc))
            return
        except (StorageError, KazooError) as exc:
            await self._retry_later(item, f"{type(exc).__name__}: {exc}")
            return
        metrics.record_delivery(item.kind, "delivered")
        if not await queue.delivered(self.save, item, note):
            log.warning("notification %s was delivered after its lease ran out", item.id)
