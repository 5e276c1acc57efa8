"""Next month's databases, made ahead of time (``kazoo-vm modbs precreate``).

Left alone, each account's MODB for a new month is created by its first message of that month, so on the 1st the
cluster sees thousands of database creations and design-document writes within the first hours, each first query
building empty indexes. Run a few days before the month ends, this walks the accounts a page at a time and, at no
more than ``rate`` databases a second, creates each account's MODB with its design documents and queries each design
document once, so that the (empty) indexes exist: the month's first message then finds its database ready and no
index build in its way. It is idempotent; several runs at once only repeat each other's no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from kazoo_vm.storage import naming
from kazoo_vm.storage.accounts import account_docs
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import design_docs, ensure_database, query_view
from kazoo_vm.storage.errors import StorageError

log = logging.getLogger(__name__)

ACCOUNT_PAGE = 200


@dataclass
class PrecreateReport:
    month: tuple[int, int]
    accounts: int = 0
    created: int = 0
    existing: int = 0
    failed: int = 0
    seconds: float = 0.0


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
    store: CouchStore, year: int, month: int, *, rate: float = 20.0, workers: int = 4
) -> PrecreateReport:
    """Create every account's MODB for ``year``-``month`` with its design documents and warm indexes, at most
    ``rate`` databases a second; databases that exist are only checked."""
    report = PrecreateReport(month=(year, month))
    started = time.monotonic()
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=workers * 2)

    async def worker() -> None:
        while (account_id := await queue.get()) is not None:
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

    async def feed() -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        async for doc in account_docs(store, page=ACCOUNT_PAGE):
            account_id = str(doc["_id"])
            # Pace the starts: the n-th database no earlier than n / rate seconds after the first.
            delay = begin + report.accounts / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            report.accounts += 1
            await queue.put(account_id)
            if report.accounts % 1000 == 0:
                log.info("precreate %04d%02d: %d accounts so far", year, month, report.accounts)
        for _ in range(workers):
            await queue.put(None)

    pool = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        await feed()
        await asyncio.gather(*pool)
    finally:
        for task in pool:
            task.cancel()
        await asyncio.gather(*pool, return_exceptions=True)
    report.seconds = time.monotonic() - started
    log.info(
        "precreate %04d%02d done: %d accounts, %d databases created, %d existed, %d failed, in %.1f s",
        year,
        month,
        report.accounts,
        report.created,
        report.existing,
        report.failed,
        report.seconds,
    )
    return report
