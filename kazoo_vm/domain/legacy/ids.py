"""Legacy (pre-4.0) message ids in the message API — the seam between the message API and the migrator.

Kazoo before 4.0 kept message metadata in the box document's ``messages`` array (32-hex ``media_id``) and the
audio in ``private_media`` documents. Kazoo's API doc promises that an old-format message touched through the API
is moved to the new format (its id changes); Kazoo 4.3's code never did (docs/compatibility.md). Here:

* an id still in the box's array is migrated on the spot by the migrator's own routine;
* an id already migrated is found through ``pvt_previous_id`` (indexed in the MODBs of the retention window),
  also after the message was moved within the box and got a fresh id, or by its deterministic id
  ``YYYYMM-<old id>`` in the account's older MODBs;
* unmigrated entries are listed alongside the MODB messages.
"""

from __future__ import annotations

import logging

from kazoo_vm.concurrency import gather_bounded, gather_or_cancel
from kazoo_vm.config import Settings
from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.legacy.entries import (
    entries_of,
    entry_timestamp,
    fallback_timestamp,
    media_id_of,
    summary,
)
from kazoo_vm.domain.legacy.outcomes import BOX_BUSY, Status
from kazoo_vm.domain.legacy.routine import migrate_entries
from kazoo_vm.domain.messages import retention
from kazoo_vm.model import BoxDoc, JsonDict, LegacyEntry, LegacySummary
from kazoo_vm.storage import legacy as stored_legacy
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DatabaseNotFound

log = logging.getLogger(__name__)

# MODB view queries in flight at once when looking an old id up.
_LOOKUP_CONCURRENCY = 8


async def resolve_legacy_id(scope: Scope, box: BoxDoc, legacy_id: str) -> str | None:
    """The MODB id for a legacy 32-hex message id of ``box``: migrate the entry first if it is still in the
    box's ``messages`` array, or find the document already migrated from it (``pvt_previous_id``).
    None when the id is unknown to this box, or its entry cannot be migrated (no audio: it stays listed, with
    ``migration_error``, for the operator's report)."""
    entries = [entry for entry in entries_of(box) if media_id_of(entry) == legacy_id]
    if entries:
        store, settings, account = scope.store, scope.settings, scope.account
        timezone = await box_timezone(scope, box)
        outcomes = await migrate_entries(
            store,
            account_id=account.id,
            box=box,
            entries=entries,
            default_timezone=timezone,
            node=settings.node_name,
            events=scope.events,
        )
        for outcome in outcomes:
            if outcome.legacy_id != legacy_id:
                continue
            if outcome.status is Status.MIGRATED or (outcome.status is Status.ALREADY and outcome.detail != "moved"):
                return outcome.new_id
            if outcome.status is Status.FAILED:
                # Written and verified, only the box kept changing: the document is there to act on.
                return outcome.new_id if outcome.reason == BOX_BUSY else None
    return await find_migrated(scope.store, scope.settings, scope.account.id, box["_id"], legacy_id)


async def find_migrated(
    store: CouchStore, settings: Settings, account_id: str, box_id: str, legacy_id: str, *, now: int | None = None
) -> str | None:
    """The live message of ``box_id`` migrated from ``legacy_id``.

    The old id does not say which month the message went to, so first the MODBs of the retention window, known
    by name (no ``_all_dbs``): their index of ``pvt_previous_id``, in parallel, a missing database
    being simply empty. That covers what clients still see, and any message moved within the box (a move goes to
    the current month, keeping ``pvt_previous_id``). Only when that finds nothing are the account's other MODBs
    listed (one ``_all_dbs`` key range) and each asked for the migrator's own id ``YYYYMM-<old id>`` through
    ``_all_docs``, which needs no view index in old, CDR-laden months; and that only for an id that was a legacy
    media document of the account (it still is, or its deletion left a tombstone), so that a mistyped id costs one
    read, not one per month of the account's history.

    The deterministic id wins over a later copy; otherwise the newest month."""
    moment = naming.now_gregorian() if now is None else now
    window = naming.months_between(naming.year_month(retention.cutoff(settings, moment)), naming.year_month(moment))
    recent = [naming.modb(account_id, year, month) for year, month in window]
    found = await gather_bounded(
        (stored_legacy.migrated_from(store, db, legacy_id, box_id) for db in recent), _LOOKUP_CONCURRENCY
    )
    ids = [message_id for ids in found for message_id in ids]
    deterministic = [message_id for message_id in ids if message_id.split("-", 1)[-1] == legacy_id]
    candidates = deterministic or ids
    if candidates:
        return candidates[0]
    if not await stored_legacy.was_legacy_media(store, account_id, legacy_id):
        return None
    older = [db for db in await stored_legacy.account_modbs(store, account_id) if db not in recent]
    found = await gather_bounded(
        (_deterministic(store, db, legacy_id, box_id) for db in sorted(older, reverse=True)), _LOOKUP_CONCURRENCY
    )
    return next((message_id for ids in found for message_id in ids), None)


