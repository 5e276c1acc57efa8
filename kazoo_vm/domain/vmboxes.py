"""Voicemail boxes: validation, unique mailbox numbers, replace/patch/soft delete, and the listing.

Boxes are ``pvt_type: "vmbox"`` documents in the account database (cb_vmboxes.erl).

Unique mailbox numbers. Kazoo checks uniqueness with the ``vmboxes/listing_by_mailbox`` view only, which lets two
concurrent creates both succeed. We keep that check (it also covers boxes written by Kazoo itself) and add a
claim document per number with a deterministic id, ``vmbox_mailbox_<n>``: CouchDB lets exactly one writer create
it, so the guarantee holds across any number of service processes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from kazoo_vm.domain import validation
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import (
    Actor,
    alphanum,
    is_private_key,
    merge_patch,
    public_fields,
    stamp,
)
from kazoo_vm.domain.filters import DocFilter
from kazoo_vm.domain.paging import Paging, encode_start_key
from kazoo_vm.errors import BadIdentifier, DatastoreConflict, ValidationFailed
from kazoo_vm.model import BoxDoc, JsonDict
from kazoo_vm.storage import boxes as stored_boxes
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import Conflict, DocumentNotFound, StorageError
from kazoo_vm.storage.updates import retry_on_conflict

BOX_TYPE = "vmbox"
CLAIM_TYPE = "vmbox_mailbox_claim"
CLAIM_PREFIX = "vmbox_mailbox_"
SCHEMA = "vmboxes"
UNIQUE_MESSAGE = "Invalid mailbox number or already exists"
MIGRATE_MESSAGE = "Please migrate your voicemail box messages to MODB"
# A claim whose box never appeared is only taken over after this long: the claimer may still be saving it.
CLAIM_GRACE_S = 60
# Request data keys that never become box fields.
_NOT_BOX_FIELDS = frozenset({"id", "messages", "auth_token"})
_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")
_DOC_ID = re.compile(r"^[^_][\x21-\x7e]{0,127}$")


def mailbox_number(value: Any) -> int | None:
    """JavaScript ``parseInt(value, 10)``, as the ``listing_by_mailbox`` view computes it ("0300" → 300)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    match = _LEADING_INT.match(value)
    return int(match.group(1)) if match else None


@dataclass
class SavedBox:
    doc: BoxDoc
    has_legacy_messages: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BoxPage:
    items: list[JsonDict]
    next_start_key: str | None


# Per-box message counts merged into the listing, ``{box_id: {"new": n, "saved": s}}`` (wired in by app.py).
CountsProvider = Callable[[Scope], Awaitable[Mapping[str, Mapping[str, int]]]]
# Runs before a box is soft-deleted (cb_vmboxes delete/2 soft-deletes the box's messages first; wired in by app.py).
BoxDeletedHook = Callable[[Scope, BoxDoc], Awaitable[None]]


def _is_live_box(doc: BoxDoc | None) -> bool:
    return bool(doc) and doc.get("pvt_type") == BOX_TYPE and not doc.get("pvt_deleted")  # type: ignore[union-attr]


def _stamp_box(doc: BoxDoc, account: Account, actor: Actor) -> None:
    stamp(doc, doc_type=BOX_TYPE, account_id=account.id, db=account.db, actor=actor)
    doc["pvt_alphanum_name"] = alphanum(str(doc.get("name", "")))


async def load_box(scope: Scope, box_id: str) -> BoxDoc:
    """A live box, or 404 ``bad_identifier`` when missing, of another type, or soft-deleted."""
    return await _load_box(scope.store, scope.account, box_id)


async def _load_box(store: CouchStore, account: Account, box_id: str) -> BoxDoc:
    if not box_id or box_id.startswith("_"):
        raise BadIdentifier(box_id)
    try:
        doc = await stored_boxes.read_box(store, account.db, box_id)
    except DocumentNotFound:
        raise BadIdentifier(box_id) from None
    if not _is_live_box(doc):
        raise BadIdentifier(box_id)
    return doc


