"""``PUT /vmboxes/{B}/messages``: a new message, with or without its audio, in one CouchDB write.

Follows cb_vmboxes create_new_message_document: the request data is checked against
``vm_message_metadata``, the id's month (and so the MODB) comes from ``timestamp`` (default now), and the metadata
gets Kazoo's defaults. Two Kazoo bugs are fixed: a ``from``/``to`` that already holds an ``@`` is not given a
second realm, and ``folder`` from the request is kept. A box holding ``max_message_count`` new + saved messages
refuses new ones (Kazoo's callflow check, cf_voicemail; 0 disables it).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from kazoo_vm.domain import validation
from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.inputs import UploadedFile
from kazoo_vm.domain.messages import audio
from kazoo_vm.domain.messages import counts as message_counts
from kazoo_vm.domain.messages.announcements import carry, new_token, record
from kazoo_vm.domain.messages.documents import NO_REALM, new_message_doc
from kazoo_vm.domain.messages.records import put_new_message
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import KazooError, ValidationFailed
from kazoo_vm.events import MessageChange
from kazoo_vm.model import BoxDoc, JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.storage import naming

SCHEMA = "vm_message_metadata"
# kz_privacy:anonymous_caller_id_number/1 default.
ANONYMOUS = "anonymous"
BOX_FULL_MESSAGE = "The voicemail box is full"
EARLIEST = naming.EARLIEST_TIMESTAMP
LATEST = naming.LATEST_TIMESTAMP


def _text(data: JsonDict, key: str) -> str | None:
    """kz_json:get_ne_binary_value: a non-empty value, as text."""
    value = data.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _address(user: str, realm: str) -> str:
    return user if "@" in user else f"{user}@{realm}"


def default_metadata(fields: JsonDict, box: BoxDoc, realm: str, timestamp: int) -> MessageMetadata:
    """The metadata Kazoo builds for a REST-created message (build_metadata_object with its defaults)."""
    caller_number = _text(fields, "caller_id_number") or ANONYMOUS
    caller_name = _text(fields, "caller_id_name") or ANONYMOUS
    mailbox = box.get("mailbox")
    length = fields.get("length")
    return {
        "call_id": _text(fields, "call_id") or secrets.token_hex(12),
        "caller_id_name": caller_name,
        "caller_id_number": caller_number,
        "from": _address(_text(fields, "from") or caller_number, realm),
        "to": _address(_text(fields, "to") or str(mailbox if mailbox is not None else ""), realm),
        "length": length if isinstance(length, int) and not isinstance(length, bool) else 1,
        "timestamp": timestamp,
        "folder": requested_folder(fields),
    }


def requested_folder(fields: JsonDict) -> str:
    return str(fields.get("folder") or "new")


async def count_for_room(scope: Scope, box_id: str) -> int:
    """What :func:`ensure_room` compares with the limit (0 when there is no limit, without a query)."""
    limit = scope.settings.max_message_count
    if limit <= 0:
        return 0
    return await message_counts.box_count(scope, box_id, at_most=limit)


async def ensure_room(scope: Scope, box: BoxDoc, counted: asyncio.Future[int] | None = None) -> None:
    """Refuse a new message for a box already at ``max_message_count`` (new + saved within retention).
    ``counted``: :func:`count_for_room` for this box, started earlier."""
    limit = scope.settings.max_message_count
    if limit <= 0:
        return
    count = await counted if counted is not None else await count_for_room(scope, box["_id"])
    if count >= limit:
        full = scope.event(MessageChange.BOX_FULL, box["_id"], "", message_count=count, max_message_count=limit)
        await scope.events.record([full])
        await scope.events.announce(full)
        raise ValidationFailed.single("messages", "maxItems", BOX_FULL_MESSAGE, target=limit, cause=count)


def message_timestamp(fields: JsonDict) -> int:
    """The request's ``timestamp`` (Gregorian seconds), now when absent; 400 when it names no usable month."""
    timestamp = fields.get("timestamp")
    if timestamp is None:
        return naming.now_gregorian()
    if timestamp < EARLIEST:
        raise ValidationFailed.single(
            "timestamp", "minimum", f"Value must be at least {EARLIEST}", target=EARLIEST, value=timestamp
        )
    if timestamp > LATEST:
        raise ValidationFailed.single(
            "timestamp", "maximum", f"Value must be at most {LATEST}", target=LATEST, value=timestamp
        )
    return int(timestamp)


async def create_message(scope: Scope, box_id: str, data: Any, files: list[UploadedFile]) -> MessageDoc:
    """Validate, then write the document and its audio together; returns the saved document.

    What needs no stored data (validation, the new id, the event) is done first. The full-box count starts with
    the box read, and the event's outbox write as soon as the box is found, while the count (the longer query)
    still runs; the message write follows both. Kazoo's order of errors stays (no box, then bad data, then a full
    box). A create refused by the count has its event recorded already: no message ever carries its token, and
    the notification worker drops it (see announcements)."""
    counting = asyncio.ensure_future(count_for_room(scope, box_id))
    recording_event: asyncio.Future[dict[str, str]] | None = None
    try:
        try:
            fields = validation.validate(SCHEMA, data if isinstance(data, dict) else {})
            upload = audio.single_upload(files, required=False)
            recording = audio.prepare(upload) if upload is not None else None
            timestamp = message_timestamp(fields)
        except KazooError as invalid:
            await load_box(scope, box_id)
            raise invalid from None
        message_id = naming.message_id(timestamp)
        created = scope.event(
            MessageChange.CREATED, box_id, message_id, folder=requested_folder(fields), token=new_token()
        )
        box = await load_box(scope, box_id)
        # The event is kept before the message is written, and the message carries its token (see announcements).
        recording_event = asyncio.ensure_future(record(scope, [created]))
        await ensure_room(scope, box, counting)
        tokens = await recording_event
    finally:
        for started in (counting, recording_event):
            if started is None:
                continue
            if not started.done():
                started.cancel()
            elif not started.cancelled():
                started.exception()  # retrieved: a failure behind an earlier error is not reported again
    realm = scope.account.realm or NO_REALM
    timezone = await box_timezone(scope, box)
    doc = new_message_doc(
        account_id=scope.account.id,
        box={**box, "timezone": timezone},
        message_id=message_id,
        utc_seconds=timestamp,
        metadata=default_metadata(fields, box, realm, timestamp),
        attachment_name=recording.attachment_name(message_id) if recording else None,
        default_timezone=scope.settings.default_timezone,
        actor=scope.actor,
        node=scope.settings.node_name,
        stamped_at=naming.now_gregorian(),
    )
    if recording is not None:
        # One request writes the document and its audio: a failed upload leaves no message without audio.
        doc["_attachments"] = {recording.attachment_name(message_id): recording.inline()}
    carry(doc, tokens.values())
    await put_new_message(scope, doc)
    await scope.events.announce(created)
    return doc