async def _deterministic(store: CouchStore, db: str, legacy_id: str, box_id: str) -> list[str]:
    """``YYYYMM-<old id>`` in the MODB of that month, when it is this box's live message migrated from it."""
    year, month = naming.split_modb(db)[1:]
    message_id = f"{year:04d}{month:02d}-{legacy_id}"
    try:
        rows = await store.docs_by_id(db, [message_id])
    except DatabaseNotFound:
        return []
    return [
        message_id
        for row in rows
        if isinstance(row.doc, dict)
        and not row.doc.get("pvt_deleted")
        and row.doc.get("pvt_previous_id") == legacy_id
        and row.doc.get("source_id") == box_id
    ]


async def legacy_summaries(scope: Scope, box: BoxDoc) -> list[LegacySummary]:
    """Listing items (same shape as ``listing_by_mailbox`` values) for the box's not-yet-migrated entries,
    newest first, with their legacy ids as ``media_id``. The timestamp is the one the entry will be migrated
    with (Kazoo's fallback when it has none), so the message keeps its place in the list once migrated.
    Entries without a ``media_id`` cannot be addressed and are left out; the caller applies its time window.

    An entry whose document was written but whose box update never happened (a run stopped in between, or a box
    that kept changing) would show twice, under both ids: within retention, where listings look, such entries
    are left out (one ``_all_docs`` per month that has any)."""
    store, settings, account = scope.store, scope.settings, scope.account
    firsts: dict[str, LegacyEntry] = {}
    for entry in entries_of(box):
        legacy_id = media_id_of(entry)
        if legacy_id is not None and legacy_id not in firsts:
            firsts[legacy_id] = entry
    undated = [legacy_id for legacy_id, entry in firsts.items() if entry_timestamp(entry) is None]
    media: dict[str, JsonDict] = {}
    if undated:
        rows = await store.docs_by_id(account.db, undated)
        media = {str(row.id): row.doc for row in rows if row.doc is not None}
    now = naming.now_gregorian()
    items = []
    for legacy_id, entry in firsts.items():
        timestamp = entry_timestamp(entry) or fallback_timestamp(media.get(legacy_id), box, now)
        items.append(summary(entry, legacy_id, timestamp))
    migrated = await _already_written(store, account.id, box["_id"], items, retention.cutoff(settings, now))
    items = [item for item in items if item["media_id"] not in migrated]
    items.sort(key=lambda item: int(item["timestamp"]), reverse=True)
    return items


async def _already_written(
    store: CouchStore, account_id: str, box_id: str, items: list[LegacySummary], oldest: int
) -> set[str]:
    """Legacy ids among the recent ``items`` whose ``YYYYMM-<old id>`` document is this box's (or was moved on)."""
    by_db: dict[str, dict[str, str]] = {}
    for item in items:
        timestamp, legacy_id = int(item["timestamp"]), str(item["media_id"])
        if timestamp >= oldest:
            by_db.setdefault(naming.modb_for_timestamp(account_id, timestamp), {})[
                naming.message_id(timestamp, legacy_id)
            ] = legacy_id
    if not by_db:
        return set()

    async def written(db: str, ids: dict[str, str]) -> list[str]:
        try:
            rows = await store.docs_by_id(db, list(ids))
        except DatabaseNotFound:
            return []
        return [
            ids[str(row.id)]
            for row in rows
            if str(row.id) in ids
            and (
                row.doc is None
                or stored_messages.is_moved_away(row.doc)
                or (row.doc.get("pvt_previous_id") == ids[str(row.id)] and row.doc.get("source_id") == box_id)
            )
        ]

    found = await gather_or_cancel(written(db, ids) for db, ids in by_db.items())
    return {legacy_id for legacy_ids in found for legacy_id in legacy_ids}
