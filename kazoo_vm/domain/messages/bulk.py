"""Changing many messages at once: one read and one ``_bulk_docs`` write per MODB, and Kazoo's bulk answer.

``{"succeeded": [...], "failed": {"<id>": "<reason>"}}`` with empty parts left out (kvm_messages bulk_result).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import transit
from kazoo_vm.domain.messages.records import NOT_FOUND, MessageGone, move_plan, read_messages, update_message
from kazoo_vm.model import JsonDict, MessageDoc


@dataclass
class BulkResult:
    """``{"succeeded": [...], "failed": {"<id>": "<reason>"}}`` with empty parts left out (kvm_messages bulk_result)."""

    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> JsonDict:
        result: JsonDict = {}
        if self.succeeded:
            result["succeeded"] = self.succeeded
        if self.failed:
            result["failed"] = self.failed
        return result


@dataclass(frozen=True)
class Decision:
    """What a bulk change makes of one document: whether to write it, and whether it counts as failed."""

    write: bool = False
    failure: str | None = None


WRITE = Decision(write=True)
SKIP = Decision()


def failed(reason: str, *, write: bool = False) -> Decision:
    return Decision(write=write, failure=reason)


BulkChange = Callable[[MessageDoc | None], Decision]
# Called with the documents about to be written as changed (``{id: doc}``, retention refusals left out), before any
# is written; it may edit them (see announcements).
BeforeWrite = Callable[[dict[str, MessageDoc]], Awaitable[None]]


async def read_settled(scope: Scope, message_ids: list[str]) -> dict[str, MessageDoc]:
    """The documents among ``message_ids``, without those on their way to another box: their moves are
    finished here (the copy exists in the other box, the source is gone), so they are missing as after a move."""
    docs = await read_messages(scope, message_ids)
    for message_id, doc in list(docs.items()):
        if move_plan(doc) is not None:
            await transit.settle(scope, doc)
            del docs[message_id]
    return docs


async def bulk_update(
    scope: Scope, message_ids: list[str], change: BulkChange, before_write: BeforeWrite | None = None
) -> BulkResult:
    """Apply ``change`` to many messages with one read and one ``_bulk_docs`` write per MODB.

    ``change`` gets the current document (None when missing) and decides whether to write it and whether the
    message counts as failed (a retention refusal still saves the enforced form, as kvm_message does).
    Documents that lose a write race are decided again on a fresh read, one by one through
    :func:`update_message`, so the outcome is the same as applying the changes one at a time.
    """
    result = BulkResult()
    docs = await read_settled(scope, message_ids)
    to_write: dict[str, list[MessageDoc]] = defaultdict(list)
    failures: dict[str, str] = {}
    changed: dict[str, MessageDoc] = {}
    for message_id in message_ids:
        doc = docs.get(message_id)
        decision = change(doc)
        if decision.failure is not None:
            failures[message_id] = decision.failure
        if decision.write and doc is not None:
            scope.stamp(doc)
            to_write[scope.db(message_id)].append(doc)
            if decision.failure is None:
                changed[message_id] = doc
        elif decision.failure is None:
            result.succeeded.append(message_id)
    if before_write is not None and changed:
        await before_write(changed)
    retry: list[str] = []
    for db, batch in to_write.items():
        for answer in await scope.store.bulk_docs(db, batch):
            message_id = str(answer.get("id"))
            if answer.get("error") == "conflict":
                retry.append(message_id)
            elif "error" in answer:
                failures[message_id] = str(answer["error"])
            elif message_id not in failures:
                result.succeeded.append(message_id)
    result.failed.update(failures)
    for message_id in retry:
        result.failed.pop(message_id, None)
        await _retry_one(scope, message_id, change, result)
    return result


async def _retry_one(scope: Scope, message_id: str, change: BulkChange, result: BulkResult) -> None:
    failure: list[str | None] = []

    def single(doc: MessageDoc) -> bool:
        decision = change(doc)
        failure.append(decision.failure)
        return decision.write

    try:
        await update_message(scope, message_id, single)
    except MessageGone:
        failure.append(NOT_FOUND)
    reason = failure[-1] if failure else None
    if reason is not None:
        result.failed[message_id] = reason
    else:
        result.succeeded.append(message_id)
