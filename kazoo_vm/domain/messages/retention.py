"""Kazoo's message retention (kvm_util.erl retention_seconds/enforce_retention).

Messages older than the retention window are hidden from listings and counts, refused on change, and shown
"retention enforced" (folder ``deleted`` plus two marker keys) when fetched. They are never deleted.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from kazoo_vm.config import Settings
from kazoo_vm.errors import ValidationFailed
from kazoo_vm.model import JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.storage.messages import as_metadata

RETENTION_MESSAGE = "this message is prior to retention policy, no update operation is permitted"
CHANGE_REFUSED_MESSAGE = "cannot make changes to messages prior to retention duration"
PRIOR_TO_RETENTION = "prior_to_retention_duration"

# A message's metadata, or a listing item (which has the same keys).
M = TypeVar("M", MessageMetadata, JsonDict)


def _object(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def retention_seconds(settings: Settings) -> int:
    """``days * 86400 + 3600``: Kazoo adds one hour to the configured days (kz_voicemail.hrl)."""
    return settings.retention_days * 86_400 + 3_600


def cutoff(settings: Settings, now: int) -> int:
    """The oldest Gregorian second still inside the retention window."""
    return now - retention_seconds(settings)


def message_time(doc: MessageDoc) -> int | None:
    """The first defined of ``utc_seconds``, ``timestamp``, ``metadata.timestamp`` and ``pvt_created``.

    Kazoo's is_prior_to_retention looks for ``pvt_create`` (a typo that never matches); we read ``pvt_created``.
    """
    metadata = _object(doc.get("metadata"))
    for value in (doc.get("utc_seconds"), doc.get("timestamp"), metadata.get("timestamp"), doc.get("pvt_created")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def is_prior(doc: MessageDoc, oldest: int) -> bool:
    moment = message_time(doc)
    return moment is not None and moment < oldest


def enforce(metadata: M) -> M:
    """A copy of message metadata (or a listing item) as Kazoo shows an expired message."""
    shown = copy.deepcopy(metadata)
    shown["folder"] = "deleted"
    shown["retention"] = "enforced"
    shown["retention_message"] = RETENTION_MESSAGE
    return shown


def enforce_doc(doc: MessageDoc) -> MessageDoc:
    """The document with its metadata retention-enforced (what Kazoo saves when an expired message is touched)."""
    found = doc.get("metadata")
    doc["metadata"] = enforce(found if isinstance(found, dict) else as_metadata({}))
    return doc


def change_refused(message_id: str, oldest: int) -> ValidationFailed:
    """cb_vmboxes validate_message/4: a change of an expired message is a ``date_range`` validation error."""
    return ValidationFailed.single(message_id, "date_range", CHANGE_REFUSED_MESSAGE, cause=oldest)
