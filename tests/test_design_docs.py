"""Design documents from couch_design_docs/ reach every new database, and are repaired when a query misses them."""

from __future__ import annotations

from typing import Any

from helpers import TestAccount

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import (
    design_docs,
    ensure_database,
    ensure_design_docs,
    executed_code,
    is_current,
    kazoo_loaded_form,
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


async def test_a_database_found_missing_but_made_meanwhile_by_another_creator_gets_its_design_documents(
    store: CouchStore, account: TestAccount
) -> None:
    # On a cluster a racing creator may be told "exists" like everyone else, so nobody would write them.
    modb = naming.modb(account.id, 2017, 11)
    assert await store.create_db(modb) is True  # the other creator, gone before writing design documents
    assert await ensure_database(store, modb, "modb", found_missing=True) is False
    assert (await store.get_doc(modb, "_design/mailbox_messages"))["_id"] == "_design/mailbox_messages"


async def test_a_view_query_writes_missing_design_documents_first(store: CouchStore, account: TestAccount) -> None:
    db = naming.account_db(account.id)
    ddoc = await store.get_doc(db, "_design/vmboxes")
    await store.delete_doc(db, ddoc["_id"], ddoc["_rev"])
    rows = await query_view(store, db, "account", "vmboxes", "crossbar_listing")
    assert rows == []
    assert (await store.get_doc(db, "_design/vmboxes"))["_id"] == "_design/vmboxes"


async def test_bringing_design_documents_up_to_date_writes_nothing_when_every_one_is_current(
    store: CouchStore, account: TestAccount
) -> None:
    db = naming.account_db(account.id)
    await ensure_design_docs(store, db, "account")
    before = (await store.get_doc(db, "_design/vmboxes"))["_rev"]
    assert await ensure_design_docs(store, db, "account") == 0
    assert (await store.get_doc(db, "_design/vmboxes"))["_rev"] == before


def kazoo_doc(ddoc_id: str, **views: str) -> dict[str, Any]:
    return {"_id": ddoc_id, "language": "javascript", "views": {name: {"map": code} for name, code in views.items()}}


def test_kazoos_loader_form_joins_lines_without_a_separator_and_drops_the_kazoo_key() -> None:
    source = {
        "_id": "_design/x",
        "kazoo": {"view_map": [{"classification": "account"}]},
        "language": "javascript",
        "views": {
            "lines": {"map": ["function(doc) {", "  emit(doc._id, null);", "}"], "reduce": "_count"},
            "text": {"map": "function(doc) { emit(null); }"},
        },
    }
    assert kazoo_loaded_form(source) == {
        "_id": "_design/x",
        "language": "javascript",
        "views": {
            "lines": {"map": "function(doc) {  emit(doc._id, null);}", "reduce": "_count"},
            "text": {"map": "function(doc) { emit(null); }"},
        },
    }


def test_code_is_compared_without_the_whitespace_javascript_ignores() -> None:
    assert executed_code("function(doc) {\n  var x = 'a  b';\n  emit(x);\n}") == "function(doc){var x='a  b';emit(x);}"
    assert executed_code("function(doc){  if (a)    return;}") == executed_code("function(doc) {\n if(a)\n return;\n}")
    assert executed_code("emit('a b')") != executed_code("emit('ab')")


def test_a_kazoo_design_document_is_current_when_our_views_mean_the_same_there() -> None:
    ours = kazoo_doc("_design/vmboxes", listing_by_mailbox="function(doc) {\n  emit(parseInt(doc.mailbox, 10));\n}")
    reformatted = kazoo_doc("_design/vmboxes", listing_by_mailbox="function(doc) {  emit(parseInt(doc.mailbox, 10));}")
    reformatted["kazoo"] = {"view_map": []}
    assert is_current(reformatted, ours)
    with_more = kazoo_doc("_design/vmboxes", listing_by_mailbox=ours["views"]["listing_by_mailbox"]["map"], extra="x")
    assert is_current(with_more, ours)  # a Kazoo node of another version may carry more views
    other_key = kazoo_doc("_design/vmboxes", listing_by_mailbox="function(doc) { emit(doc.name); }")
    assert not is_current(other_key, ours)
    assert not is_current(kazoo_doc("_design/vmboxes"), ours)


def test_kazoos_design_documents_we_do_not_query_are_current_once_they_exist() -> None:
    ours = kazoo_doc("_design/attributes", owned="function(doc) { emit(doc.owner_id); }")
    assert is_current(kazoo_doc("_design/attributes", owned="function(doc) { emit(1); }"), ours)


def test_our_own_design_documents_must_mean_exactly_the_same() -> None:
    ours = kazoo_doc("_design/kazoo_vm_counts", by_box="function(doc) { emit(doc.source_id); }")
    assert is_current(kazoo_doc("_design/kazoo_vm_counts", by_box="function(doc){emit(doc.source_id);}"), ours)
    extra = kazoo_doc("_design/kazoo_vm_counts", by_box="function(doc) { emit(doc.source_id); }", old="x")
    assert not is_current(extra, ours)
