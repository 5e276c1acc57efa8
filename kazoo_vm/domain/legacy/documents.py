"""The 4.x message document a legacy entry becomes, and how to tell whether one already holds its audio.

Kazoo's migrator (kvm_migrate_account) writes ``kzd_box_message:new/2`` with ``Media-ID`` = the old id, so
the new id is ``YYYYMM-<old id>`` (UTC month of the timestamp), and adds ``pvt_moved_to_modb: "true"`` (a string)
and ``pvt_previous_id``. Its audio stays behind a ``kz_att_link`` stub; ours is copied in as a real attachment.
Everything here is deterministic, so a rerun computes exactly the same id, attachment name and document.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kazoo_vm.domain.documents import document_hash, stamp
from kazoo_vm.domain.legacy.entries import ENTRY_KEYS
from kazoo_vm.domain.messages.documents import (
    CONTENT_TYPES,
    EXTENSIONS,
    MESSAGE_TYPE,
    build_metadata,
    message_name,
)
from kazoo_vm.model import BoxDoc, JsonDict, MessageDoc
from kazoo_vm.storage import naming


def new_id(timestamp: int, legacy_id: str) -> str:
    return naming.message_id(timestamp, legacy_id)


def target_db(account_id: str, timestamp: int) -> str:
    return naming.modb_for_timestamp(account_id, timestamp)


def md5_digest(data: bytes) -> str:
    """CouchDB's attachment ``digest`` for uncompressed data: ``md5-<base64 md5>``."""
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


@dataclass(frozen=True)
class Audio:
    """The legacy attachment as it will be copied: where it comes from and what CouchDB says it is."""

    source_name: str
    content_type: str
    extension: str
    length: int | None
    digest: str | None

    @classmethod
    def from_stub(cls, name: str, stub: JsonDict) -> Audio:
        content_type = stub.get("content_type")
        _, dot_ext = posixpath.splitext(name)
        extension = EXTENSIONS.get(str(content_type)) or dot_ext.lstrip(".").lower() or "mp3"
        if not isinstance(content_type, str) or not content_type:
            content_type = CONTENT_TYPES.get(extension, "audio/mpeg")
        length = stub.get("length")
        digest = stub.get("digest")
        return cls(
            source_name=name,
            content_type=content_type,
            extension=extension,
            length=length if isinstance(length, int) else None,
            digest=digest if isinstance(digest, str) else None,
        )

    def attachment_name(self, legacy_id: str) -> str:
        # "<old id>.<ext>": Kazoo names audio "<32 hex>.<ext>"; reusing the old id keeps reruns deterministic.
        return f"{legacy_id}.{self.extension}"

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` is exactly the legacy attachment (CouchDB's own digest and length)."""
        if self.length is not None and len(data) != self.length:
            return False
        return self.digest is None or not self.digest.startswith("md5-") or md5_digest(data) == self.digest


def migrated_doc(
    *,
    account_id: str,
    box: BoxDoc,
    legacy_id: str,
    entry: Mapping[str, Any],
    timestamp: int,
    attachment_name: str,
    default_timezone: str,
    node: str | None = None,
) -> MessageDoc:
    """The 4.x message for a legacy entry: what ``kzd_box_message:new/2`` writes (the same fields as
    :func:`kazoo_vm.domain.messages.documents.new_message_doc`, which requires 32-hex ids while legacy ids may be
    anything, e.g. in Kazoo's fixture), plus Kazoo's migration markers. The attachment is added by the caller."""
    message_id = new_id(timestamp, legacy_id)
    fields = {key: entry[key] for key in ENTRY_KEYS if key in entry and entry[key] is not None and key != "media_id"}
    fields["timestamp"] = timestamp
    doc: MessageDoc = {
        "_id": message_id,
        "name": message_name(box.get("mailbox"), timestamp, box.get("timezone"), default_timezone),
        "description": "voicemail message with media",
        "source_type": "voicemail",
        "source_id": box["_id"],
        "media_source": "recording",
        "streamable": True,
        "utc_seconds": timestamp,
        "metadata": build_metadata(message_id, fields),
        "media_filename": attachment_name,
    }
    stamp(doc, doc_type=MESSAGE_TYPE, account_id=account_id, db=target_db(account_id, timestamp), now=timestamp)
    if node:
        doc["pvt_node"] = node
    doc["pvt_document_hash"] = document_hash(doc)
    doc["pvt_moved_to_modb"] = "true"  # a string, as Kazoo writes it
    doc["pvt_previous_id"] = legacy_id
    return doc


def inline_attachment(audio: Audio, data: bytes) -> JsonDict:
    return {"content_type": audio.content_type, "data": base64.b64encode(data).decode("ascii")}


class TargetAudio(Enum):
    """What an existing migrated document holds, compared with the legacy audio."""

    COPIED = "copied"  # our attachment, byte-identical to the legacy one
    REPLACED = "replaced"  # a client uploaded other audio since: theirs wins, never overwritten
    MISSING = "missing"  # no real audio (e.g. Kazoo's kz_att_link stub) or a copy that does not match


def _real_attachments(doc: MessageDoc) -> dict[str, JsonDict]:
    attachments = doc.get("_attachments")
    if not isinstance(attachments, dict):
        return {}
    return {name: stub for name, stub in attachments.items() if isinstance(stub, dict)}


def target_audio(doc: MessageDoc, attachment_name: str | None, audio: Audio | None) -> TargetAudio:
    """Judge an existing target. ``audio`` is None when the legacy media is gone (purged after a verified
    copy), in which case a non-empty attachment of ours is trusted."""
    attachments = _real_attachments(doc)
    ours = attachments.get(attachment_name) if attachment_name else None
    if ours is not None:
        length = ours.get("length")
        if audio is None:
            return TargetAudio.COPIED if isinstance(length, int) and length > 0 else TargetAudio.MISSING
        same_length = audio.length is None or length == audio.length
        same_digest = audio.digest is None or ours.get("digest") == audio.digest
        return TargetAudio.COPIED if same_length and same_digest else TargetAudio.MISSING
    others = [stub for stub in attachments.values() if isinstance(stub.get("length"), int) and stub["length"] > 0]
    return TargetAudio.REPLACED if others else TargetAudio.MISSING


def repaired_doc(doc: MessageDoc, audio: Audio, attachment_name: str, data: bytes) -> MessageDoc:
    """An existing target with the legacy audio copied in as its only real attachment. Kazoo's migrator
    leaves a ``kz_att_link`` stub in ``pvt_attachments`` instead: it is dropped, since it points at the legacy
    document (whose audio is unreadable once soft-deleted; docs/compatibility.md) and Kazoo's raw download expects one
    attachment."""
    repaired = doc.copy()
    repaired["_attachments"] = {attachment_name: inline_attachment(audio, data)}
    repaired["media_filename"] = attachment_name
    links = repaired.get("pvt_attachments")
    if isinstance(links, dict):
        kept = {
            name: stub
            for name, stub in links.items()
            if not (isinstance(stub, dict) and "kz_att_link" in (stub.get("handler") or {}))
        }
        if kept:
            repaired["pvt_attachments"] = kept
        else:
            repaired.pop("pvt_attachments")
    return repaired
