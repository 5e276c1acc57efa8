"""Migrating a batch of one box's legacy entries: the routine shared by ``kazoo-vm migrate`` and the message API.

For each entry, in this order (every step is safe to interrupt and redo):

1. read the legacy media documents (one ``_all_docs`` request);
2. choose the timestamp: the entry's, else Kazoo's fallback, which is first *pinned* into the entry so that a
   rerun computes the same ``YYYYMM-<old id>`` (box write, only for entries that lack one);
3. look for the target documents (one ``_all_docs`` request per MODB): a target already holding the legacy audio
   counts as migrated (a rerun after a crash, or another process), one without it is repaired;
4. read the legacy audio (``_all_docs`` with ``attachments=true``), check it against CouchDB's digest, and write
   each document *with* its audio inline in one ``_bulk_docs`` per MODB, so a document never exists without audio;
   the MODB is created with its design documents when missing (Kazoo's migrator skipped those months, ``no_modb``);
5. read the written stubs back and compare digest and length with the legacy attachment;
6. with ``purge_legacy_media``, delete the legacy media documents whose copy was verified;
7. only then remove the migrated entries from the box's array (fresh read, retried on conflict); failures stay,
   with ``migration_error``.

Deterministic ids turn every 409 into "look again": a document found on the next round is judged by its audio,
never counted blindly as Kazoo did with ``conflict``.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kazoo_vm.concurrency import gather_or_cancel
from kazoo_vm.domain.legacy import box_entries as boxes
from kazoo_vm.domain.legacy.documents import (
    Audio,
    TargetAudio,
    inline_attachment,
    md5_digest,
    migrated_doc,
    new_id,
    repaired_doc,
    target_audio,
    target_db,
)
from kazoo_vm.domain.legacy.entries import (
    entry_timestamp,
    fallback_timestamp,
    legacy_audio,
    media_id_of,
)
from kazoo_vm.domain.legacy.modbs import ModbCheck
from kazoo_vm.domain.legacy.outcomes import (
    AUDIO_MISMATCH,
    AUDIO_UNREADABLE,
    BOX_BUSY,
    CONFLICT,
    ID_CONFLICT,
    MEDIA_DELETED,
    NO_AUDIO,
    NO_MEDIA,
    NO_MEDIA_ID,
    Options,
    Outcome,
    Status,
)
from kazoo_vm.events import NO_EVENTS, Events, MessageChange, MessageEvent
from kazoo_vm.model import BoxDoc, JsonDict, LegacyEntry, MessageDoc
from kazoo_vm.observability import metrics
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DatabaseNotFound, KeptChanging


@dataclass
class _Item:
    legacy_id: str
    entry: LegacyEntry
    media_doc: JsonDict | None = None
    media_deleted: bool = False
    audio: Audio | None = None
    timestamp: int | None = None
    data: bytes | None = None
    existing: MessageDoc | None = None
    verified_copy: bool = False
    outcome: Outcome | None = None

    @property
    def new_id(self) -> str:
        assert self.timestamp is not None
        return new_id(self.timestamp, self.legacy_id)

    @property
    def attachment_name(self) -> str | None:
        return self.audio.attachment_name(self.legacy_id) if self.audio else None

    def finish(self, status: Status, *, reason: str | None = None, detail: str | None = None) -> None:
        self.outcome = Outcome(
            legacy_id=self.legacy_id,
            status=status,
            new_id=self.new_id if self.timestamp is not None else None,
            reason=reason,
            detail=detail,
        )

    def media_failure(self) -> str:
        if self.media_doc is not None:
            return NO_AUDIO
        return MEDIA_DELETED if self.media_deleted else NO_MEDIA


@dataclass
class Batch:
    """One call's shared state."""

    store: CouchStore
    account_id: str
    box: BoxDoc
    default_timezone: str
    options: Options
    now: int
    node: str | None = None  # pvt_node of the documents written (the service's node name)
    modbs: ModbCheck = field(default_factory=ModbCheck)

    @property
    def account_db(self) -> str:
        return naming.account_db(self.account_id)


