"""Claiming, finishing and rescheduling outbox items, safely across processes.

A worker owns an item from a successful write of ``state: claimed`` over the revision it read (CouchDB refuses a
stale ``_rev``, so of two claimers one wins) until ``lease_until``; a worker that dies lets the lease run out and
another one takes the item again. Every claim counts as an attempt, so an item whose delivery kills its worker
cannot be retried forever. A failed attempt is retried after an exponential pause with jitter, until
``max_attempts``; then the item is ``failed`` and stays listed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kazoo_vm.events import MessageEvent
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.outbox import Item


@dataclass(frozen=True)
class Backoff:
    first_s: float
    max_s: float

    def pause(self, attempts: int) -> float:
        """The pause after the ``attempts``-th failure: doubled each time up to ``max_s``, then ±50 % jitter so
        that items failing together do not come back together."""
        base: float = min(self.first_s * 2.0 ** max(attempts - 1, 0), self.max_s)
        return base * random.uniform(0.5, 1.5)


def new_item(
    kind: outbox.Kind,
    account_id: str,
    event: str,
    payload: JsonDict,
    *,
    item_id: str | None = None,
    max_attempts: int = 1,
    hook_id: str | None = None,
    hook_account_id: str | None = None,
    next_attempt_at: float | None = None,
) -> Item:
    now = time.time()
    return Item(
        id=item_id or uuid.uuid4().hex,
        kind=kind,
        account_id=account_id,
        event=event,
        payload=payload,
        created=now,
        max_attempts=max_attempts,
        next_attempt_at=now if next_attempt_at is None else next_attempt_at,
        hook_id=hook_id,
        hook_account_id=hook_account_id,
    )


def is_due(item: Item, now: float) -> bool:
    due = item.due_at()
    return due is not None and due <= now


Save = Callable[[Item], Awaitable[bool]]


def direct(store: CouchStore, db: str) -> Save:
    """Each save its own request (the command line, tests); a worker batches them (:class:`Batcher`)."""
    return lambda item: outbox.save(store, db, item)


class Batcher:
    """Saves items over their revisions, many in one ``_bulk_docs`` request: saves asked for while a request is
    in flight go together in the next one (at most ``size``). Each save still succeeds or conflicts on its own
    revision, as a single write does."""

    def __init__(self, store: CouchStore, db: str, size: int) -> None:
        self.store, self.db, self.size = store, db, size
        self._waiting: list[tuple[Item, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
            try:
                saved = await outbox.save_all(self.store, self.db, [item for item, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), ok in zip(batch, saved, strict=True):
                if not done.done():
                    done.set_result(ok)


def mark_claimed(item: Item, owner: str, lease_s: float, now: float) -> None:
    item.state = "claimed"
    item.claimed_by = owner
    item.lease_until = now + lease_s
    item.attempts += 1


async def claim(store: CouchStore, db: str, item: Item, owner: str, lease_s: float, save: Save | None = None) -> bool:
    """Take ``item`` (as read) for ``lease_s`` seconds; False when it is not due or another worker took it."""
    now = time.time()
    if not is_due(item, now):
        return False
    mark_claimed(item, owner, lease_s, now)
    return await (save or direct(store, db))(item)


async def not_yet(save: Save, item: Item, pause: float) -> bool:
    """Give a claimed event back, due again after ``pause`` seconds; the claim does not count as an attempt."""
    item.state = "pending"
    item.attempts = max(item.attempts - 1, 0)
    item.lease_until = None
    item.next_attempt_at = time.time() + pause
    return await save(item)


async def add_claimed(store: CouchStore, db: str, items: list[Item], owner: str, lease_s: float) -> list[Item]:
    """Write new items already claimed by ``owner`` (one attempt each: new items have had none), in one request;
    returns those written (an id already there, from an earlier fan-out of the same event, is someone else's to
    deliver)."""
    now = time.time()
    for item in items:
        mark_claimed(item, owner, lease_s, now)
    return await outbox.add_new(store, db, items)


async def delivered(save: Save, item: Item, note: str | None = None) -> bool:
    item.state = "delivered"
    item.finished_at = time.time()
    item.lease_until = None
    item.last_error = note
    return await save(item)


async def attempt_failed(save: Save, item: Item, error: str, backoff: Backoff) -> bool:
    """Schedule the next attempt, or mark the item failed when it had its last."""
    item.last_error = error
    item.lease_until = None
    if item.attempts >= item.max_attempts:
        item.state = "failed"
        item.finished_at = time.time()
    else:
        item.state = "pending"
        item.next_attempt_at = time.time() + backoff.pause(item.attempts)
    return await save(item)


async def give_up(save: Save, item: Item, error: str) -> bool:
    """Mark the item failed at once (nothing a retry could change, e.g. its hook was deleted)."""
    item.attempts = max(item.attempts, item.max_attempts)
    return await attempt_failed(save, item, error, Backoff(0, 0))


async def retry(store: CouchStore, db: str, item_id: str) -> Item:
    """An operator's retry: the item is pending again, due now, with its attempts counted afresh."""
    item = await outbox.read(store, db, item_id)
    item.state = "pending"
    item.attempts = 0
    item.next_attempt_at = time.time()
    item.lease_until = None
    item.finished_at = None
    await outbox.save(store, db, item)
    return item


def event_item(notification: str, event: MessageEvent, fields: JsonDict, max_attempts: int, due: float) -> Item:
    return new_item("event", event.account_id, notification, fields, max_attempts=max_attempts, next_attempt_at=due)
