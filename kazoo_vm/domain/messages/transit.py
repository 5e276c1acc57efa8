"""A message on its way to another box: the move protocol that never loses or duplicates a message.

Kazoo's move (``kzs_doc:move_doc``) copies the document into the current month's MODB with a new id, then
hard-deletes the source; a crash in between leaves two messages, and a retry makes a third. Here a move first
records its plan on the source, ``pvt_move: {"id": <target id>, "vmbox_id": <destination>, "from_vmbox_id",
"at": <time>}`` (a ``_rev``-checked write, so only one plan wins), then creates the target with exactly that id
and content (an existing target means an earlier or concurrent run did it), and only then replaces the source by
a marker that says where it went (:data:`kazoo_vm.storage.messages.MOVED_TYPE`; Kazoo deletes it).
Whoever finds a plan on a source finishes it, the same way, so every run converges on one message.

The plan also points the source's ``metadata.media_id`` at the target id. ``media_id`` is in every row of
Kazoo's listing views, and Kazoo keeps it equal to the document id (kzd_box_message update_media_id), so a
listing row whose ``media_id`` is not its document id is a source in transit: the listing finishes that move and
leaves the row out, at no cost for the other rows. Everything else that reads a message (fetch, changes, ZIP,
counts) finishes such a move too, so a crashed move is completed by the next read that meets it, and its
source is never shown beside its copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
from typing import Any

from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import Actor
from kazoo_vm.domain.messages import audio
from kazoo_vm.domain.messages.documents import NO_REALM, apply_folder, message_name
from kazoo_vm.domain.messages.records import (
    MOVE_MARKER,
    MessageGone,
    move_plan,
    put_new_message,
    read_message,
    update_message,
)
from kazoo_vm.errors import DatastoreConflict
from kazoo_vm.model import BoxDoc, MessageDoc, MovePlan
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.boxes import read_box
from kazoo_vm.storage.errors import Conflict, NotFound, StorageError
from kazoo_vm.storage.messages import as_message

log = logging.getLogger(__name__)

# Keys a copy does not inherit (kz_data ?DELETE_KEYS, plus our move plan and the soft-delete flag).
_NOT_COPIED = ("_id", "_rev", "id", "_attachments", "pvt_attachments", MOVE_MARKER, "pvt_deleted")


def transformed(
    scope: Scope, source: MessageDoc, new_id: str, from_box: str, dest: BoxDoc, zone: str, now: int
) -> MessageDoc:
    """The copy of ``source`` that lands in ``dest`` (kvm_util get_change_vmbox_funs, in Kazoo's order)."""
    doc = as_message({key: copy.deepcopy(value) for key, value in source.items() if key not in _NOT_COPIED})
    doc["_id"] = new_id
    doc["source_id"] = dest["_id"]
    apply_folder(doc, "new")
    utc_seconds = source.get("utc_seconds")
    old_time = utc_seconds if isinstance(utc_seconds, int) else now
    doc["name"] = message_name(dest.get("mailbox"), old_time, zone, scope.settings.default_timezone)
    metadata = doc["metadata"]
    realm = scope.account.realm or NO_REALM
    mailbox = str(dest.get("mailbox", ""))
    # Kazoo rewrites only "to"; its to_user/to_realm would keep naming the old box.
    metadata.update({"to": f"{mailbox}@{realm}", "to_user": mailbox, "to_realm": realm})
    doc["history"] = [*(doc.get("history") or []), from_box]
    metadata["media_id"] = new_id
    metadata["timestamp"] = now
    doc["utc_seconds"] = now
    return scope.stamp(doc, now=now)


async def destination_zone(scope: Scope, box: BoxDoc) -> str:
    return await box_timezone(scope, box)


async def inline_audio(scope: Scope, source: MessageDoc) -> dict[str, Any]:
    """The source's recording as ``_attachments`` content for a copy (also when it sits behind a
    ``kz_att_link``: Kazoo's move_doc materialises attachments too); empty when it has none."""
    ref = await audio.locate(scope.store, scope.db(source["_id"]), source)
    if ref is None:
        return {}
    return {ref.shown_name: await audio.read_inline(scope.store, ref)}


def with_audio(target: MessageDoc, inline: dict[str, Any]) -> MessageDoc:
    if inline:
        target["_attachments"] = copy.deepcopy(inline)
        target["media_filename"] = next(iter(inline))
    return target


def with_plan(source: MessageDoc, dest_id: str, from_box: str) -> MessageDoc:
    """``source`` with a new move plan into box ``dest_id`` recorded on it (its ``media_id`` names the target)."""
    now = naming.now_gregorian()
    plan = MovePlan(id=naming.message_id(now), vmbox_id=dest_id, from_vmbox_id=from_box, at=now)
    source[MOVE_MARKER] = plan
    source.setdefault("metadata", {})["media_id"] = plan["id"]
    return source


async def _retire(scope: Scope, source: MessageDoc, plan: MovePlan) -> None:
    """Replace the moved source by its marker: Kazoo's move_doc hard-deletes it, but on a cluster a deleted source
    can come back (see :mod:`kazoo_vm.storage.messages`)."""
    await stored_messages.retire_moved(scope.store, scope.db(source["_id"]), source, plan, naming.now_gregorian())


# A conflict older than this is a leftover (its writers are done, e.g. cut off by a node that died), not a race
# in progress: it is settled by CouchDB's own choice of winner.
SETTLE_CONFLICTS_AFTER_S = 30
# How long a move waits, in steps, for a race on its source to settle before answering 409.
_CONFLICT_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8)


