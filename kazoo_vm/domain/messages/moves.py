"""Moving and copying messages to other boxes (kvm_messages:move_to_vmbox,
kvm_message:copy_to_vmboxes, kvm_util get_change_vmbox_funs).

Both write a new document with a new id in the current month's MODB, folder ``new``, timestamp now, ``to`` and
``name`` for the new box, the old box appended to ``history``, and the audio materialised as a real attachment in
the same write (also when the source's audio sits behind a ``kz_att_link``). A copy leaves the source alone; a
move follows the crash-safe protocol of :mod:`.transit`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kazoo_vm.concurrency import gather_bounded
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import retention, transit
from kazoo_vm.domain.messages.announcements import carry, new_token, record
from kazoo_vm.domain.messages.bulk import BulkResult
from kazoo_vm.domain.messages.documents import folder_of
from kazoo_vm.domain.messages.records import (
    NOT_FOUND,
    MessageGone,
    belongs,
    box_change,
    is_live,
    move_plan,
    put_new_message,
    read_message,
    update_message,
)
from kazoo_vm.events import MessageChange
from kazoo_vm.model import BoxDoc, MessageDoc, MovePlan
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.errors import NotFound, StorageError

# Messages moved or copied at once by a bulk request.
CONCURRENCY = 8

T = TypeVar("T")


async def _source(scope: Scope, box_id: str, message_id: str, source: MessageDoc | None) -> MessageDoc:
    """The live message ``message_id`` of ``box_id`` (read unless given), in transit or not."""
    if source is None:
        source = await read_message(scope, message_id)
    if source is None or not is_live(source) or not belongs(source, box_id):
        raise MessageGone(message_id)
    return source


async def move_message(
    scope: Scope, box_id: str, message_id: str, dest: BoxDoc, source: MessageDoc | None = None
) -> MessageDoc:
    """Move one message of ``box_id`` into box ``dest``; returns the new document. ``source`` is the message
    document when the caller has just read it.

    Raises :class:`MessageGone` when the message is not (any more) this box's, including when a move of it
    into another box was already under way: that move is completed, not overridden. A move into the same box
    as the recorded one is a retry: it completes the recorded move and answers its target.
    """
    source = await _source(scope, box_id, message_id, source)
    found: list[MovePlan] = []  # a plan already on the message (recorded by another request or process)

    def plan_move(doc: MessageDoc) -> MessageDoc | None:
        if not is_live(doc) or not belongs(doc, box_id):
            raise MessageGone(message_id)
        found.clear()
        existing = move_plan(doc)
        if existing is not None:
            found.append(existing)
            return None
        return transit.with_plan(doc, dest["_id"], box_id)

    try:
        source = await stored_messages.update_message(
            scope.store, scope.db(message_id), message_id, plan_move, current=source
        )
    except NotFound:
        raise MessageGone(message_id) from None
    plan = move_plan(source)
    assert plan is not None
    if found and plan["vmbox_id"] != dest["_id"]:
        await transit.settle(scope, source)
        raise MessageGone(message_id)
    moved = await transit.finish(scope, source, plan, dest)
    await scope.events.announce(
        scope.event(MessageChange.MOVED, dest["_id"], moved["_id"], previous_id=message_id, folder=folder_of(moved))
    )
    return moved


async def copy_message(
    scope: Scope, box_id: str, message_id: str, dests: list[BoxDoc], source: MessageDoc | None = None
) -> list[str]:
    """Copy one message of ``box_id`` into every box of ``dests``; returns the new ids, in order. A message
    on its way elsewhere is no longer this box's: its move is finished and the copy refused."""
    source = await _source(scope, box_id, message_id, source)
    if move_plan(source) is not None:
        await transit.settle(scope, source)
        raise MessageGone(message_id)
    now = naming.now_gregorian()
    inline = await transit.inline_audio(scope, source)
    created = []
    for dest in dests:
        new_id = naming.message_id(now)
        zone = await transit.destination_zone(scope, dest)
        target = transit.transformed(scope, source, new_id, box_id, dest, zone, now)
        copied = scope.event(
            MessageChange.COPIED,
            dest["_id"],
            new_id,
            previous_id=message_id,
            folder=folder_of(target),
            token=new_token(),
        )
        # The event is kept before the copy is written, and the copy carries its token (see announcements).
        carry(target, (await record(scope, [copied])).values())
        await put_new_message(scope, transit.with_audio(target, inline))
        target = await transit.follow_box(scope, target, str(dest["_id"]))
        created.append(new_id)
        await scope.events.announce(copied)
    return created


async def expire(scope: Scope, box_id: str, source: MessageDoc) -> None:
    """Save an expired message retention-enforced, as kvm_message does before refusing to change it."""

    def enforce(doc: MessageDoc) -> bool:
        if (doc.get("metadata") or {}).get("retention") == "enforced":
            return False
        retention.enforce_doc(doc)
        return True

    with contextlib.suppress(MessageGone):
        await update_message(scope, source["_id"], box_change(box_id, enforce), source)


Outcome = tuple[str, str | None, str | None]  # (message id, new id, failure reason)


async def _each(
    scope: Scope, box_id: str, message_id: str, act: Callable[[MessageDoc], Awaitable[list[str]]]
) -> list[Outcome]:
    """Read one message of a bulk move or copy, refuse it when missing or expired, else ``act`` on it (a
    message in transit goes straight to ``act``: its recorded move decides)."""
    try:
        source = await _source(scope, box_id, message_id, None)
        if move_plan(source) is None and retention.is_prior(source, scope.oldest()):
            await expire(scope, box_id, source)
            return [(message_id, None, retention.PRIOR_TO_RETENTION)]
        return [(message_id, new_id, None) for new_id in await act(source)]
    except MessageGone:
        return [(message_id, None, NOT_FOUND)]
    except StorageError as exc:
        return [(message_id, None, exc.reason or "datastore_fault")]


Act = Callable[[str, MessageDoc], Awaitable[list[str]]]


async def _bulk(scope: Scope, box_id: str, ids: dict[str, str], act: Act) -> BulkResult:
    """Run ``act`` on every resolved id (``{MODB id: requested id}``), a few at a time; succeeded lists the new
    ids, failures are keyed by the requested ids."""

    def job(message_id: str) -> Awaitable[list[Outcome]]:
        return _each(scope, box_id, message_id, lambda source: act(message_id, source))

    result = BulkResult()
    for batch in await gather_bounded((job(message_id) for message_id in ids), CONCURRENCY):
        for message_id, new_id, reason in batch:
            if new_id is not None:
                result.succeeded.append(new_id)
            else:
                result.failed[ids.get(message_id, message_id)] = reason or NOT_FOUND
    return result


async def move_messages(scope: Scope, box_id: str, ids: dict[str, str], dest: BoxDoc) -> BulkResult:
    """Bulk move of resolved ids (``{MODB id: requested id}``); succeeded lists the new ids."""

    async def act(message_id: str, source: MessageDoc) -> list[str]:
        return [(await move_message(scope, box_id, message_id, dest, source))["_id"]]

    return await _bulk(scope, box_id, ids, act)


async def copy_messages(scope: Scope, box_id: str, ids: dict[str, str], dests: list[BoxDoc]) -> BulkResult:
    """Bulk copy of resolved ids to every box of ``dests``; succeeded lists the new ids."""

    async def act(message_id: str, source: MessageDoc) -> list[str]:
        return await copy_message(scope, box_id, message_id, dests, source)

    return await _bulk(scope, box_id, ids, act)