async def migrate_entries(
    store: CouchStore,
    *,
    account_id: str,
    box: BoxDoc,
    entries: Sequence[Any],
    default_timezone: str,
    options: Options | None = None,
    now: int | None = None,
    modbs: ModbCheck | None = None,
    node: str | None = None,
    events: Events = NO_EVENTS,
) -> list[Outcome]:
    """Migrate ``entries`` (taken from ``box["messages"]``; ``box`` may be a little stale) and record the result
    in the box. Returns one outcome per distinct legacy id, plus one per entry without an id; each message this
    call wrote is announced to ``events``."""
    batch = Batch(
        store=store,
        account_id=account_id,
        box=box,
        default_timezone=default_timezone,
        options=options or Options(),
        now=naming.now_gregorian() if now is None else now,
        modbs=modbs if modbs is not None else ModbCheck(),
        node=node,
    )
    unidentified = [
        Outcome(None, Status.FAILED, reason=NO_MEDIA_ID, entry=e) for e in entries if media_id_of(e) is None
    ]
    items: dict[str, _Item] = {}
    for entry in entries:
        legacy_id = media_id_of(entry)
        if legacy_id is not None and legacy_id not in items:
            items[legacy_id] = _Item(legacy_id=legacy_id, entry=entry)
    if items:
        await _read_media(batch, list(items.values()))
        await _assign_timestamps(batch, list(items.values()))
        await _migrate(batch, [item for item in items.values() if item.outcome is None])
        if batch.options.purge_legacy_media and not batch.options.dry_run:
            await _purge(batch, list(items.values()))
    outcomes = [item.outcome for item in items.values() if item.outcome is not None]
    if not batch.options.dry_run:
        await _record(batch, outcomes, bool(unidentified))
        await events.announce_all(
            MessageEvent(MessageChange.MIGRATED, account_id, box["_id"], o.new_id, previous_id=o.legacy_id)
            for o in outcomes
            if o.status is Status.MIGRATED and o.new_id is not None
        )
    metrics.record_migration(outcome.status.value for outcome in unidentified + outcomes)
    return unidentified + outcomes


# -- 1. legacy media ------------------------------------------------------------------------------------------


async def _read_media(batch: Batch, items: list[_Item]) -> None:
    rows = await batch.store.docs_by_id(batch.account_db, [item.legacy_id for item in items])
    found = {row.id: row for row in rows if row.id is not None}
    for item in items:
        row = found.get(item.legacy_id)
        if row is None:
            continue
        if row.doc is None:
            item.media_deleted = bool(isinstance(row.value, dict) and row.value.get("deleted"))
            continue
        item.media_doc = row.doc
        stub = legacy_audio(row.doc)
        if stub is not None:
            item.audio = Audio.from_stub(*stub)


# -- 2. timestamps ----------------------------------------------------------------------------------------------


async def _assign_timestamps(batch: Batch, items: list[_Item]) -> None:
    proposals: dict[str, int] = {}
    for item in items:
        timestamp = entry_timestamp(item.entry)
        if timestamp is not None:
            item.timestamp = timestamp
            continue
        fallback = fallback_timestamp(item.media_doc, batch.box, batch.now)
        if item.audio is None or batch.options.dry_run:
            item.timestamp = fallback  # nothing will be written for it: no need to pin
        else:
            proposals[item.legacy_id] = fallback
    if not proposals:
        return
    pinned = await boxes.pin_timestamps(batch.store, batch.account_db, batch.box["_id"], proposals)
    for item in items:
        if item.legacy_id not in pinned:
            continue
        timestamp = pinned[item.legacy_id]
        if timestamp is None:
            item.outcome = Outcome(item.legacy_id, Status.GONE)
        else:
            item.timestamp = timestamp


# -- 3-5. targets, audio, writes, verification ------------------------------------------------------------------


def _by_db(batch: Batch, items: Iterable[_Item]) -> dict[str, list[_Item]]:
    groups: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        assert item.timestamp is not None
        groups[target_db(batch.account_id, item.timestamp)].append(item)
    return groups


