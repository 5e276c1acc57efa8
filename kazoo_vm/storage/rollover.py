"""Next month's databases, made ahead of time: by ``kazoo-vm modbs precreate`` and by the service itself.

Left alone, each account's MODB for a new month is created by its first message of that month, so on the 1st the
cluster sees thousands of database creations and design-document writes within the first hours, each first query
building empty indexes. Made a few days before the month ends, each account's MODB is created with its design
documents and each design document queried once, so that the (empty) indexes exist: the month's first message then
finds its database ready and no index build in its way. The accounts are walked a page at a time, at no more than
``rate`` databases a second; creating is idempotent, so several runs at once only repeat each other's no-ops.

The service does it in the last days of each month (:func:`precreate_ahead`): one process of the cluster at a time,
under a lease in the marker document ``accounts/kazoo_vm_modb_precreate``, which records how far it got (the next
process resumes there if it stops) and, at the end, the month done, so that the others only read the marker.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from kazoo_vm.storage import naming
from kazoo_vm.storage.accounts import account_docs
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import design_docs, ensure_database, query_view
from kazoo_vm.storage.errors import StorageError
from kazoo_vm.storage.leases import live_holder, read_marker, take_lease

log = logging.getLogger(__name__)

ACCOUNT_PAGE = 200
MARKER_DB = naming.ACCOUNTS_DB
MARKER_ID = "kazoo_vm_modb_precreate"


@dataclass
class PrecreateReport:
    month: tuple[int, int]
    accounts: int = 0
    created: int = 0
    existing: int = 0
    failed: int = 0
    seconds: float = 0.0
    # The walk stopped before the last account: its lease was taken over by another process.
    interrupted: bool = False


@dataclass
class Pace:
    """At most ``rate`` starts a second: the n-th no earlier than n / ``rate`` seconds after the first. The clock
    and the sleep are injected, so tests check the pacing without waiting."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _first: float | None = field(default=None, init=False)
    _started: int = field(default=0, init=False)

    async def wait(self) -> None:
        now = self.clock()
        if self._first is None:
            self._first = now
        delay = self._first + self._started / self.rate - now
        self._started += 1
        if delay > 0:
            await self.sleep(delay)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


async def warm_indexes(store: CouchStore, db: str) -> None:
    """Query one view of each MODB design document (no rows asked): CouchDB builds the design document's index,
    all of its views at once, while the database is empty."""
    for ddoc in design_docs("modb"):
        views = sorted(ddoc.get("views", {}))
        if views:
            # Through query_view: a design document the creation failed to write is written again first.
            await query_view(store, db, "modb", str(ddoc["_id"]).removeprefix("_design/"), views[0], limit=0)


async def precreate_modbs(
    store: CouchStore,
    year: int,
    month: int,
    *,
    rate: float = 20.0,
    workers: int = 4,
    after: str | None = None,
    checkpoint: Callable[[str], Awaitable[bool]] | None = None,
    pace: Pace | None = None,
) -> PrecreateReport:
    """Create every account's MODB for ``year``-``month`` with its design documents and warm indexes, at most
    ``rate`` databases a second (``pace`` overrides it); databases that exist are only checked.

    ``after`` starts after that account id; ``checkpoint`` is called with the last account id of each page once the
    page is done, and stops the walk when it returns False."""
    report = PrecreateReport(month=(year, month))
    started = time.monotonic()
    pace = pace or Pace(rate)
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=workers * 2)

    async def worker() -> None:
        while True:
            account_id = await queue.get()
            db = naming.modb(account_id, year, month)
            try:
                if await ensure_database(store, db, "modb"):
                    report.created += 1
                else:
                    report.existing += 1
                await warm_indexes(store, db)
            except StorageError as exc:
                report.failed += 1
                log.warning("precreating %s failed: %s", db, exc)
            finally:
                queue.task_done()

    async def feed() -> None:
        in_page = 0
        async for doc in account_docs(store, page=ACCOUNT_PAGE, after=after):
            account_id = str(doc["_id"])
            await pace.wait()
            report.accounts += 1
            await queue.put(account_id)
            in_page += 1
            if report.accounts % 1000 == 0:
                log.info("precreate %04d%02d: %d accounts so far", year, month, report.accounts)
            if in_page == ACCOUNT_PAGE and checkpoint is not None:
                in_page = 0
                await queue.join()
                if not await checkpoint(account_id):
                    report.interrupted = True
                    return
        await queue.join()

    pool = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        await feed()
    finally:
        for task in pool:
            task.cancel()
        await asyncio.gather(*pool, return_exceptions=True)
    report.seconds = time.monotonic() - started
    log.info(
        "precreate %04d%02d %s: %d accounts, %d databases created, %d existed, %d failed, in %.1f s",
        year,
        month,
        "interrupted" if report.interrupted else "done",
        report.accounts,
        report.created,
        report.existing,
        report.failed,
        report.seconds,
    )
    return report


