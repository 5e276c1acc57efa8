"""Voicemail boxes as CouchDB keeps them: ``pvt_type: "vmbox"`` documents in the account database, found through
the ``vmboxes`` design document (Kazoo's ``listing_by_mailbox`` and ``crossbar_listing`` views,
``couch_design_docs/account/vmboxes.json``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kazoo_vm.model import BoxDoc, JsonDict, LegacyEntry
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.updates import update_shaped

DESIGN = "vmboxes"


def as_box(raw: JsonDict) -> BoxDoc:
    """The JSON of a box as CouchDB (or a validated request) gives it, seen as a box: the same dict, every key
    kept (a box's kind is checked by the domain, from ``pvt_type``)."""
    return cast(BoxDoc, raw)


def as_legacy_entry(raw: JsonDict) -> LegacyEntry:
    """An entry of a box's legacy ``messages`` array, as stored (often incomplete: every key may be missing)."""
    return cast(LegacyEntry, raw)


async def read_box(store: CouchStore, account_db: str, box_id: str) -> BoxDoc:
    """One GET; :class:`~kazoo_vm.storage.errors.DocumentNotFound` when there is no such document."""
    return as_box(await store.get_doc(account_db, box_id))


async def boxes_by_id(store: CouchStore, account_db: str, box_ids: Sequence[str]) -> dict[str, BoxDoc | None]:
    """The documents CouchDB knows under these ids, in one request: None for a deleted one (a tombstone); ids it
    never knew are left out."""
    rows = await store.docs_by_id(account_db, box_ids)
    return {str(row.id): as_box(row.doc) if row.doc is not None else None for row in rows if row.id}


async def update_box(
    store: CouchStore,
    account_db: str,
    box_id: str,
    change: Callable[[BoxDoc], BoxDoc | None],
    *,
    current: BoxDoc | None = None,
    delete: bool = False,
) -> BoxDoc:
    """:func:`kazoo_vm.storage.updates.update_doc` for a box."""
    return await update_shaped(store, account_db, box_id, change, as_box, current=current, delete=delete)


@dataclass(frozen=True)
class ListedBox:
    """A ``crossbar_listing`` row: the box's id, its summary, its listing key and (when asked for) its document."""

    box_id: str
    key: Any
    summary: JsonDict
    doc: BoxDoc | None


async def box_ids_with_mailbox(store: CouchStore, account_db: str, number: int) -> list[str]:
    """Ids of the boxes whose ``mailbox`` reads as ``number`` (``parseInt``, as the view computes it)."""
    rows = await query_view(store, account_db, "account", DESIGN, "listing_by_mailbox", key=number)
    return [str(row.id) for row in rows]


async def box_listing(
    store: CouchStore, account_db: str, *, after: Any = None, limit: int | None = None, with_docs: bool = False
) -> list[ListedBox]:
    """Boxes in listing order from the listing key ``after`` (inclusive), at most ``limit``."""
    rows = await query_view(
        store, account_db, "account", DESIGN, "crossbar_listing", startkey=after, limit=limit, include_docs=with_docs
    )
    return [
        ListedBox(str(row.id), row.key, dict(row.value or {}), as_box(row.doc) if row.doc is not None else None)
        for row in rows
    ]


async def legacy_message_counts(store: CouchStore, account_db: str, *, repair: bool = True) -> list[tuple[str, int]]:
    """``(box id, legacy message count)`` for every box of the account (the listing's ``messages`` field);
    ``repair=False`` never writes missing design documents."""
    if repair:
        rows = await query_view(store, account_db, "account", DESIGN, "crossbar_listing")
    else:
        rows = await store.view(account_db, DESIGN, "crossbar_listing")
    counts = []
    for row in rows:
        count = row.value.get("messages") if isinstance(row.value, dict) else None
        if row.id and isinstance(count, int):
            counts.append((str(row.id), count))
    return counts
