"""Folder changes, soft deletes and audio replacement of existing messages (kvm_message:change_folder,
kvm_messages:change_folder).

* ``POST`` with a folder: ``new``/``saved`` as given, ``deleted`` = the trash (still listed), anything else
  ``saved`` (cb_vmboxes get_folder_filter).
* ``DELETE``: soft delete, ``pvt_deleted: true`` plus folder ``deleted``; the message is gone from every view.
* Messages older than retention are refused (single: 400 ``date_range``; bulk: ``prior_to_retention_duration``,
  after saving them retention-enforced as kvm_message does).

Every write goes through :func:`kazoo_vm.domain.messages.update_message` or ``bulk_update``: conflicts are re-read
and re-applied, never lost.
"""

from __future__ import annotations

from typing import Any

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.inputs import UploadedFile
from kazoo_vm.domain.legacy import ids as legacy_ids
from kazoo_vm.domain.messages import audio, retention
from kazoo_vm.domain.messages.announcements import carries, carry, new_token, record
from kazoo_vm.domain.messages.bulk import (
    SKIP,
    WRITE,
    BulkChange,
    BulkResult,
    Decision,
    bulk_update,
    failed,
    read_settled,
)
from kazoo_vm.domain.messages.documents import apply_folder, folder_of, public_metadata
from kazoo_vm.domain.messages.listing import box_entries
from kazoo_vm.domain.messages.listing_query import Window
from kazoo_vm.domain.messages.lookup import load_message, resolve_id, resolve_ids
from kazoo_vm.domain.messages.records import (
    NOT_FOUND,
    MessageEdit,
    MessageGone,
    box_change,
    is_box_message,
    update_message,
)
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier, ValidationFailed
from kazoo_vm.events import MessageChange, MessageEvent
from kazoo_vm.model import BoxDoc, JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.storage import naming

TRASH = "deleted"
ALL = "all"
MESSAGES_REQUIRED = "No array of message ids are specified"


def target_folder(value: Any) -> str:
    """cb_vmboxes get_folder_filter for changes: anything but new/saved/deleted means ``saved``."""
    return value if value in ("new", "saved", TRASH) else "saved"


def delete_selection(value: Any) -> str | None:
    """The folder a bulk delete empties (None: every folder). ``all`` is Kazoo's own word for every folder
    (get_folder_filter's default); Kazoo also treats an unknown folder as "all", which turns a typo into
    deleting everything, so we refuse it instead."""
    if value is None or value == ALL:
        return None
    if value in ("new", "saved", TRASH):
        return str(value)
    raise ValidationFailed.single(
        "folder",
        "enum",
        "Value not found in enumerated list of values",
        target=["new", "saved", TRASH, ALL],
        value=value,
    )


def message_ids(data: JsonDict, limit: int) -> list[str]:
    """``data.messages``: a non-empty list of at most ``limit`` ids, else Kazoo's ``messages.required`` error
    (or ``maxItems``: every id may cost a lookup in each month of the retention period)."""
    ids = data.get("messages")
    if not isinstance(ids, list) or not ids:
        raise ValidationFailed.single("messages", "required", MESSAGES_REQUIRED)
    return _within_limit(ids, limit)


def _within_limit(ids: list[Any], limit: int) -> list[str]:
    if len(ids) > limit:
        raise ValidationFailed.single(
            "messages", "maxItems", f"The list is more than {limit} items", target=limit, cause=len(ids)
        )
    return list(dict.fromkeys(str(item) for item in ids))


def check_retention(scope: Scope, doc: MessageDoc, raw_id: str) -> None:
    """cb_vmboxes validate_message/4: an expired message cannot be changed (400 ``date_range``)."""
    oldest = scope.oldest()
    if retention.is_prior(doc, oldest):
        raise retention.change_refused(raw_id, oldest)


def _changes_folder(doc: MessageDoc, folder: str, *, soft_delete: bool) -> bool:
    """kvm_message set_folder: the same folder is left alone, except for a delete."""
    return soft_delete or folder_of(doc) != folder


def _set_folder(doc: MessageDoc, folder: str, *, soft_delete: bool, token: str | None = None) -> bool:
    """Put ``doc`` in ``folder`` (and soft-delete it), carrying the recorded event's ``token``; False when a plain
    folder change has nothing to do."""
    if not _changes_folder(doc, folder, soft_delete=soft_delete):
        return False
    apply_folder(doc, folder, soft_delete=soft_delete)
    if token is not None:
        carry(doc, [token])
    return True


def _folder_change(folder: str, *, soft_delete: bool, token: str | None = None) -> MessageEdit:
    return lambda doc: _set_folder(doc, folder, soft_delete=soft_delete, token=token)


async def _update(
    scope: Scope, box_id: str, raw_id: str, doc: MessageDoc, change: MessageEdit, token: str | None = None
) -> MessageDoc:
    """Save ``change`` (carrying ``token``) to this box's message ``doc``; 404 when it stopped being the box's
    message meanwhile. A re-read that shows the change already saved (it carries ``token``) ends the update: CouchDB
    can refuse a write (409, 412) that a copy took all the same while a node fails or catches up."""
    guarded = box_change(box_id, change)

    def once(current: MessageDoc) -> bool:
        return False if carries(current, token) else guarded(current)

    try:
        return await update_message(scope, doc["_id"], once, doc)
    except MessageGone:
        raise BadIdentifier(raw_id) from None


