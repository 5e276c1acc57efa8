"""Voicemail boxes as CouchDB keeps them: ``pvt_type: "vmbox"`` documents in the account database, found through
the ``vmboxes`` design document (Kazoo's ``listing_by_mailbox`` and ``crossbar_listing`` views,
``couch_design_docs/account/vmboxes.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view

DESIGN = "vmboxes"


@dataclass(frozen=True)
class ListedBox:
    """A ``crossbar_listing`` row: the box's id, its summary, its listing key and (when asked for) its document."""

    box_id: str
    key: Any
    summary: JsonDict
    doc: JsonDict | None


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
    return [ListedBox(str(row.id), row.key, dict(row.value or {}), row.doc) for row in rows]


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