async def _read_targets(batch: Batch, db: str, items: list[_Item]) -> bool:
    """Fill ``item.existing`` (a doc, or ``{}`` for a deleted one); False when the MODB does not exist."""
    try:
        found = await stored_messages.known_messages(batch.store, db, [item.new_id for item in items])
    except DatabaseNotFound:
        for item in items:
            item.existing = None
        return False
    for item in items:
        item.existing = None if item.new_id not in found else (found[item.new_id] or {})
    return True


def _judge(batch: Batch, item: _Item, modb_exists: bool) -> str | None:
    """Finish the item if its target settles it; otherwise say what to write: ``create`` or ``repair``."""
    existing = item.existing
    if existing == {}:
        # Deleted: only a move through the API deletes a migrated message (after writing its successor).
        item.finish(Status.ALREADY, detail="moved")
        return None
    if existing is not None:
        # Another box's message (two arrays naming one media document) is not this entry's: keep the entry.
        if existing.get("pvt_previous_id") != item.legacy_id or existing.get("source_id") not in (
            None,
            batch.box["_id"],
        ):
            item.finish(Status.FAILED, reason=ID_CONFLICT)
            return None
        legacy = item.audio if item.media_doc is not None else None
        state = target_audio(existing, item.attachment_name, legacy)
        if state is not TargetAudio.MISSING:
            item.verified_copy = state is TargetAudio.COPIED
            item.finish(Status.ALREADY, detail=state.value)
            return None
    if item.audio is None:
        item.finish(Status.FAILED, reason=item.media_failure())
        return None
    if batch.options.dry_run:
        action = "repair_audio" if existing is not None else ("create" if modb_exists else "create_modb")
        item.finish(Status.PLANNED, detail=action)
        return None
    return "repair" if existing is not None else "create"


async def _migrate(batch: Batch, items: list[_Item]) -> None:
    pending = items
    for _round in range(batch.options.max_rounds):
        if not pending:
            return
        groups = _by_db(batch, pending)
        exists = await gather_or_cancel(_read_targets(batch, db, group) for db, group in groups.items())
        to_write: dict[str, list[_Item]] = {}
        for (db, group), modb_exists in zip(groups.items(), exists, strict=True):
            writes = [item for item in group if _judge(batch, item, modb_exists) is not None]
            if writes:
                to_write[db] = writes
                if not modb_exists:
                    batch.modbs.forget(db)
        if not to_write:
            return
        await _read_audio(batch, [item for group in to_write.values() for item in group])
        conflicts = await gather_or_cancel(_write(batch, db, group) for db, group in to_write.items())
        pending = [item for group in conflicts for item in group]
    for item in pending:
        item.finish(Status.FAILED, reason=CONFLICT)


def _chunks(items: Sequence[_Item], limit: int) -> Iterator[list[_Item]]:
    """Consecutive groups whose audio stays under ``limit`` bytes (a single larger item goes alone)."""
    chunk: list[_Item] = []
    size = 0
    for item in items:
        length = item.audio.length if item.audio and item.audio.length else 0
        if chunk and size + length > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


async def _read_audio(batch: Batch, items: list[_Item]) -> None:
    needed = [item for item in items if item.data is None]
    for chunk in _chunks(needed, batch.options.max_request_bytes):
        rows = await batch.store.docs_by_id(batch.account_db, [item.legacy_id for item in chunk], attachments=True)
        docs = {row.id: row.doc for row in rows if row.doc is not None}
        for item in chunk:
            assert item.audio is not None
            attachment = ((docs.get(item.legacy_id) or {}).get("_attachments") or {}).get(item.audio.source_name)
            encoded = attachment.get("data") if isinstance(attachment, dict) else None
            if not isinstance(encoded, str):
                item.finish(Status.FAILED, reason=NO_AUDIO)
                continue
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                data = None
            if data is None or not item.audio.matches(data):
                item.finish(Status.FAILED, reason=AUDIO_UNREADABLE)
                continue
            item.data = data


