"""``POST /vmboxes/{B}/messages[/{M}]``: a folder change, a move or a copy, depending on ``source_id``
(cb_vmboxes post/3, post/4).

``source_id`` absent: folder change. A string: move to that box. A list: copy to each box. An empty one is
Kazoo's ``source_id.required`` error; destination boxes must exist (404).
"""

from __future__ import annotations

from typing import Any

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import to_response
from kazoo_vm.domain.messages import changes as message_changes
from kazoo_vm.domain.messages import moves as message_moves
from kazoo_vm.domain.messages import transit
from kazoo_vm.domain.messages.bulk import BulkResult
from kazoo_vm.domain.messages.lookup import find_message
from kazoo_vm.domain.messages.records import MessageGone, move_plan
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier, ValidationFailed
from kazoo_vm.model import BoxDoc, JsonDict, MessageMetadata
from kazoo_vm.storage.errors import StorageError

EMPTY_SOURCE = "empty source_id is specified. please set a single or a list of source_ids."


async def destinations(scope: Scope, source_id: Any) -> BoxDoc | list[BoxDoc] | None:
    """None (no ``source_id``), the box to move to, or the boxes to copy to (cb_vmboxes maybe_load_vmboxes)."""
    if source_id is None:
        return None
    if isinstance(source_id, str):
        if not source_id:
            raise ValidationFailed.single("source_id", "required", EMPTY_SOURCE)
        return await load_box(scope, source_id)
    if not isinstance(source_id, list):
        raise ValidationFailed.single(
            "source_id",
            "type",
            "Value did not match type(s): string, array",
            target=["string", "array"],
            value=source_id,
        )
    ids = [item for item in source_id if item is not None]
    if not ids or any(not isinstance(item, str) or not item for item in ids):
        raise ValidationFailed.single("source_id", "required", EMPTY_SOURCE)
    return [await load_box(scope, box_id) for box_id in dict.fromkeys(ids)]


async def change_message(
    scope: Scope, box_id: str, raw_id: str, data: JsonDict, folder: Any
) -> JsonDict | MessageMetadata:
    """One message: its metadata after a folder change, the moved document, or the copy result."""
    doc = await find_message(scope, box_id, raw_id)
    source_id = data.get("source_id")
    if move_plan(doc) is None:
        message_changes.check_retention(scope, doc, raw_id)
    elif not isinstance(source_id, str) or not source_id:
        # On its way to another box already: that move is finished, and the message is no longer here. (A move
        # goes on to move_message, which tells a retry of the same move from a move elsewhere.)
        await transit.settle(scope, doc)
        raise BadIdentifier(raw_id)
    dest = await destinations(scope, source_id)
    if dest is None:
        return await message_changes.change_folder(scope, box_id, raw_id, folder, doc)
    if isinstance(dest, dict):
        try:
            moved = await message_moves.move_message(scope, box_id, doc["_id"], dest, doc)
        except MessageGone:
            raise BadIdentifier(raw_id) from None
        # Kazoo answers with the stored document; we leave its private fields out, as every other answer does.
        return to_response(moved)
    result = BulkResult()
    try:
        result.succeeded = await message_moves.copy_message(scope, box_id, doc["_id"], dest, doc)
    except MessageGone:
        result.failed[raw_id] = "not_found"
    except StorageError as exc:
        result.failed[raw_id] = exc.reason or "datastore_fault"
    return result.as_json()


async def change_messages(scope: Scope, box_id: str, data: JsonDict, folder: Any) -> JsonDict:
    """Many messages (``data.messages``): the bulk result."""
    raw_ids = message_changes.message_ids(data, scope.settings.max_bulk_messages)
    box = await load_box(scope, box_id)
    dest = await destinations(scope, data.get("source_id"))
    if dest is None:
        return (await message_changes.change_folders(scope, box_id, raw_ids, folder, box)).as_json()
    result = BulkResult()
    ids = await message_changes.resolve_many(scope, box_id, raw_ids, result, box)
    if isinstance(dest, dict):
        outcome = await message_moves.move_messages(scope, box_id, ids, dest)
    else:
        outcome = await message_moves.copy_messages(scope, box_id, ids, dest)
    outcome.failed = {**result.failed, **outcome.failed}
    return outcome.as_json()