async def _change_one(
    scope: Scope, box_id: str, raw_id: str, folder: str, *, soft_delete: bool, doc: MessageDoc | None = None
) -> MessageMetadata:
    if doc is None:
        doc = await load_message(scope, box_id, raw_id)
    check_retention(scope, doc, raw_id)
    event = _folder_event(scope, box_id, doc["_id"], folder, soft_delete=soft_delete)
    # The event is kept before the change is written, and the change carries its token (see announcements).
    token = None
    if _changes_folder(doc, folder, soft_delete=soft_delete):
        token = (await record(scope, [event])).get(event.message_id)
    change = _folder_change(folder, soft_delete=soft_delete, token=token)
    changed = await _update(scope, box_id, raw_id, doc, change, token)
    await scope.events.announce(event)
    return public_metadata(changed)


def _folder_event(scope: Scope, box_id: str, message_id: str, folder: str, *, soft_delete: bool) -> MessageEvent:
    change = MessageChange.DELETED if soft_delete else MessageChange.FOLDER_CHANGED
    return scope.event(change, box_id, message_id, folder=folder, token=new_token())


async def change_folder(
    scope: Scope, box_id: str, raw_id: str, folder: Any, doc: MessageDoc | None = None
) -> MessageMetadata:
    """``POST /{B}/messages/{M}`` without ``source_id``; returns the updated metadata."""
    return await _change_one(scope, box_id, raw_id, target_folder(folder), soft_delete=False, doc=doc)


async def delete_message(scope: Scope, box_id: str, raw_id: str) -> MessageMetadata:
    """``DELETE /{B}/messages/{M}``: soft delete; returns the metadata, folder ``deleted``."""
    return await _change_one(scope, box_id, raw_id, TRASH, soft_delete=True)


async def fetch_message(scope: Scope, box_id: str, raw_id: str) -> MessageDoc:
    """``GET /{B}/messages/{M}``: the message, retention-enforced when expired (not saved).

    A message without a folder is answered and saved as ``new``, as the 4.3 API document says (4.3's code does
    not save it, which leaves such messages out of every count).
    """
    doc = await load_message(scope, box_id, raw_id)
    if retention.is_prior(doc, scope.oldest()):
        return retention.enforce_doc(doc)
    if folder_of(doc) is None:

        def give_folder(current: MessageDoc) -> bool:
            if folder_of(current) is not None:
                return False  # someone else set one meanwhile: keep theirs
            apply_folder(current, "new")
            return True

        doc = await _update(scope, box_id, raw_id, doc, give_folder)
    return doc


async def replace_audio(scope: Scope, box_id: str, raw_id: str, files: list[UploadedFile]) -> MessageDoc:
    """``PUT /{B}/messages/{M}/raw``: the upload replaces every attachment, in one document write."""
    doc = await load_message(scope, box_id, raw_id)
    upload = audio.single_upload(files, required=True)
    assert upload is not None
    recording = audio.prepare(upload)
    name = recording.attachment_name(doc["_id"])
    inline = recording.inline()

    def replace(current: MessageDoc) -> bool:
        # crossbar_util maybe_remove_attachments drops real and handler-backed attachments alike.
        current.pop("pvt_attachments", None)
        current["_attachments"] = {name: dict(inline)}
        current["media_filename"] = name
        return True

    return await _update(scope, box_id, raw_id, doc, replace)


async def resolve_many(
    scope: Scope, box_id: str, raw_ids: list[str], result: BulkResult, box: BoxDoc | None = None
) -> dict[str, str]:
    """``{MODB id: requested id}`` for the ids that can name a message; the others fail ``not_found``."""
    resolved = await resolve_ids(scope, box_id, raw_ids, box)
    result.failed.update(dict.fromkeys(resolved.unknown, NOT_FOUND))
    return resolved.ids


def _bulk_change(scope: Scope, box_id: str, folder: str, *, soft_delete: bool, tokens: dict[str, str]) -> BulkChange:
    """The change of each message; ``tokens`` (filled once the events are recorded) is what each carries when it is
    decided again after a lost write race."""
    oldest = scope.oldest()

    def change(doc: MessageDoc | None) -> Decision:
        if doc is not None and carries(doc, tokens.get(doc["_id"])):
            return SKIP  # decided again after a refused write that a copy took after all: it is done
        # Kazoo's bulk path also changes soft-deleted documents (all_docs returns them); they count as missing here.
        if doc is None or not is_box_message(doc, box_id):
            return failed(NOT_FOUND)
        if retention.is_prior(doc, oldest):
            already = (doc.get("metadata") or {}).get("retention") == "enforced"
            if not already:
                retention.enforce_doc(doc)  # kvm_message saves the enforced form, then reports the refusal
            return failed(retention.PRIOR_TO_RETENTION, write=not already)
        return WRITE if _set_folder(doc, folder, soft_delete=soft_delete, token=tokens.get(doc["_id"])) else SKIP

    return change


