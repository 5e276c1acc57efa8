"""Design documents from couch_design_docs/ reach every new database, and are repaired when a query misses them."""

from __future__ import annotations

from helpers import TestAccount

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import (
    design_docs,
    ensure_database,
    query_view,
)


def strip_rev(doc: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in doc.items() if key != "_rev"}


async def test_a_new_account_database_gets_kazoos_vmboxes_views_unchanged(
    store: CouchStore, account: TestAccount
) -> None:
    stored = await store.get_doc(naming.account_db(account.id), "_design/vmboxes")
    wanted = next(doc for doc in design_docs("account") if doc["_id"] == "_design/vmboxes")
    assert strip_rev(stored) == wanted
    assert set(stored["views"]) == {"crossbar_listing", "legacy_msg_by_timestamp", "listing_by_mailbox"}


async def test_a_new_modb_gets_the_mailbox_messages_views(store: CouchStore, account: TestAccount) -> None:
    modb = naming.modb(account.id, 2017, 10)
    assert await ensure_database(store, modb, "modb") is True
    assert await ensure_database(store, modb, "modb") is False  # second creator: no error
    stored = await store.get_doc(modb, "_design/mailbox_messages")
    assert set(stored["views"]) >= {
        "listing_by_mailbox",
        "listing_by_timestamp",
        "count_per_box_folder",
        "count_per_folder",
    }


async def test_a_view_query_writes_missing_design_documents_first(store: CouchStore, account: TestAccount) -> None:
    db = naming.account_db(account.id)
    ddoc = await store.get_doc(db, "_design/vmboxes")
    await store.delete_doc(db, ddoc["_id"], ddoc["_rev"])
    rows = await query_view(store, db, "account", "vmboxes", "crossbar_listing")
    assert rows == []
    assert (await store.get_doc(db, "_design/vmboxes"))["_id"] == "_design/vmboxes"
