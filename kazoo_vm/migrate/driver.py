"""Which boxes to migrate, in batches, by a pool of asyncio workers (``kazoo-vm migrate``).

Boxes with legacy entries are found with Kazoo's own ``vmboxes/crossbar_listing`` view (its ``messages`` value is
the length of the legacy array), one query per account, which also grows the progress bar's total as accounts are
read (a page of the accounts database at a time, streamed into the workers). Each worker
takes one box at a time and walks its array in batches; boxes of one account and different accounts run in
parallel. Unlike Kazoo's crawler there is no pause between accounts: every write is already bounded by the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo_vm.concurrency import gather_or_cancel
from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.legacy.entries import entries_of, media_id_of
from kazoo_vm.domain.legacy.modbs import ModbCheck
from kazoo_vm.domain.legacy.outcomes import Options, Outcome, Status
from kazoo_vm.domain.legacy.routine import migrate_entries
from kazoo_vm.events import NO_EVENTS, Events
from kazoo_vm.migrate.report import Report
from kazoo_vm.progress import Progress, Silent
from kazoo_vm.storage import accounts as stored_accounts
from kazoo_vm.storage import boxes as stored_boxes
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import (
    DatabaseNotFound,
    DocumentNotFound,
    KeptChanging,
    NotFound,
    StorageError,
)

# Accounts read per request of the accounts database's listing.
ACCOUNT_PAGE = 100


@dataclass(frozen=True)
class Selection:
    """Which legacy voicemail a run migrates."""

    account_ids: tuple[str, ...] = ()  # empty: every account in the accounts database
    box_ids: tuple[str, ...] = ()  # empty: every box with legacy entries


@dataclass(frozen=True)
class BoxJob:
    account: Account
    box_id: str
    entries: int

    @property
    def account_id(self) -> str:
        return self.account.id


def batches(entries: Sequence[Any], size: int) -> list[list[Any]]:
    """Groups of at most ``size`` distinct legacy ids, in array order; repeated ids ride with their first
    occurrence, and entries without an id go with the first batch (they only need their error recorded)."""
    groups: list[list[Any]] = []
    distinct: list[int] = []
    index: dict[str, int] = {}
    unidentified: list[Any] = []
    for entry in entries:
        legacy_id = media_id_of(entry)
        if legacy_id is None:
            unidentified.append(entry)
        elif legacy_id in index:
            groups[index[legacy_id]].append(entry)
        else:
            if not groups or distinct[-1] >= size:
                groups.append([])
                distinct.append(0)
            index[legacy_id] = len(groups) - 1
            groups[-1].append(entry)
            distinct[-1] += 1
    if unidentified:
        if groups:
            groups[0].extend(unidentified)
        else:
            groups.append(unidentified)
    return groups


class Migration:
    """One run over a selection; ``report`` fills as boxes finish."""

    def __init__(
        self,
        store: CouchStore,
        settings: Settings,
        *,
        options: Options,
        batch_size: int | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
        events: Events = NO_EVENTS,
    ) -> None:
        self.store = store
        self.events = events
        self.settings = settings
        self.options = options
        self.batch_size = max(1, batch_size or settings.migrate_batch_size)
        self.workers = max(1, workers or settings.migrate_workers)
        self.progress: Progress = progress or Silent()
        self.report = Report(dry_run=options.dry_run, purge_legacy_media=options.purge_legacy_media)
        self._modbs = ModbCheck()

    async def run(self, selection: Selection) -> Report:
        """A pipeline with bounded queues: accounts are read a page at a time, a few at once are asked which of
        their boxes hold legacy entries, and those boxes are migrated as they are found. The first box starts
        moving after one page of accounts, whatever the cluster's size, and memory holds a page, not the list."""
        jobs: asyncio.Queue[BoxJob | None] = asyncio.Queue(maxsize=self.workers * 4)

        async def produce() -> None:
            accounts: asyncio.Queue[Account | str | None] = asyncio.Queue(maxsize=self.workers * 2)

            async def feed() -> None:
                async for account in self._accounts(selection):
                    await accounts.put(account)
                for _ in range(self.workers):
                    await accounts.put(None)

            async def discover() -> None:
                while (account := await accounts.get()) is not None:
                    for job in await self._jobs(account, selection.box_ids):
                        self.progress.add_total(job.entries)
                        await jobs.put(job)

            await gather_or_cancel([feed(), *(discover() for _ in range(self.workers))])
            for _ in range(self.workers):
                await jobs.put(None)

        await gather_or_cancel([produce(), *(self._worker(jobs) for _ in range(self.workers))])
        self.report.finish()
        return self.report

    async def _accounts(self, selection: Selection) -> AsyncIterator[Account | str]:
        """Named accounts as given (each read and checked later); otherwise every account, a page at a time."""
        if selection.account_ids:
            for account_id in selection.account_ids:
                yield account_id
            return
        async for doc in stored_accounts.account_docs(self.store, page=ACCOUNT_PAGE, repair=not self.options.dry_run):
            yield Account.from_doc(doc)

    async def _account(self, account_id: str) -> Account | None:
        if not naming.is_account_id(account_id):
            self.report.error(account_id, "not an account id")
            return None
        try:
            doc = await self.store.get_doc(naming.ACCOUNTS_DB, account_id)
        except NotFound:
            self.report.error(account_id, "account not found")
            return None
        if doc.get("pvt_deleted"):
            # Kazoo creates no MODB for a deleted account (kazoo_modb:is_account_deleted).
            self.report.error(account_id, "account deleted")
            return None
        return Account.from_doc(doc)

    async def _jobs(self, named: Account | str, box_ids: Sequence[str]) -> list[BoxJob]:
        account_id = named.id if isinstance(named, Account) else named
        self.report.account(account_id)
        try:
            account = named if isinstance(named, Account) else await self._account(named)
        except StorageError as exc:
            self.report.error(account_id, f"reading the account failed: {exc}")
            return []
        if account is None:
            return []
        try:
            # A dry run must not even repair design documents.
            listed = await stored_boxes.legacy_message_counts(
                self.store, naming.account_db(account_id), repair=not self.options.dry_run
            )
        except DatabaseNotFound:
            self.report.error(account_id, "account database not found")
            return []
        except StorageError as exc:
            self.report.error(account_id, f"listing boxes failed: {exc}")
            return []
        jobs = []
        for box_id, count in listed:
            if count > 0 and (not box_ids or box_id in box_ids):
                jobs.append(BoxJob(account=account, box_id=box_id, entries=count))
        return jobs

    async def _worker(self, queue: asyncio.Queue[BoxJob | None]) -> None:
        while (job := await queue.get()) is not None:
            await self._migrate_box(job)

    async def _migrate_box(self, job: BoxJob) -> None:
        db = naming.account_db(job.account_id)
        try:
            box = await stored_boxes.read_box(self.store, db, job.box_id)
        except DocumentNotFound:
            self.progress.advance(job.entries)
            return
        except StorageError as exc:
            self.report.error(job.account_id, f"box {job.box_id}: reading it failed: {exc}")
            self.progress.advance(job.entries)
            return
        entries = entries_of(box)
        timezone: str | None = None
        for batch in batches(entries, self.batch_size):
            try:
                # The message name shows the box's local time; Kazoo looks the zone up box → owner → account.
                timezone = timezone or await box_timezone(Scope(self.store, self.settings, job.account), box)
                outcomes = await migrate_entries(
                    self.store,
                    account_id=job.account_id,
                    box=box,
                    entries=batch,
                    default_timezone=timezone,
                    options=self.options,
                    modbs=self._modbs,
                    node=self.settings.node_name,
                    events=self.events,
                )
            except KeptChanging as exc:
                outcomes = _all_failed(batch, f"box_update_failed: {exc}")
            except StorageError as exc:
                outcomes = _all_failed(batch, f"storage_error: {exc}")
            self.report.add(job.account_id, job.box_id, outcomes)
            self.progress.advance(len(batch))
        if len(entries) < job.entries:
            self.progress.advance(job.entries - len(entries))


def _all_failed(batch: Sequence[Any], reason: str) -> list[Outcome]:
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for entry in batch:
        legacy_id = media_id_of(entry)
        if legacy_id is None or legacy_id not in seen:
            outcomes.append(
                Outcome(legacy_id, Status.FAILED, reason=reason, entry=entry if legacy_id is None else None)
            )
        if legacy_id is not None:
            seen.add(legacy_id)
    return outcomes


async def migrate(
    store: CouchStore,
    selection: Selection,
    settings: Settings,
    *,
    options: Options,
    batch_size: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    events: Events = NO_EVENTS,
) -> Report:
    """Migrate the selection; batch size and workers default to the settings (``KAZOO_VM_MIGRATE_*``)."""
    migration = Migration(
        store, settings, options=options, batch_size=batch_size, workers=workers, progress=progress, events=events
    )
    return await migration.run(selection)
