"""Reading Kazoo's pre-4.0 voicemail storage (cf_voicemail, kvm_migrate_account).

A legacy message is an entry of the box document's ``messages`` array (metadata; ``media_id`` is the id of a
``private_media`` document in the account database, which holds the audio as its attachment). Entries are often
incomplete: no ``media_id``, no timestamp, ``"timestamp": "undefined"`` or ``null`` (the fixture box shows all of
them), so everything here tolerates any JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, cast

from kazoo_vm.model import BoxDoc, JsonDict, LegacySummary
from kazoo_vm.storage import naming

# The keys a 3.x entry carries (cf_voicemail:create_metadata_object/5); the view legacy_msg_by_timestamp emits these.
ENTRY_KEYS = (
    "timestamp",
    "from",
    "to",
    "caller_id_number",
    "caller_id_name",
    "call_id",
    "folder",
    "length",
    "media_id",
)
_DIGITS = re.compile(r"^\s*\d+\s*$")


def entries_of(box: BoxDoc) -> list[Any]:
    messages = box.get("messages")
    return list(messages) if isinstance(messages, list) else []


def media_id_of(entry: Any) -> str | None:
    """The legacy message id (its ``private_media`` document id), or None when the entry has none."""
    if not isinstance(entry, dict):
        return None
    media_id = entry.get("media_id")
    return media_id if isinstance(media_id, str) and media_id.strip() and not media_id.startswith("_") else None


def as_timestamp(value: Any) -> int | None:
    """A usable Gregorian timestamp, as Kazoo's ``kz_term:to_integer`` would read it; None for ``null``,
    ``"undefined"``, missing or non-numeric values (Kazoo's view uses ``parseInt``, which gives NaN for those).

    Unlike Kazoo, a number outside 1970..9999 counts as missing too (a Unix time written by mistake, or garbage):
    Kazoo would file it under a month such as ``000001`` whose MODB never exists and report ``no_modb`` forever;
    no database can be named after it, so Kazoo's fallback (media document, box, now) dates it instead."""
    if isinstance(value, bool):
        return None
    numeric = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if not numeric and not (isinstance(value, str) and _DIGITS.match(value)):
        return None
    number = int(value)
    return number if naming.EARLIEST_TIMESTAMP <= number <= naming.LATEST_TIMESTAMP else None


def entry_timestamp(entry: Any) -> int | None:
    return as_timestamp(entry.get("timestamp")) if isinstance(entry, dict) else None


def fallback_timestamp(media_doc: JsonDict | None, box: BoxDoc, now: int) -> int:
    """Kazoo's order for an entry without a timestamp (kvm_migrate_account): the media document's
    ``pvt_modified``, then its ``pvt_created``, then the box's, then now. Kazoo's view reads the box's
    ``modified``/``created`` (keys a box never has; docs/compatibility.md); we read the ``pvt_`` keys it meant."""
    candidates: list[Any] = []
    if media_doc is not None:
        candidates += [media_doc.get("pvt_modified"), media_doc.get("pvt_created")]
    candidates += [box.get("pvt_modified"), box.get("pvt_created")]
    for candidate in candidates:
        timestamp = as_timestamp(candidate)
        if timestamp is not None:
            return timestamp
    return now


def legacy_audio(media_doc: JsonDict | None) -> tuple[str, JsonDict] | None:
    """The audio of a legacy media document: its first real attachment (Kazoo's kz_att_link reads the first)."""
    if media_doc is None:
        return None
    attachments = media_doc.get("_attachments")
    if not isinstance(attachments, dict):
        return None
    for name, stub in attachments.items():
        if isinstance(stub, dict):
            return name, stub
    return None


def summary(entry: Mapping[str, Any], media_id: str, timestamp: int) -> LegacySummary:
    """A listing item shaped like a ``mailbox_messages/listing_by_mailbox`` value, with the legacy id as
    ``media_id``. Keys the entry lacks are left out, as the view's JSON leaves out undefined values; a missing
    folder reads ``new``, which is what the entry becomes when migrated (3.22 also read it as new)."""
    item: JsonDict = {"timestamp": timestamp}
    for key in ("from", "to", "caller_id_number", "caller_id_name", "call_id", "folder", "length"):
        if key in entry and entry[key] is not None:
            item[key] = entry[key]
    item.setdefault("folder", "new")
    item["media_id"] = media_id
    return cast(LegacySummary, item)