async def _confirm_plan(scope: Scope, source: MessageDoc, plan: MovePlan) -> None:
    """Refuse (409) to act on ``plan`` unless CouchDB holds it as the source's only live revision.

    On a CouchDB cluster two writers racing to record different plans can both see their write accepted for a
    moment (:meth:`CouchStore.put_doc` makes all but one give way): a target made from a plan that gives way would
    be a second copy of the message. While such a race settles the move answers 409; a conflict
    left behind for longer (writers cut off by a dying node) is settled by deleting the revisions CouchDB did not
    choose, so the one every reader already sees stays. A source gone meanwhile is left to the caller's checks."""
    db = scope.db(source["_id"])
    for pause in (*_CONFLICT_PAUSES_S, None):
        try:
            # Every copy: a rival plan may sit on one copy only until its writer gives way.
            current = await scope.store.get_doc_from_every_copy(db, source["_id"], conflicts=True)
        except NotFound:
            return
        if stored_messages.is_moved_away(current):
            return  # moved by a concurrent run: the caller finds the target
        if not current.get("_conflicts") or pause is None:
            break
        # A rival's write usually gives way within milliseconds (CouchStore.put_doc): look again shortly.
        await asyncio.sleep(pause)
    losers = [str(rev) for rev in current.get("_conflicts") or []]
    if losers:
        if naming.now_gregorian() - int(current.get("pvt_modified") or 0) < SETTLE_CONFLICTS_AFTER_S:
            raise DatastoreConflict()
        for rev in losers:
            with contextlib.suppress(StorageError):
                await scope.store.delete_doc(db, source["_id"], rev)
        raise DatastoreConflict()  # settled: the client's retry acts on the winner
    if move_plan(current) != plan:
        raise DatastoreConflict()


async def finish(scope: Scope, source: MessageDoc, plan: MovePlan, dest: BoxDoc | None = None) -> MessageDoc:
    """Carry out a recorded move plan: create the target (unless it exists), then remove the source.

    Raises :class:`MessageGone` when the source vanished without its target (nothing left to finish).
    """
    await _confirm_plan(scope, source, plan)
    target_id = str(plan["id"])
    if dest is None:
        try:
            dest = await read_box(scope.store, scope.account.db, str(plan["vmbox_id"]))
        except NotFound:
            dest = {"_id": plan["vmbox_id"]}
    zone = await destination_zone(scope, dest)
    from_box = str(plan.get("from_vmbox_id") or source.get("source_id") or "")
    target = transformed(scope, source, target_id, from_box, dest, zone, int(plan["at"]))
    try:
        inline = await inline_audio(scope, source)
    except NotFound:
        present, retired = await stored_messages.message_or_move(scope.store, scope.db(source["_id"]), source["_id"])
        if present is None:
            # A concurrent run finished a move of it and retired the source (with its audio).
            existing = await _moved_target(scope, target_id, retired)
            if existing is None:
                raise MessageGone(source["_id"]) from None
            return existing
        inline = {}  # the recording cannot be read (a dangling kz_att_link): the message still moves
    target = await _create_target(scope, target, inline)
    await _retire(scope, source, plan)
    return await follow_box(scope, target, str(dest["_id"]))


