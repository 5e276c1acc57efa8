"""What the migration routine decides for each legacy message, and the options it runs with: shared by the routine,
the driver, the report and the message API's seam."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Status(str, Enum):  # noqa: UP042 - str() of members is relied on as is
    MIGRATED = "migrated"  # written and verified by this call
    ALREADY = "already_migrated"  # found in its MODB with its audio (an earlier, interrupted or parallel run)
    PLANNED = "planned"  # dry run: would be migrated
    FAILED = "failed"  # stays in the box's array, with migration_error
    GONE = "gone"  # no longer in the box (another process finished it)


# Failure reasons written to ``migration_error`` (Kazoo's own are no_media_id, no_timestamp, no_modb and save errors).
NO_MEDIA_ID = "no_media_id"  # the entry has no media_id: nothing to migrate it from (Kazoo's reason)
NO_MEDIA = "no_media"  # the media document does not exist
MEDIA_DELETED = "media_deleted"  # the media document was deleted (and no verified copy exists)
NO_AUDIO = "no_audio"  # the media document has no attachment
ID_CONFLICT = "id_conflict"  # the target id holds an unrelated document
AUDIO_UNREADABLE = "audio_unreadable"  # the legacy attachment did not match CouchDB's own digest
AUDIO_MISMATCH = "audio_mismatch"  # the copy read back differs from the legacy attachment
CONFLICT = "conflict"  # the target kept changing during this run
BOX_BUSY = "box_update_failed"  # migrated, but the box kept changing: a rerun removes the entry


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    purge_legacy_media: bool = False
    # Upper bound on the audio bytes carried by one request (reads with attachments=true and _bulk_docs writes).
    max_request_bytes: int = 16 * 1024 * 1024
    max_rounds: int = 3


@dataclass
class Outcome:
    legacy_id: str | None
    status: Status
    new_id: str | None = None
    reason: str | None = None
    detail: str | None = None
    purged: bool = False
    entry: Any = None  # the raw entry, kept for entries without an id so the report can show them
