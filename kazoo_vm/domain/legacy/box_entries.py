"""The migrator's writes to box documents: always from a fresh read, retried on conflict
(:mod:`kazoo_vm.storage.updates`; a box that kept changing raises its ``KeptChanging``: nothing was lost, a rerun
finishes the job), touching only the entries this run decided about, so concurrent API writes to the same box are
never lost.

Kazoo's ``update_message_array`` rewrote every entry of a touched box from its batch's view of the world and so
dropped entries that were not in the batch (docs/compatibility.md). Here an entry leaves the array only when its
id is in ``done`` (its document and audio are verified in the MODB); every other entry is kept as it is now in CouchDB.
The box's ``pvt_modified`` is left alone: it is part of the timestamp fallback, which must not move between runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from kazoo_vm.domain.legacy.entries import entry_timestamp, media_id_of
from kazoo_vm.domain.legacy.outcomes import NO_MEDIA_ID
from kazoo_vm.model import BoxDoc
from kazoo_vm.storage.boxes import update_box
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DocumentNotFound


async def pin_timestamps(
    store: CouchStore, db: str, box_id: str, proposals: Mapping[str, int]
) -> dict[str, int | None]:
    """Write a timestamp into entries that have none, before their documents are written.

    The new id's month comes from the timestamp; for an entry without one Kazoo falls back to values that move
    (the box's ``pvt_modified``, now). Pinning the chosen value first makes every later run compute the same id.
    Returns each id's timestamp as now stored (another process may have pinned it first), or None when the
    entry is no longer in the box.
    """
    result: dict[str, int | None] = {}

    def pin(box: BoxDoc) -> BoxDoc | None:
        result.clear()
        result.update({media_id: None for media_id in proposals})
        messages = box.get("messages")
        if not isinstance(messages, list):
            return None
        changed = False
        for index, entry in enumerate(messages):
            media_id = media_id_of(entry)
            if media_id is None or media_id not in proposals or result[media_id] is not None:
                continue
            current = entry_timestamp(entry)
            if current is None:
                current = proposals[media_id]
                messages[index] = {**entry, "timestamp": current}
                changed = True
            result[media_id] = current
        return box if changed else None

    try:
        await update_box(store, db, box_id, pin)
    except DocumentNotFound:
        return {media_id: None for media_id in proposals}
    return result


def _settled_entries(
    messages: list[Any], done: AbstractSet[str], failures: Mapping[str, str], mark_unidentified: bool
) -> tuple[list[Any], bool]:
    kept: list[Any] = []
    changed = False
    for entry in messages:
        media_id = media_id_of(entry)
        if media_id is not None and media_id in done:
            changed = True
            continue
        if isinstance(entry, dict):
            reason = failures.get(media_id) if media_id is not None else (NO_MEDIA_ID if mark_unidentified else None)
            if reason is not None and entry.get("migration_error") != reason:
                entry = {**entry, "migration_error": reason}
                changed = True
        kept.append(entry)
    return kept, changed


async def settle(
    store: CouchStore,
    db: str,
    box_id: str,
    *,
    done: AbstractSet[str],
    failures: Mapping[str, str],
    mark_unidentified: bool = False,
) -> bool:
    """Remove the ``done`` entries from the box's array and record ``migration_error`` on failed ones
    (Kazoo's key; the ``no_media_id`` reason for entries without an id when ``mark_unidentified``).
    True when the box was written."""
    written = False

    def drop_settled(box: BoxDoc) -> BoxDoc | None:
        nonlocal written
        written = False
        messages = box.get("messages")
        if not isinstance(messages, list):
            return None
        kept, changed = _settled_entries(messages, done, failures, mark_unidentified)
        if not changed:
            return None
        box["messages"] = kept  # Kazoo keeps the (possibly empty) array
        written = True
        return box

    try:
        await update_box(store, db, box_id, drop_settled)
    except DocumentNotFound:
        return False
    return written
