"""Moving and copying messages to other boxes (kazoo-storage-model.md §4.5, §4.6; kvm_util get_change_vmbox_funs).

Both write a new document with a new id in the current month's MODB, folder ``new``, timestamp now, ``to`` and
``name`` for the new box, the old box appended to ``history``, and the audio materialised as a real attachment in
the same write (also when the source's audio sits behind a ``kz_att_link``). A copy leaves the source alone.

A move must never lose or duplicate a message, even when it crashes half-way or runs twice at once. So it first
records its plan on the source document, ``pvt_move: {"id": <target id>, "vmbox_id": <destination>, "at": <time>}``
(a ``_rev``-checked write, so only one plan wins), then creates the target (an existing target means an earlier
or concurrent run already did), and only then deletes the source. Whoever finds a plan on a source finishes that
plan, with the same target id and content, so every retry converges on exactly one message.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.messages import audio, retention
from kazoo_vm.domain.messages.documents import NO_REALM, apply_folder, message_name
from kazoo_vm.domain.messages.records import (
    MAX_ATTEMPTS,
    NOT_FOUND,
    BulkResult,
    MessageGone,
    Scope,
    is_box_message,
    put_new_message,
    read_message,
    update_message,
)
from kazoo_vm.errors import DatastoreConflict
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import JsonDict
from kazoo_vm.storage.errors import Conflict, NotFound, StorageError

MOVE_MARKER = "pvt_move"
# Keys a copy does not inherit (kz_data ?DELETE_KEYS, plus our move plan and the soft-delete flag).
_NOT_COPIED = ("_id", "_rev", "id", "_attachments", "pvt_attachments", MOVE_MARKER, "pvt_deleted")
# Messages moved or copied at once by a bulk request.
CONCURRENCY = 8

T = TypeVar("T")


async def _destination_zone(scope: Scope, box: JsonDict) -> str:
    return await box_timezone(scope.store, scope.settings, scope.account, box)


def transformed(scope: Scope, source: JsonDict, new_id: str, from_box: str, dest: JsonDict, zone: str, now: int) -> JsonDict:
    """The copy of ``source`` that lands in ``dest`` (Kazoo's change-vmbox transforms, in Kazoo's order)."""
    doc = {key: copy.deepcopy(value) for key, value in source.items() if key not in _NOT_COPIED}
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


async def _with_audio(scope: Scope, source: JsonDict, target: JsonDict) -> JsonDict:
    ref = await audio.locate(scope.store, scope.db(source["_id"]), source)
    if ref is not None:
        target["_attachments"] = {ref.shown_name: await audio.read_inline(scope.store, ref)}
        target["media_filename"] = ref.shown_name
    return target


async def _remove(scope: Scope, doc: JsonDict) -> None:
    """Hard-delete the moved source (Kazoo's move_doc does too), whatever its revision by now."""
    db = scope.db(doc["_id"])
    rev = doc["_rev"]
    for _attempt in range(MAX_ATTEMPTS):
        try:
            await scope.store.delete_doc(db, doc["_id"], rev)
            return
        except NotFound:
            return
        except Conflict:
            try:
                rev = (await scope.store.get_doc(db, doc["_id"]))["_rev"]
            except NotFound:
                return  # already removed by a concurrent run of the same move
    raise DatastoreConflict()


async def _finish(scope: Scope, source: JsonDict, plan: JsonDict, dest: JsonDict | None) -> JsonDict:
    """Carry out a recorded move plan: create the target (unless it exists), then remove the source."""
    target_id = str(plan["id"])
    if dest is None:
        try:
            dest = await scope.store.get_doc(scope.account.db, str(plan["vmbox_id"]))
        except NotFound:
            dest = {"_id": plan["vmbox_id"]}
    zone = await _destination_zone(scope, dest)
    from_box = str(plan.get("from_vmbox_id") or source.get("source_id") or "")
    target = transformed(scope, source, target_id, from_box, dest, zone, int(plan["at"]))
    try:
        await put_new_message(scope, await _with_audio(scope, source, target))
    except Conflict:
        target = await read_message(scope, target_id) or target  # an earlier or concurrent run created it
    await _remove(scope, source)
    return target


async def move_message(
    scope: Scope, box_id: str, message_id: str, dest: JsonDict, source: JsonDict | None = None
) -> JsonDict:
    """Move one message of ``box_id`` into box ``dest``; returns the new document. ``source`` is the message
    document when the caller has just read it.

    Raises :class:`MessageGone` when the message is not (any more) this box's, including when a move of it
    into another box was already under way: that move is completed, not overridden.
    """
    for _attempt in range(MAX_ATTEMPTS):
        if source is None:
            source = await read_message(scope, message_id)
        if source is None or not is_box_message(source, box_id):
            raise MessageGone(message_id)
        plan = source.get(MOVE_MARKER)
        if isinstance(plan, dict) and plan.get("id") and plan.get("vmbox_id"):
            if plan["vmbox_id"] != dest["_id"]:
                await _finish(scope, source, plan, None)
                raise MessageGone(message_id)
            return await _finish(scope, source, plan, dest)
        now = naming.now_gregorian()
        plan = {"id": naming.message_id(now), "vmbox_id": dest["_id"], "from_vmbox_id": box_id, "at": now}
        source[MOVE_MARKER] = plan
        try:
            await scope.store.put_doc(scope.db(message_id), source)
        except Conflict:
            source = None
            continue  # someone changed the source meanwhile: look again
        return await _finish(scope, source, plan, dest)
    raise DatastoreConflict()


async def copy_message(
    scope: Scope, box_id: str, message_id: str, dests: list[JsonDict], source: JsonDict | None = None
) -> list[str]:
    """Copy one message of ``box_id`` into every box of ``dests``; returns the new ids, in order."""
    if source is None:
        source = await read_message(scope, message_id)
    if source is None or not is_box_message(source, box_id):
        raise MessageGone(message_id)
    now = naming.now_gregorian()
    inline: dict[str, Any] = {}
    ref = await audio.locate(scope.store, scope.db(message_id), source)
    if ref is not None:
        inline = {ref.shown_name: await audio.read_inline(scope.store, ref)}
    created = []
    for dest in dests:
        new_id = naming.message_id(now)
        target = transformed(scope, source, new_id, box_id, dest, await _destination_zone(scope, dest), now)
        if inline:
            target["_attachments"] = copy.deepcopy(inline)
            target["media_filename"] = next(iter(inline))
        await put_new_message(scope, target)
        created.append(new_id)
    return created


async def expire(scope: Scope, source: JsonDict) -> None:
    """Save an expired message retention-enforced, as kvm_message does before refusing to change it."""

    def enforce(doc: JsonDict) -> bool:
        if (doc.get("metadata") or {}).get("retention") == "enforced":
            return False
        retention.enforce_doc(doc)
        return True

    try:
        await update_message(scope, source["_id"], enforce, source)
    except MessageGone:
        pass


Outcome = tuple[str, str | None, str | None]  # (message id, new id, failure reason)


async def _each(scope: Scope, box_id: str, message_id: str, act: Callable[[JsonDict], Awaitable[list[str]]]) -> list[Outcome]:
    """Read one message of a bulk move or copy, refuse it when missing or expired, else ``act`` on it."""
    try:
        source = await read_message(scope, message_id)
        if source is None or not is_box_message(source, box_id):
            return [(message_id, None, NOT_FOUND)]
        if retention.is_prior(source, scope.oldest()):
            await expire(scope, source)
            return [(message_id, None, retention.PRIOR_TO_RETENTION)]
        return [(message_id, new_id, None) for new_id in await act(source)]
    except MessageGone:
        return [(message_id, None, NOT_FOUND)]
    except StorageError as exc:
        return [(message_id, None, exc.reason or "datastore_fault")]


async def _bounded(jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def move_messages(scope: Scope, box_id: str, ids: dict[str, str], dest: JsonDict) -> BulkResult:
    """Bulk move of resolved ids (``{MODB id: requested id}``); succeeded lists the new ids."""

    def job(message_id: str) -> Callable[[], Awaitable[list[Outcome]]]:
        async def act(source: JsonDict) -> list[str]:
            return [(await move_message(scope, box_id, message_id, dest, source))["_id"]]

        return lambda: _each(scope, box_id, message_id, act)

    return _collect([o for batch in await _bounded([job(message_id) for message_id in ids]) for o in batch], ids)


async def copy_messages(scope: Scope, box_id: str, ids: dict[str, str], dests: list[JsonDict]) -> BulkResult:
    """Bulk copy of resolved ids to every box of ``dests``; succeeded lists the new ids."""

    def job(message_id: str) -> Callable[[], Awaitable[list[Outcome]]]:
        async def act(source: JsonDict) -> list[str]:
            return await copy_message(scope, box_id, message_id, dests, source)

        return lambda: _each(scope, box_id, message_id, act)

    return _collect([o for batch in await _bounded([job(message_id) for message_id in ids]) for o in batch], ids)


def _collect(outcomes: list[Outcome], ids: dict[str, str]) -> BulkResult:
    result = BulkResult()
    for message_id, new_id, reason in outcomes:
        if new_id is not None:
            result.succeeded.append(new_id)
        else:
            result.failed[ids.get(message_id, message_id)] = reason or NOT_FOUND
    return result
