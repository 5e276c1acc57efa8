"""One voicemail message document in its monthly database: reading, creating, and updating it safely.

A message id ``YYYYMM-<32 hex>`` names its MODB, so a message costs one GET; a missing database is simply a
missing message. Every write of an existing message is a read-modify-write on ``_rev``: on 409 the document is
read again and the change applied again (:func:`update_message`, over :mod:`kazoo_vm.storage.updates`), so
several service processes can share one CouchDB.

A message being moved to another box carries its move plan (``pvt_move``, see :mod:`.transit`). From the moment
the plan is recorded it is no longer its box's message: every change of it is refused, and whoever reads it
finishes the move instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, cast

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages.documents import MESSAGE_TYPE
from kazoo_vm.model import MessageDoc, MovePlan
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import DatabaseNotFound, NotFound

NOT_FOUND = "not_found"
# The move plan recorded on a message before it is copied to another box (kazoo_vm's, not Kazoo's).
MOVE_MARKER: Final = "pvt_move"


class MessageGone(Exception):
    """Raised inside a change function when the re-read document is no longer this box's live message."""


def is_live(doc: MessageDoc | None) -> bool:
    return isinstance(doc, dict) and doc.get("pvt_type") == MESSAGE_TYPE and not doc.get("pvt_deleted")


def belongs(doc: MessageDoc, box_id: str) -> bool:
    """kvm_util:check_msg_belonging: a message without ``source_id`` belongs to any box."""
    source = doc.get("source_id")
    return source is None or source == box_id


def move_plan(doc: Mapping[str, Any] | None) -> MovePlan | None:
    """The recorded move plan of a message on its way to another box, if any."""
    plan: Any = doc.get(MOVE_MARKER) if isinstance(doc, dict) else None
    return cast(MovePlan, plan) if isinstance(plan, dict) and plan.get("id") and plan.get("vmbox_id") else None


def is_box_message(doc: MessageDoc | None, box_id: str) -> bool:
    """A live message of ``box_id`` that is not on its way elsewhere."""
    return is_live(doc) and belongs(doc, box_id) and move_plan(doc) is None  # type: ignore[arg-type]


async def read_message(scope: Scope, message_id: str) -> MessageDoc | None:
    """One GET; None when the MODB or the document does not exist."""
    try:
        return await stored_messages.read_message(scope.store, scope.db(message_id), message_id)
    except NotFound:
        return None


async def put_new_message(scope: Scope, doc: MessageDoc) -> None:
    """Create a message document, creating its MODB (with design documents) on demand."""
    db = scope.db(doc["_id"])
    try:
        await scope.store.put_doc(db, doc)
    except DatabaseNotFound:
        await ensure_database(scope.store, db, "modb", found_missing=True)
        await scope.store.put_doc(db, doc)


# Edits a message document in place; False when there is nothing to write.
MessageEdit = Callable[[MessageDoc], bool]


async def update_message(
    scope: Scope, message_id: str, change: MessageEdit, doc: MessageDoc | None = None
) -> MessageDoc:
    """Apply ``change`` and save, re-reading and re-applying on every 409 so no concurrent update is lost
    (:func:`kazoo_vm.storage.updates.update_doc`).

    ``change`` edits the document in place and returns False when there is nothing to write; it raises
    :class:`MessageGone` when the document it is given is no longer the message it was meant for.
    """

    def apply(current: MessageDoc) -> MessageDoc | None:
        if not change(current):
            return None
        scope.stamp(current)
        return current

    try:
        return await stored_messages.update_message(scope.store, scope.db(message_id), message_id, apply, current=doc)
    except NotFound:
        raise MessageGone(message_id) from None


def box_change(box_id: str, change: MessageEdit) -> MessageEdit:
    """``change`` applied only while the document is still ``box_id``'s message (else :class:`MessageGone`)."""

    def guarded(doc: MessageDoc) -> bool:
        if not is_box_message(doc, box_id):
            raise MessageGone(doc.get("_id"))
        return change(doc)

    return guarded


def group_by_db(scope: Scope, message_ids: Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for message_id in message_ids:
        groups[scope.db(message_id)].append(message_id)
    return groups


async def read_messages(scope: Scope, message_ids: Iterable[str]) -> dict[str, MessageDoc]:
    """The existing documents among ``message_ids``: one ``_all_docs`` request per MODB."""
    found: dict[str, MessageDoc] = {}
    for db, ids in group_by_db(scope, message_ids).items():
        try:
            found.update(await stored_messages.messages_by_id(scope.store, db, ids))
        except DatabaseNotFound:
            continue
    return found