def _document(batch: Batch, item: _Item) -> MessageDoc:
    assert item.audio is not None and item.data is not None and item.timestamp is not None
    name = item.audio.attachment_name(item.legacy_id)
    if item.existing:
        return repaired_doc(item.existing, item.audio, name, item.data)
    doc = migrated_doc(
        account_id=batch.account_id,
        box=batch.box,
        legacy_id=item.legacy_id,
        entry=item.entry,
        timestamp=item.timestamp,
        attachment_name=name,
        default_timezone=batch.default_timezone,
        node=batch.node,
    )
    doc["_attachments"] = {name: inline_attachment(item.audio, item.data)}
    return doc


async def _write(batch: Batch, db: str, items: list[_Item]) -> list[_Item]:
    """Write documents with their audio, then verify them; returns the items that hit a conflict."""
    ready = [item for item in items if item.outcome is None]
    if not ready:
        return []
    await batch.modbs.ensure(batch.store, db)
    written: list[_Item] = []
    conflicts: list[_Item] = []
    for chunk in _chunks(ready, batch.options.max_request_bytes):
        results = await batch.store.bulk_docs(db, [_document(batch, item) for item in chunk])
        by_id = {str(result.get("id")): result for result in results}
        for item in chunk:
            result = by_id.get(item.new_id, {})
            error = result.get("error")
            if error is None and result.get("rev"):
                written.append(item)
            elif error == "conflict":
                conflicts.append(item)  # written meanwhile by someone else: judged again next round
            else:
                item.finish(Status.FAILED, reason=f"write_failed: {error or 'no result'}")
    await _verify(batch, db, written)
    return conflicts


async def _verify(batch: Batch, db: str, items: list[_Item]) -> None:
    if not items:
        return
    docs = await stored_messages.messages_by_id(batch.store, db, [item.new_id for item in items])
    for item in items:
        assert item.audio is not None and item.data is not None
        attachments = (docs.get(item.new_id) or {}).get("_attachments") or {}
        stub = attachments.get(item.audio.attachment_name(item.legacy_id))
        stored_length = stub.get("length") if isinstance(stub, dict) else None
        stored_digest = stub.get("digest") if isinstance(stub, dict) else None
        expected_digest = item.audio.digest or md5_digest(item.data)
        if stored_length == len(item.data) and stored_digest == expected_digest:
            item.verified_copy = True
            item.finish(Status.MIGRATED)
        else:
            item.finish(Status.FAILED, reason=AUDIO_MISMATCH)


# -- 6-7. purge, and the box -------------------------------------------------------------------------------------


async def _purge(batch: Batch, items: list[_Item]) -> None:
    """Delete legacy media whose copy was verified (never a copy a client replaced since)."""
    doomed = [
        item
        for item in items
        if item.verified_copy
        and item.media_doc is not None
        and item.outcome is not None
        and item.outcome.status in (Status.MIGRATED, Status.ALREADY)
    ]
    if not doomed:
        return
    deletions = [
        {"_id": item.legacy_id, "_rev": item.media_doc["_rev"], "_deleted": True} for item in doomed if item.media_doc
    ]
    results = await batch.store.bulk_docs(batch.account_db, deletions)
    ok = {str(result.get("id")) for result in results if result.get("error") is None}
    for item in doomed:
        if item.outcome is not None and item.legacy_id in ok:
            item.outcome.purged = True


async def _record(batch: Batch, outcomes: list[Outcome], mark_unidentified: bool) -> None:
    done = {o.legacy_id for o in outcomes if o.legacy_id and o.status in (Status.MIGRATED, Status.ALREADY)}
    failures = {o.legacy_id: o.reason or "failed" for o in outcomes if o.legacy_id and o.status is Status.FAILED}
    try:
        await boxes.settle(
            batch.store,
            batch.account_db,
            batch.box["_id"],
            done=done,
            failures=failures,
            mark_unidentified=mark_unidentified,
        )
    except KeptChanging:
        for outcome in outcomes:
            if outcome.legacy_id in done:
                outcome.status, outcome.reason = Status.FAILED, BOX_BUSY