Status = Literal["not_due", "current", "busy", "done", "lost", "incomplete"]


@dataclass
class AheadResult:
    """What one :func:`precreate_when_due` did: ``not_due`` (not the last days of a month), ``current`` (next
    month done already), ``busy`` (another process holds the lease), ``done``, ``lost`` (the lease was taken over
    mid-walk), ``incomplete`` (some databases failed; the next check walks again)."""

    status: Status
    month: tuple[int, int] | None = None
    report: PrecreateReport | None = None


def due_month(now: float, days: int) -> tuple[int, int] | None:
    """The month whose MODBs are due at ``now`` (Unix seconds): the next one in the last ``days`` days of a month
    (UTC), else None."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    last_day = calendar.monthrange(moment.year, moment.month)[1]
    return next_month(moment.year, moment.month) if moment.day > last_day - days else None


async def precreate_when_due(
    store: CouchStore,
    *,
    holder: str,
    rate: float,
    days: int,
    clock: Callable[[], float] = time.time,
    pace: Pace | None = None,
    marker_db: str = MARKER_DB,
    marker_id: str = MARKER_ID,
) -> AheadResult:
    """In the last ``days`` days of a month, create every account's MODB of the next month (as
    :func:`precreate_modbs`) unless that month is recorded done, under the marker's lease; no request otherwise."""
    month = due_month(clock(), days)
    if month is None:
        return AheadResult("not_due")
    job = f"{month[0]:04d}{month[1]:02d}"
    marker = await read_marker(store, marker_db, marker_id)
    if marker is not None and marker.get("month") == job:
        return AheadResult("current", month)
    if live_holder(marker, holder, clock()) is not None:
        return AheadResult("busy", month)
    # Renewed after each page of accounts: long enough for a page at the rate, or a slow CouchDB's pace.
    lease_s = max(300.0, 3 * ACCOUNT_PAGE / rate)
    lease = await take_lease(
        store,
        marker_db,
        marker_id,
        marker,
        job=job,
        holder=holder,
        lease_s=lease_s,
        clock=clock,
        doc_type="kazoo_vm_modb_precreate",
    )
    if lease is None:
        return AheadResult("busy", month)
    log.info("precreating the MODBs of %s%s", job, f", resuming after account {lease.after}" if lease.after else "")
    report = await precreate_modbs(
        store, month[0], month[1], rate=rate, after=lease.after, checkpoint=lease.checkpoint, pace=pace
    )
    if report.interrupted:
        return AheadResult("lost", month, report)
    if report.failed:
        await lease.release()
        return AheadResult("incomplete", month, report)
    if not await lease.finish({"month": job, "done_at": int(clock())}):
        return AheadResult("lost", month, report)
    return AheadResult("done", month, report)


async def precreate_ahead(
    store: CouchStore,
    *,
    holder: str,
    rate: float,
    days: int,
    every_s: float = 3600.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """The service's background task: :func:`precreate_when_due` now and every ``every_s`` seconds, for ever."""
    while True:
        try:
            await precreate_when_due(store, holder=holder, rate=rate, days=days, clock=clock)
        except StorageError as exc:
            log.warning("precreating next month's MODBs failed (tried again in %.0f s): %s", every_s, exc)
        except Exception:  # a surprise must not end the checks for the rest of the process's life
            log.exception("precreating next month's MODBs failed (tried again in %.0f s)", every_s)
        await sleep(every_s)