def _request_fields(data: JsonDict) -> tuple[JsonDict, list[str]]:
    """The public request fields, with Kazoo's legacy ``notify_email_address`` migrated (and a warning).

    ``messages`` is the legacy (pre-4.0) message array: stored data that only the migrator changes, never a
    request field (a client-made array would be listed as messages and fed to the migrator). ``auth_token`` in
    the data is the caller's credential (Kazoo reads it there too), not box content."""
    fields = {key: value for key, value in data.items() if not is_private_key(key) and key not in _NOT_BOX_FIELDS}
    warnings: list[str] = []
    if "notify_email_address" in fields:
        # cb_vmboxes maybe_migrate_vm_box sets the new key and leaves the old one in place.
        fields["notify_email_addresses"] = fields["notify_email_address"]
        warnings.append("214 Transformation applied: attribute notify_email_address replaced")
    return fields, warnings


async def _uniqueness_errors(
    store: CouchStore, account: Account, box_id: str | None, mailbox: Any
) -> validation.Errors:
    number = mailbox_number(mailbox)
    if number is None:
        return {}  # Kazoo never reports non-numeric mailboxes as duplicates
    holders = await stored_boxes.box_ids_with_mailbox(store, account.db, number)
    others = [holder for holder in holders if holder != box_id]
    if others or len(holders) > 1:
        return {"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}}
    return {}


def _claim_id(number: int) -> str:
    return f"{CLAIM_PREFIX}{number}"


async def _claim(store: CouchStore, account: Account, number: int, box_id: str, box_rev: str | None) -> None:
    """Take the claim on ``number`` for ``box_id`` (whose stored revision is ``box_rev``, None for a new box); a
    validation error when a live box holds it.

    The first attempt writes blindly (one round trip when the number is free); only a 409 makes us read the
    claim to see whether its holder still uses the number. The claim remembers the box's revision: a box saved
    since without the number (by Kazoo, a script or another process) no longer holds it."""
    rev: str | None = None

    async def attempt() -> None:
        nonlocal rev
        claim: JsonDict = {"_id": _claim_id(number), "vmbox_id": box_id, "mailbox": number, "vmbox_rev": box_rev}
        if rev is not None:
            claim["_rev"] = rev
        stamp(claim, doc_type=CLAIM_TYPE, account_id=account.id, db=account.db)
        claim["pvt_created"] = claim["pvt_modified"]  # the claim's age counts from this claim, also on a takeover
        try:
            await store.put_doc(account.db, claim)
            return
        except Conflict:
            pass  # claimed by someone, or taken meanwhile: look at it
        try:
            current = await store.get_doc(account.db, claim["_id"])
        except DocumentNotFound:
            rev = None
            raise Conflict("released meanwhile: claim it afresh") from None
        if current.get("vmbox_id") == box_id and current.get("vmbox_rev") == box_rev:
            return
        if current.get("vmbox_id") == box_id and current.get("pvt_type") == CLAIM_TYPE:
            rev = current["_rev"]  # our own older claim: note the revision this save starts from
            raise Conflict("refresh the claim")
        if current.get("pvt_type") != CLAIM_TYPE:
            # Some other document sits on the claim's id (written outside the API): never overwrite it.
            raise ValidationFailed({"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}})
        if await claim_is_held(store, account, current, number):
            raise ValidationFailed({"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}})
        rev = current["_rev"]
        raise Conflict("stale: take it over, unless someone else does first")

    await retry_on_conflict(attempt, what=f"mailbox claim {number}")


async def claim_is_held(store: CouchStore, account: Account, claim: JsonDict, number: int) -> bool:
    """Whether the claim's box still uses the number. ``_all_docs`` tells a box deleted from CouchDB (a tombstone:
    the claim is stale) from one not saved yet (its claimer may still be writing it: held for a grace period)."""
    known = await stored_boxes.boxes_by_id(store, account.db, [str(claim.get("vmbox_id"))])
    if not known:
        age = naming.now_gregorian() - int(claim.get("pvt_created") or 0)
        return age < CLAIM_GRACE_S
    holder = next(iter(known.values()))
    if holder is None or not _is_live_box(holder):
        return False  # the box was deleted: its number is free
    if mailbox_number(holder.get("mailbox")) == number:
        return True
    # The box does not show the number. Saved since the claim was taken (a Kazoo node or a script renumbered
    # it: vmboxes/listing_by_mailbox is the truth), the number is free; otherwise its claimer may be saving the
    # renumbering right now.
    if "vmbox_rev" in claim and holder.get("_rev") != claim["vmbox_rev"]:
        return False
    age = naming.now_gregorian() - int(claim.get("pvt_created") or 0)
    return age < CLAIM_GRACE_S


async def _release(store: CouchStore, account: Account, number: int | None, box_id: str) -> None:
    if number is None:
        return
    try:
        claim = await store.get_doc(account.db, _claim_id(number))
        if claim.get("vmbox_id") == box_id:
            await store.delete_doc(account.db, claim["_id"], claim["_rev"])
    except (DocumentNotFound, Conflict):
        pass  # gone or taken over already; a stale claim is recognised by the next claimer anyway


async def _save(
    store: CouchStore,
    account: Account,
    doc: BoxDoc,
    *,
    old_number: int | None,
    is_new: bool,
) -> None:
    number = mailbox_number(doc.get("mailbox"))
    claimed = number is not None and (is_new or number != old_number)
    if claimed:
        assert number is not None
        await _claim(store, account, number, doc["_id"], doc.get("_rev") if not is_new else None)
    try:
        await store.put_doc(account.db, doc)
    except Exception:
        # Whatever failed the write (a conflict, a refused document, CouchDB gone), the number stays free.
        if claimed:
            with suppress(StorageError):
                await _release(store, account, number, doc["_id"])
        raise
    if old_number is not None and old_number != number:
        await _release(store, account, old_number, doc["_id"])


async def _validated(store: CouchStore, account: Account, box_id: str | None, fields: JsonDict) -> JsonDict:
    unique = await _uniqueness_errors(store, account, box_id, fields.get("mailbox"))
    return validation.validate(SCHEMA, fields, extra_errors=unique)


async def create_box(scope: Scope, data: JsonDict) -> SavedBox:
    store, account, actor = scope.store, scope.account, scope.actor
    fields, warnings = _request_fields(data)
    requested_id = data.get("id") if isinstance(data.get("id"), str) else None
    if requested_id is not None and not _DOC_ID.match(requested_id):
        raise ValidationFailed.single("id", "pattern", "Failed to match pattern '^[^_].{0,127}$'", value=requested_id)
    if requested_id is not None and requested_id.startswith(CLAIM_PREFIX):
        # The mailbox claims' id space: such a box would be mistaken for (and replaced by) a stale claim.
        raise ValidationFailed.single(
            "id", "reserved", f"Ids starting with '{CLAIM_PREFIX}' are reserved", value=requested_id
        )
    validated = await _validated(store, account, None, fields)
    doc = stored_boxes.as_box({"_id": requested_id or naming.new_doc_id(), **validated})
    _stamp_box(doc, account, actor)
    try:
        await _save(store, account, doc, old_number=None, is_new=True)
    except Conflict:
        raise DatastoreConflict() from None  # a document with the requested id exists
    return SavedBox(doc=doc, warnings=warnings)


async def _update(
    store: CouchStore, account: Account, stored: BoxDoc, public: JsonDict, actor: Actor, warnings: list[str]
) -> SavedBox:
    validated = await _validated(store, account, stored["_id"], public)
    # The stored private fields win over anything in the request (crossbar_doc load_merge).
    doc = stored_boxes.as_box({**validated, **{key: value for key, value in stored.items() if is_private_key(key)}})
    legacy = stored.get("messages")
    if isinstance(legacy, list):
        doc["messages"] = legacy  # the legacy array is kept on write, never returned
    _stamp_box(doc, account, actor)
    await _save(store, account, doc, old_number=mailbox_number(stored.get("mailbox")), is_new=False)
    return SavedBox(doc=doc, has_legacy_messages=bool(legacy), warnings=warnings)


async def _update_fresh(
    store: CouchStore,
    account: Account,
    box_id: str,
    new_public: Callable[[BoxDoc], JsonDict],
    actor: Actor,
    warnings: list[str],
) -> SavedBox:
    """Apply a change to the freshest box: when another writer (a request, another process, the migrator editing
    the legacy array) saved it meanwhile, re-read and apply again instead of answering 409 or losing their change."""

    async def attempt() -> SavedBox:
        stored = await _load_box(store, account, box_id)
        return await _update(store, account, stored, new_public(stored), actor, warnings)

    return await retry_on_conflict(attempt, what=f"box {box_id}")


async def replace_box(scope: Scope, box_id: str, data: JsonDict) -> SavedBox:
    """POST: every public field missing from the request is dropped; defaults are filled again."""
    fields, warnings = _request_fields(data)
    return await _update_fresh(scope.store, scope.account, box_id, lambda stored: fields, scope.actor, warnings)


async def patch_box(scope: Scope, box_id: str, data: JsonDict) -> SavedBox:
    """PATCH: deep-merge over the stored public fields; ``null`` deletes a key."""
    fields, warnings = _request_fields(data)

    def merged(stored: BoxDoc) -> JsonDict:
        current = {key: value for key, value in public_fields(stored).items() if key != "messages"}
        return merge_patch(current, fields)

    return await _update_fresh(scope.store, scope.account, box_id, merged, scope.actor, warnings)


async def delete_box(
    scope: Scope,
    box_id: str,
    before_delete: BoxDeletedHook | None = None,
    *,
    hard: bool = False,
) -> BoxDoc:
    """Soft delete (``pvt_deleted``), or remove the document when ``hard`` (Kazoo's ``should_soft_delete=false``),
    releasing the mailbox number; ``before_delete`` handles the messages."""
    store, account, actor = scope.store, scope.account, scope.actor
    stored = await _load_box(store, account, box_id)
    if before_delete is not None:
        await before_delete(scope, stored)
    first: BoxDoc | None = stored

    async def attempt() -> BoxDoc:
        # After a conflict, someone (the message hook, a migrator, another process) saved the box meanwhile: the
        # deletion is applied to the fresh document rather than lose their change.
        nonlocal first
        current = first if first is not None else await _load_box(store, account, box_id)
        first = None
        current["pvt_deleted"] = True
        stamp(current, doc_type=BOX_TYPE, account_id=account.id, db=account.db, actor=actor)
        if hard:
            current["_rev"] = await store.delete_doc(account.db, box_id, current["_rev"])
        else:
            await store.put_doc(account.db, current)
        return current

    stored = await retry_on_conflict(attempt, what=f"box {box_id}")
    if before_delete is not None:
        # Messages moved or copied in while the box was being deleted: those written before this sweep are found
        # here, those written after it see the deleted box themselves (messages.transit.follow_box).
        await before_delete(scope, stored)
    await _release(store, account, mailbox_number(stored.get("mailbox")), box_id)
    return stored


def summary(row_value: JsonDict, counts: Mapping[str, int] | None) -> JsonDict:
    """A listing item: the ``crossbar_listing`` value, with counts merged as cb_vmboxes merge_summary_fold."""
    item = {key: value for key, value in row_value.items() if value is not None}
    if counts:
        new, saved = int(counts.get("new", 0)), int(counts.get("saved", 0))
        if any(int(value) for value in counts.values()):
            item["messages"] = int(item.get("messages") or 0) + new + saved
            item["folders"] = {"new": new, "saved": saved}
    return item


async def list_boxes(
    scope: Scope,
    paging: Paging,
    doc_filter: DocFilter,
    counts: Awaitable[Mapping[str, Mapping[str, int]]] | None = None,
) -> BoxPage:
    """Box summaries in box-id order (4.3's ``crossbar_listing`` key); filtered-out rows do not use up the page.
    ``counts`` (the message counts to merge in) are fetched while the listing is read."""
    counting = asyncio.ensure_future(counts) if counts is not None else None
    try:
        return await _list_boxes(scope, paging, doc_filter, counting)
    finally:
        if counting is not None and not counting.done():
            counting.cancel()
            await asyncio.gather(counting, return_exceptions=True)


async def _list_boxes(
    scope: Scope,
    paging: Paging,
    doc_filter: DocFilter,
    counting: asyncio.Future[Mapping[str, Mapping[str, int]]] | None,
) -> BoxPage:
    store, account = scope.store, scope.account
    items: list[JsonDict] = []
    start_key = paging.start_key
    skip_first = False
    batch = (paging.page_size + 1) if paging.paginate else None
    next_key: Any = None
    counts: Mapping[str, Mapping[str, int]] | None = None
    while True:
        limit = batch + (1 if skip_first else 0) if batch is not None else None
        rows = await stored_boxes.box_listing(
            store, account.db, after=start_key, limit=limit, with_docs=doc_filter.active
        )
        if counts is None:
            counts = await counting if counting is not None else {}
        if skip_first and rows:
            rows = rows[1:]
        for row in rows:
            if paging.paginate and len(items) >= paging.page_size:
                next_key = row.key
                break
            if doc_filter.active and not (row.doc is not None and doc_filter.matches(row.doc)):
                continue
            items.append(summary(row.summary, counts.get(row.box_id)))
        if next_key is not None or batch is None or len(rows) < batch:
            break
        start_key = rows[-1].key
        skip_first = True
    return BoxPage(items=items, next_start_key=encode_start_key(next_key) if next_key is not None else None)