async def _bulk_apply(scope: Scope, box_id: str, ids: dict[str, str], folder: str, soft_delete: bool) -> BulkResult:
    """Apply a folder change to resolved ids (``{MODB id: requested id}``). Succeeded lists the MODB ids (a
    migrated legacy message is answered with its new id); failures stay under the ids the client sent."""
    tokens: dict[str, str] = {}
    events: dict[str, MessageEvent] = {}

    async def record_changes(changed: dict[str, MessageDoc]) -> None:
        # The events are kept before the changes are written, and each change carries its token (announcements).
        events.update(
            {
                message_id: _folder_event(scope, box_id, message_id, folder, soft_delete=soft_delete)
                for message_id in changed
            }
        )
        tokens.update(await record(scope, list(events.values())))
        for message_id, token in tokens.items():
            carry(changed[message_id], [token])

    change = _bulk_change(scope, box_id, folder, soft_delete=soft_delete, tokens=tokens)
    outcome = await bulk_update(scope, list(ids), change, before_write=record_changes)
    await scope.events.announce_all(
        events.get(message_id) or _folder_event(scope, box_id, message_id, folder, soft_delete=soft_delete)
        for message_id in outcome.succeeded
    )
    return BulkResult(
        succeeded=outcome.succeeded,
        failed={ids.get(message_id, message_id): reason for message_id, reason in outcome.failed.items()},
    )


async def change_folders(
    scope: Scope, box_id: str, raw_ids: list[str], folder: Any, box: BoxDoc | None = None
) -> BulkResult:
    """``POST /{B}/messages`` without ``source_id``."""
    result = BulkResult()
    ids = await resolve_many(scope, box_id, raw_ids, result, box)
    changed = await _bulk_apply(scope, box_id, ids, target_folder(folder), soft_delete=False)
    changed.failed = {**result.failed, **changed.failed}
    return changed


def _retained(scope: Scope) -> Window:
    now = naming.now_gregorian()
    return Window(retention.cutoff(scope.settings, now), now)


async def delete_messages(
    scope: Scope, box: BoxDoc, selected_ids: list[str] | None, folder: str | None, *, legacy: bool = True
) -> BulkResult:
    """``DELETE /{B}/messages``: soft-delete the box's retained messages that are listed in ``selected_ids``, or in
    ``folder``, or all of them (with the not yet migrated ones when ``legacy``). Ids that are not the box's
    retained messages are left out silently (as Kazoo)."""
    box_id = box["_id"]
    window = _retained(scope)
    if selected_ids is not None:
        candidates = await _retained_among(scope, box_id, (await resolve_ids(scope, box_id, selected_ids, box)).ids)
    else:
        candidates = {}
        for entry in await box_entries(scope, box_id, window):
            if folder is None or entry.value.get("folder") == folder:
                candidates[entry.doc_id] = entry.doc_id
        unmigrated = await legacy_ids.legacy_summaries(scope, box) if legacy else []
        migrated: dict[str, str] = {}
        for item in unmigrated:
            timestamp = item.get("timestamp")
            if isinstance(timestamp, int) and not window.low <= timestamp <= window.high:
                continue  # older than retention: Kazoo's delete-all never sees it, so it is not migrated for it
            if folder is None or item.get("folder") == folder:
                legacy_id = item.get("media_id")
                message_id = await resolve_id(scope, box_id, legacy_id, box) if isinstance(legacy_id, str) else None
                if message_id is not None:
                    migrated[message_id] = message_id
        # An entry without a timestamp gets one when migrated: keep it only if that falls within retention.
        for message_id in await _retained_among(scope, box_id, migrated):
            candidates.setdefault(message_id, message_id)
    if not candidates:
        return BulkResult()
    return await _bulk_apply(scope, box_id, candidates, TRASH, soft_delete=True)


async def delete_requested(scope: Scope, box_id: str, data: JsonDict, folder: Any) -> BulkResult:
    """``DELETE /{B}/messages``: the ids in ``data.messages`` when it is a list, else the ``folder`` (data, query
    string or envelope; ``all`` or none: every folder)."""
    box = await load_box(scope, box_id)
    listed = data.get("messages")
    if isinstance(listed, list):
        return await delete_messages(scope, box, _within_limit(listed, scope.settings.max_bulk_messages), None)
    return await delete_messages(scope, box, None, delete_selection(folder))


async def _retained_among(scope: Scope, box_id: str, chosen: dict[str, str]) -> dict[str, str]:
    docs = await read_settled(scope, list(chosen))
    oldest = scope.oldest()
    return {
        message_id: raw_id
        for message_id, raw_id in chosen.items()
        if is_box_message(docs.get(message_id), box_id) and not retention.is_prior(docs[message_id], oldest)
    }


async def delete_box_messages(scope: Scope, box: BoxDoc) -> None:
    """Before a box is deleted: soft-delete its retained messages (cb_vmboxes delete/2). Not yet migrated legacy
    messages live in the box document and go with it; migrating them only to delete them would be wasted work."""
    await delete_messages(scope, box, None, None, legacy=False)