async def _moved_target(scope: Scope, target_id: str, retired: MovePlan | None) -> MessageDoc | None:
    """The target ``target_id`` of a move another run finished. When the source's marker says this very move was
    made (``retired``, the move it records), the target exists (it is written before the marker): a read through
    a lagging copy may miss it for a moment, so it is read again."""
    attempts = _TARGET_ATTEMPTS if retired is not None and retired.get("id") == target_id else 1
    for attempt in range(attempts):
        existing = await read_message(scope, target_id)
        if existing is not None or attempt + 1 == attempts:
            return existing
        await asyncio.sleep(0.05 * (attempt + 1))
    return None


async def _create_target(scope: Scope, target: MessageDoc, inline: dict[str, Any]) -> MessageDoc:
    """Write the target of a move, or find it written by an earlier or concurrent run; the source is removed only
    after this. A conflict is not proof that the target exists: on a cluster both writers of a racing create can
    be refused, or give way (:meth:`CouchStore.put_doc`), so the target is read back, and written again if it is
    missing."""
    for attempt in range(_TARGET_ATTEMPTS):
        try:
            await put_new_message(scope, with_audio(target, inline))
            return target
        except Conflict:
            existing = await read_message(scope, str(target["_id"]))
            if existing is not None:
                return existing
            await asyncio.sleep(0.05 * (attempt + 1))
    raise DatastoreConflict()


# Writes of a move's target before the move answers 409 (its source stays; a later read finishes the move).
_TARGET_ATTEMPTS = 5


# The folder of a soft-deleted message (kzd_box_message's ?VM_FOLDER_DELETED).
_DELETED_FOLDER = "deleted"


async def follow_box(scope: Scope, target: MessageDoc, box_id: str) -> MessageDoc:
    """A message just written into box ``box_id`` (moved or copied there) shares the box's fate.

    Deleting a box soft-deletes its messages, then the box, then sweeps its messages once more; a message
    written into the box after that last sweep listed it is caught here instead: the box is read after the
    message was written, and when it is deleted by now the message is soft-deleted with it, stamped with the
    deleting request's ``pvt_request_id``/``pvt_auth_*`` (kept on the box). Either way no live message is
    left in a deleted box, and the move or copy the client is told about did happen, before the deletion."""
    try:
        box: BoxDoc | None = await read_box(scope.store, scope.account.db, box_id)
    except NotFound:
        box = None  # removed outright (a hard delete)
    if box is not None and box.get("pvt_type") == "vmbox" and not box.get("pvt_deleted"):
        return target
    actor = scope.actor
    if box is not None:
        actor = Actor(
            account_id=box.get("pvt_auth_account_id"),
            user_id=box.get("pvt_auth_user_id"),
            request_id=box.get("pvt_request_id"),
        )

    def bury(doc: MessageDoc) -> bool:
        if doc.get("pvt_deleted"):
            return False
        apply_folder(doc, _DELETED_FOLDER, soft_delete=True)
        return True

    try:
        return await update_message(dataclasses.replace(scope, actor=actor), str(target["_id"]), bury)
    except MessageGone:
        return target


async def settle(scope: Scope, source: MessageDoc) -> MessageDoc | None:
    """Finish the move ``source`` is on (if any); the target, or None when there was no plan to finish."""
    plan = move_plan(source)
    if plan is None:
        return None
    try:
        return await finish(scope, source, plan)
    except MessageGone:
        return None


async def settle_id(scope: Scope, message_id: str) -> bool:
    """Read ``message_id`` and finish its move if it is in transit; True when it was (it is gone now)."""
    source = await read_message(scope, message_id)
    if move_plan(source) is None:
        return False
    assert source is not None
    await settle(scope, source)
    return True


async def settle_quietly(scope: Scope, message_id: str) -> bool:
    """:func:`settle_id` for readers of many messages (listings, counts), which must not fail because one move
    cannot be finished right now: the failure is logged and the message taken as not in transit (listed where
    it is, rather than not at all)."""
    try:
        return await settle_id(scope, message_id)
    except DatastoreConflict:
        # Its source is in conflict on a cluster (see _confirm_plan): a later read finishes the move.
        log.warning("the move of %s is contested right now; it stays in its old box meanwhile", message_id)
        return False
    except StorageError:
        log.exception("finishing the move of %s failed; it stays in its old box meanwhile", message_id)
        return False


def in_transit_row(doc_id: str, value: Any) -> bool:
    """Whether a listing row (of Kazoo's ``listing_by_*`` views) is a source whose move plan points its
    ``media_id`` elsewhere."""
    media_id = value.get("media_id") if isinstance(value, dict) else None
    return isinstance(media_id, str) and media_id != doc_id
