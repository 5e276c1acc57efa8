"""Legacy (pre-4.0) message ids in the message API — the seam between the message API and the migrator.

Kazoo before 4.0 kept message metadata in the box document's ``messages`` array (32-hex ``media_id``) and the
audio in ``private_media`` documents. Kazoo's API doc promises that an old-format message touched through the API
is moved to the new format (its id changes); Kazoo 4.3's code never did (kazoo-storage-model.md §8). Here:

* an id still in the box's array is migrated on the spot by the migrator's own routine;
* an id already migrated is found through ``pvt_previous_id`` (view ``legacy_messages/by_previous_id`` in the
  account's MODBs), also after the message was moved within the box and got a fresh id;
* unmigrated entries are listed alongside the MODB messages.
"""

from __future__ import annotations

import asyncio

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.migrate.legacy import (
    entries_of,
    entry_timestamp,
    fallback_timestamp,
    media_id_of,
    summary,
)
from kazoo_vm.migrate.routine import BOX_BUSY, Status, migrate_entries
from kazoo_vm.migrate.tasks import gather_or_cancel
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, JsonDict, ViewRow
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound

# MODB view queries in flight at once when looking an old id up.
_LOOKUP_CONCURRENCY = 8


async def resolve_legacy_id(
    store: CouchStore, settings: Settings, account: Account, box: JsonDict, legacy_id: str
) -> str | None:
    """The MODB id for a legacy 32-hex message id of ``box``: migrate the entry first if it is still in the
    box's ``messages`` array, or find the document already migrated from it (``pvt_previous_id``).
    None when the id is unknown to this box, or its entry cannot be migrated (no audio: it stays listed, with
    ``migration_error``, for the operator's report)."""
    entries = [entry for entry in entries_of(box) if media_id_of(entry) == legacy_id]
    if entries:
        timezone = await box_timezone(store, settings, account, box)
        outcomes = await migrate_entries(store, account_id=account.id, box=box, entries=entries, default_timezone=timezone)
        for outcome in outcomes:
            if outcome.legacy_id != legacy_id:
                continue
            if outcome.status is Status.MIGRATED or (outcome.status is Status.ALREADY and outcome.detail != "moved"):
                return outcome.new_id
            if outcome.status is Status.FAILED:
                # Written and verified, only the box kept changing: the document is there to act on.
                return outcome.new_id if outcome.reason == BOX_BUSY else None
    return await find_migrated(store, account.id, box["_id"], legacy_id)


async def find_migrated(store: CouchStore, account_id: str, box_id: str, legacy_id: str) -> str | None:
    """The live message of ``box_id`` migrated from ``legacy_id``: one ``_all_dbs`` range request for the
    account's MODBs, then their ``by_previous_id`` views in parallel. The deterministic ``YYYYMM-<old id>`` wins
    over a later copy; otherwise the newest month."""
    prefix = naming.account_db(account_id) + "-"
    modbs = sorted(await store.all_dbs_between(prefix + "000000", prefix + "999999"), reverse=True)
    limit = asyncio.Semaphore(_LOOKUP_CONCURRENCY)

    async def lookup(db: str) -> list[ViewRow]:
        async with limit:
            try:
                return await query_view(store, db, "modb", "legacy_messages", "by_previous_id", key=legacy_id)
            except DatabaseNotFound:
                return []

    found = await gather_or_cancel(lookup(db) for db in modbs)
    ids = [
        str(row.id)
        for rows in found
        for row in rows
        if row.id and isinstance(row.value, dict) and row.value.get("source_id") == box_id
    ]
    deterministic = [message_id for message_id in ids if message_id.split("-", 1)[-1] == legacy_id]
    candidates = deterministic or ids
    return candidates[0] if candidates else None


async def legacy_summaries(store: CouchStore, settings: Settings, account: Account, box: JsonDict) -> list[JsonDict]:
    """Listing items (same shape as ``listing_by_mailbox`` values) for the box's not-yet-migrated entries,
    newest first, with their legacy ids as ``media_id``. The timestamp is the one the entry will be migrated
    with (Kazoo's fallback when it has none), so the message keeps its place in the list once migrated.
    Entries without a ``media_id`` cannot be addressed and are left out; the caller applies its time window."""
    del settings
    firsts: dict[str, JsonDict] = {}
    for entry in entries_of(box):
        legacy_id = media_id_of(entry)
        if legacy_id is not None and legacy_id not in firsts:
            firsts[legacy_id] = entry
    undated = [legacy_id for legacy_id, entry in firsts.items() if entry_timestamp(entry) is None]
    media: dict[str, JsonDict] = {}
    if undated:
        rows = await store.all_docs(account.db, keys=undated, include_docs=True)
        media = {str(row.id): row.doc for row in rows if row.doc is not None}
    now = naming.now_gregorian()
    items = []
    for legacy_id, entry in firsts.items():
        timestamp = entry_timestamp(entry) or fallback_timestamp(media.get(legacy_id), box, now)
        items.append(summary(entry, legacy_id, timestamp))
    items.sort(key=lambda item: int(item["timestamp"]), reverse=True)
    return items
