"""Voicemail messages in the monthly databases: ids, fetching, and saving safely under concurrency.

A message id ``YYYYMM-<32 hex>`` names its MODB, so a message costs one GET; a missing database is simply a
missing message. A 32-hex legacy id is handed to the migrator's seam (:mod:`kazoo_vm.domain.legacy_ids`) first.
Anything else is not a message id and is answered 404 without asking CouchDB.

Every write of an existing message is a read-modify-write on ``_rev``: on 409 the document is read again and the
change applied again (:func:`update_message`), so several service processes can share one CouchDB.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kazoo_vm.config import Settings
from kazoo_vm.domain import legacy_ids
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.documents import Actor
from kazoo_vm.domain.messages import retention
from kazoo_vm.domain.messages.documents import MESSAGE_TYPE, stamp_message
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier, DatastoreConflict
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, JsonDict
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import Conflict, DatabaseNotFound, NotFound

log = logging.getLogger(__name__)

NOT_FOUND = "not_found"
# Enough for any realistic pile-up of writers on one message; each round re-reads the document.
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class Scope:
    """What every message operation works with: the store, the settings and whose account it is."""

    store: CouchStore
    settings: Settings
    account: Account
    actor: Actor = field(default_factory=Actor)

    def db(self, message_id: str) -> str:
        return naming.message_db(self.account.id, message_id)

    def oldest(self) -> int:
        return retention.cutoff(self.settings, naming.now_gregorian())

    def stamp(self, doc: JsonDict, *, now: int | None = None) -> JsonDict:
        return stamp_message(doc, account_id=self.account.id, actor=self.actor, node=self.settings.node_name, now=now)


class MessageGone(Exception):
    """Raised inside a change function when the re-read document is no longer this box's live message."""


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


def is_live(doc: JsonDict | None) -> bool:
    return isinstance(doc, dict) and doc.get("pvt_type") == MESSAGE_TYPE and not doc.get("pvt_deleted")


def belongs(doc: JsonDict, box_id: str) -> bool:
    """kvm_util:check_msg_belonging: a message without ``source_id`` belongs to any box."""
    source = doc.get("source_id")
    return source is None or source == box_id


def is_box_message(doc: JsonDict | None, box_id: str) -> bool:
    return is_live(doc) and belongs(doc, box_id)  # type: ignore[arg-type]


async def resolve_id(scope: Scope, box_id: str, raw_id: str, box: JsonDict | None = None) -> str | None:
    """The MODB message id for ``raw_id``, or None when it cannot name a message of this box.

    Only a legacy id costs anything: the box is needed to look it up in the migrator's seam.
    """
    if naming.is_message_id(raw_id):
        # "000000-..." has the shape but names no month, hence no database.
        return raw_id if 1 <= naming.message_month(raw_id)[1] <= 12 else None
    if not naming.is_legacy_message_id(raw_id):
        return None
    if box is None:
        box = await load_box(scope.store, scope.account, box_id)
    return await legacy_ids.resolve_legacy_id(scope.store, scope.settings, scope.account, box, raw_id)


async def read_message(scope: Scope, message_id: str) -> JsonDict | None:
    """One GET; None when the MODB or the document does not exist."""
    try:
        return await scope.store.get_doc(scope.db(message_id), message_id)
    except NotFound:
        return None


async def load_message(scope: Scope, box_id: str, raw_id: str, box: JsonDict | None = None) -> JsonDict:
    """This box's live message ``raw_id``, or 404 ``bad_identifier`` with the requested id as cause."""
    message_id = await resolve_id(scope, box_id, raw_id, box)
    doc = await read_message(scope, message_id) if message_id else None
    if doc is None or not is_box_message(doc, box_id):
        raise BadIdentifier(raw_id)
    return doc


async def put_new_message(scope: Scope, doc: JsonDict) -> None:
    """Create a message document, creating its MODB (with design documents) on demand."""
    db = scope.db(doc["_id"])
    try:
        await scope.store.put_doc(db, doc)
    except DatabaseNotFound:
        await ensure_database(scope.store, db, "modb")
        await scope.store.put_doc(db, doc)


Change = Callable[[JsonDict], bool]


async def update_message(scope: Scope, message_id: str, change: Change, doc: JsonDict | None = None) -> JsonDict:
    """Apply ``change`` and save, re-reading and re-applying on every 409 so no concurrent update is lost.

    ``change`` edits the document in place and returns False when there is nothing to write; it raises
    :class:`MessageGone` when the document it is given is no longer the message it was meant for.
    """
    db = scope.db(message_id)
    for _attempt in range(MAX_ATTEMPTS):
        if doc is None:
            try:
                doc = await scope.store.get_doc(db, message_id)
            except NotFound:
                raise MessageGone(message_id) from None
        if not change(doc):
            return doc
        scope.stamp(doc)
        try:
            await scope.store.put_doc(db, doc)
            return doc
        except Conflict:
            doc = None
    raise DatastoreConflict()


def group_by_db(scope: Scope, message_ids: Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for message_id in message_ids:
        groups[scope.db(message_id)].append(message_id)
    return groups


async def read_messages(scope: Scope, message_ids: Iterable[str]) -> dict[str, JsonDict]:
    """The existing documents among ``message_ids``: one ``_all_docs`` request per MODB."""
    found: dict[str, JsonDict] = {}
    for db, ids in group_by_db(scope, message_ids).items():
        try:
            rows = await scope.store.all_docs(db, keys=ids, include_docs=True)
        except DatabaseNotFound:
            continue
        found.update({row.id: row.doc for row in rows if row.id and isinstance(row.doc, dict)})
    return found


@dataclass(frozen=True)
class Decision:
    """What a bulk change makes of one document: whether to write it, and whether it counts as failed."""

    write: bool = False
    failure: str | None = None


WRITE = Decision(write=True)
SKIP = Decision()


def failed(reason: str, *, write: bool = False) -> Decision:
    return Decision(write=write, failure=reason)


BulkChange = Callable[[JsonDict | None], Decision]


async def bulk_update(scope: Scope, message_ids: list[str], change: BulkChange) -> BulkResult:
    """Apply ``change`` to many messages with one read and one ``_bulk_docs`` write per MODB.

    ``change`` gets the current document (None when missing) and decides whether to write it and whether the
    message counts as failed (a retention refusal still saves the enforced form, as kvm_message does).
    Documents that lose a write race are decided again on a fresh read, one by one through
    :func:`update_message`, so the outcome is the same as applying the changes one at a time.
    """
    result = BulkResult()
    docs = await read_messages(scope, message_ids)
    to_write: dict[str, list[JsonDict]] = defaultdict(list)
    failures: dict[str, str] = {}
    for message_id in message_ids:
        doc = docs.get(message_id)
        decision = change(doc)
        if decision.failure is not None:
            failures[message_id] = decision.failure
        if decision.write and doc is not None:
            scope.stamp(doc)
            to_write[scope.db(message_id)].append(doc)
        elif decision.failure is None:
            result.succeeded.append(message_id)
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

    def single(doc: JsonDict) -> bool:
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
