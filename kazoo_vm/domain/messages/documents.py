"""The shape of a Kazoo 4.x voicemail message document (kzd_box_message), as pure functions.

Shared by the message API and the legacy migrator so both write exactly what Kazoo's ``kzd_box_message:new/2``
writes: ``_id`` = ``metadata.media_id`` = ``YYYYMM-<32 hex>`` in the MODB of that UTC month, ``pvt_type``
``"mailbox_message"``, the box as ``source_id``, caller data under ``metadata``, Gregorian timestamps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kazoo_vm.domain.documents import Actor, stamp
from kazoo_vm.model import BoxDoc, MessageDoc, MessageMetadata
from kazoo_vm.storage import naming
from kazoo_vm.storage.messages import as_metadata

MESSAGE_TYPE = "mailbox_message"
# The realm of from/to when the account has none (cb_vmboxes create_new_message_document).
NO_REALM = "nodomain"

# Audio types by extension (kz_mime; mp3 and wav as Kazoo's Makefile, mp4 from mime.types).
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "mp4": "audio/mp4"}
# Audio content types we store, and the extension each is stored under (uploads and migrated media alike).
EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mpeg3": "mp3",
    "audio/x-mpeg-3": "mp3",
    "audio/x-mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mp4": "mp4",
    "audio/x-m4a": "mp4",
    "audio/m4a": "mp4",
}

# The metadata keys kzd_box_message:build_metadata_object writes.
METADATA_KEYS = (
    "media_id",
    "call_id",
    "caller_id_name",
    "caller_id_number",
    "from",
    "from_user",
    "from_realm",
    "length",
    "timestamp",
    "to",
    "to_user",
    "to_realm",
    "folder",
)


def zone(timezone: str | None, fallback: str) -> ZoneInfo | None:
    for candidate in (timezone, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return None


def local_time(gregorian_seconds: int, timezone: str | None, fallback: str) -> tuple[datetime, bool]:
    """The moment in the box's zone; the flag says whether a zone was found (else UTC)."""
    utc = naming.to_datetime(gregorian_seconds)
    tz = zone(timezone, fallback)
    return (utc.astimezone(tz), True) if tz is not None else (utc, False)


def message_name(box_number: Any, gregorian_seconds: int, timezone: str | None, fallback: str) -> str:
    """``"mailbox <N> message <Y>-<MM>-<DD> <H>:<M>:<S>"``: month and day padded, time parts not
    (kzd_box_message:create_message_name); UTC with a " UTC" suffix when the zone is unknown."""
    moment, zoned = local_time(gregorian_seconds, timezone, fallback)
    text = (
        f"mailbox {box_number} message {moment.year}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour}:{moment.minute}:{moment.second}"
    )
    return text if zoned else text + " UTC"


def split_address(address: str) -> tuple[str, str]:
    user, _, realm = address.partition("@")
    return user, realm


def build_metadata(message_id: str, fields: Mapping[str, Any]) -> MessageMetadata:
    """Metadata with Kazoo's derived ``from_user``/``from_realm``/``to_user``/``to_realm`` and ``media_id``."""
    metadata = as_metadata(copy.deepcopy(dict(fields)))
    metadata["media_id"] = message_id
    sender = metadata.get("from")
    if isinstance(sender, str):
        user, realm = split_address(sender)
        metadata.setdefault("from_user", user)
        metadata.setdefault("from_realm", realm)
    recipient = metadata.get("to")
    if isinstance(recipient, str):
        user, realm = split_address(recipient)
        metadata.setdefault("to_user", user)
        metadata.setdefault("to_realm", realm)
    metadata.setdefault("folder", "new")
    return metadata


def stamp_message(
    doc: MessageDoc, *, account_id: str, actor: Actor | None, node: str | None, now: int | None = None
) -> MessageDoc:
    """Kazoo's private fields on a message document, in place: those of every crossbar write plus ``pvt_node``
    (kz_doc:update_pvt_parameters, as in Kazoo's MODB fixture message)."""
    if node:
        doc["pvt_node"] = node
    return stamp(
        doc,
        doc_type=MESSAGE_TYPE,
        account_id=account_id,
        db=naming.message_db(account_id, doc["_id"]),
        actor=actor,
        now=now,
    )


def new_message_doc(
    *,
    account_id: str,
    box: BoxDoc,
    message_id: str,
    utc_seconds: int,
    metadata: Mapping[str, Any],
    attachment_name: str | None,
    default_timezone: str,
    actor: Actor | None = None,
    node: str | None = None,
    description: str = "voicemail message with media",
    stamped_at: int | None = None,
) -> MessageDoc:
    """A new message document for ``box`` (kzd_box_message:new/2 + kz_doc:update_pvt_parameters).

    ``pvt_created``/``pvt_modified`` are ``stamped_at``, by default the message's own time (as the migrator and
    kzd_box_message:new/2 set them); a message created through the API is stamped with the time of the request,
    as crossbar_doc:save does, while its ``timestamp`` stays in the metadata."""
    doc: MessageDoc = {
        "_id": message_id,
        "name": message_name(box.get("mailbox"), utc_seconds, box.get("timezone"), default_timezone),
        "description": description,
        "source_type": "voicemail",
        "source_id": box["_id"],
        "media_source": "recording",
        "streamable": True,
        "utc_seconds": utc_seconds,
        "metadata": build_metadata(message_id, metadata),
    }
    if attachment_name:
        doc["media_filename"] = attachment_name
    moment = utc_seconds if stamped_at is None else stamped_at
    return stamp_message(doc, account_id=account_id, actor=actor, node=node, now=moment)


def folder_of(doc: MessageDoc) -> str | None:
    """``metadata.folder``, then a top-level ``folder`` (kzd_box_message:folder/2)."""
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("folder"), str):
        return str(metadata["folder"])
    folder = doc.get("folder")
    return folder if isinstance(folder, str) else None


def apply_folder(doc: MessageDoc, folder: str, *, soft_delete: bool = False) -> MessageDoc:
    """Set the folder in place; ``soft_delete`` also sets ``pvt_deleted`` (kzd_box_message:apply_folder)."""
    metadata = doc.setdefault("metadata", {})
    metadata["folder"] = folder
    if soft_delete:
        doc["pvt_deleted"] = True
    return doc


def public_metadata(doc: MessageDoc) -> MessageMetadata:
    """What a single-message response shows: the metadata, plus the transcription when present
    (kzd_box_message:metadata/2)."""
    metadata = copy.deepcopy(doc.get("metadata") or as_metadata({}))
    if isinstance(doc.get("transcription"), dict):
        metadata["transcription"] = copy.deepcopy(doc["transcription"])
    return metadata
