"""The start-up walk over every database: only when our design documents changed, by one process at a time, in
pages, resumable, and it deletes the design documents we merged away."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from helpers import TestAccount, make_account
from migration_support import CountingStore

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, quote_name
from kazoo_vm.storage.design_docs import bring_up_to_date, design_docs, query_view
from kazoo_vm.storage.design_sync import MARKER_DB, RETIRED, design_set_hash, sync_if_changed


def fresh() -> tuple[str, str]:
    """A marker of its own and a design-set hash no walk has recorded yet: every test starts a walk."""
    return f"test_design_sync_{uuid.uuid4().hex}", uuid.uuid4().hex


async def listed(store: CouchStore, *dbs: str) -> None:
    """Wait until ``_all_dbs`` lists ``dbs``: the dev server (PouchDB) registers a new database's name a moment after
    creating it; CouchDB at once."""
    for _ in range(100):
        missing = [db for db in dbs if not await store.all_dbs_between(db, db)]
        if not missing:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{dbs} never listed in _all_dbs")


async def tamper(store: CouchStore, db: str) -> None:
    await listed(store, db)
    ddoc = await store.get_doc(db, "_design/vmboxes")
    ddoc["views"] = {"only": {"map": "function(doc) { emit(null, null); }"}}
    await store.put_doc(db, ddoc)


async def restored(store: CouchStore, db: str) -> bool:
    return "crossbar_listing" in (await store.get_doc(db, "_design/vmboxes"))["views"]


def test_the_design_set_hash_is_stable_and_covers_the_files() -> None:
    assert design_set_hash() == design_set_hash()
    assert len(design_set_hash()) == 64


async def test_a_changed_set_is_walked_once_then_start_up_reads_one_document(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    marker, wanted = fresh()
    db = naming.account_db(account.id)
    await tamper(store, db)
    first = await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted, page_size=50)
    assert first.status == "done" and first.databases >= 1
    assert await restored(store, db)

    counting = CountingStore(couch_url)
    try:
        again = await sync_if_changed(counting, holder="b", marker_id=marker, wanted=wanted)
    finally:
        await counting.close()
    assert again.status == "current"
    assert counting.requests == [f"GET /{MARKER_DB}/{marker}"]


async def test_the_walk_reads_the_database_list_in_pages(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    marker, wanted = fresh()
    counting = CountingStore(couch_url)
    try:
        result = await sync_if_changed(counting, holder="a", marker_id=marker, wanted=wanted, page_size=5)
    finally:
        await counting.close()
    pages = [request for request in counting.requests if request.startswith("GET /_all_dbs")]
    assert result.status == "done"
    assert len(pages) >= 2  # the shared test server holds more than five databases of ours
    # a checkpoint (one marker write) after every full page
    assert sum(request == f"PUT /{MARKER_DB}/{marker}" for request in counting.requests) == len(pages) + 1


async def test_processes_starting_together_walk_the_databases_once(store: CouchStore, account: TestAccount) -> None:
    marker, wanted = fresh()
    await listed(store, naming.account_db(account.id))
    results = await asyncio.gather(
        *(sync_if_changed(store, holder=f"p{n}", marker_id=marker, wanted=wanted) for n in range(4))
    )
    assert sorted(result.status for result in results) == ["busy", "busy", "busy", "done"]
    walked = [result for result in results if result.status == "done"]
    assert walked[0].databases >= 1


async def test_a_live_lease_of_another_process_is_left_alone(store: CouchStore, account: TestAccount) -> None:
    marker, wanted = fresh()
    await store.put_doc(
        MARKER_DB, {"_id": marker, "lease": {"job": wanted, "holder": "other", "expires": 4e9, "after": None}}
    )
    db = naming.account_db(account.id)
    await tamper(store, db)
    assert (await sync_if_changed(store, holder="me", marker_id=marker, wanted=wanted)).status == "busy"
    assert not await restored(store, db)


async def test_an_interrupted_walk_resumes_after_its_last_checkpoint(
    store: CouchStore, client: TestClient[Any, Any]
) -> None:
    first, second = sorted([naming.account_db((await make_account(client)).id) for _ in range(2)])
    marker, wanted = fresh()
    # A walk that stopped (its lease long expired) after the page that ended with ``first``.
    await store.put_doc(
        MARKER_DB, {"_id": marker, "lease": {"job": wanted, "holder": "crashed", "expires": 0, "after": first}}
    )
    await tamper(store, first)
    await tamper(store, second)
    result = await sync_if_changed(store, holder="next", marker_id=marker, wanted=wanted)
    assert result.status == "done"
    assert await restored(store, second)
    assert not await restored(store, first)  # before the checkpoint: already walked by the crashed process
    done = await store.get_doc(MARKER_DB, marker)
    assert done["hash"] == wanted and "lease" not in done


async def put_retired(store: CouchStore, modb: str) -> None:
    await store.create_db(modb)
    await store.put_doc(modb, {"_id": "_design/kazoo_vm_counts", "views": {}})
    await store.put_doc(modb, {"_id": "_design/kazoo_vm_legacy_messages", "views": {}})


async def design_ids(store: CouchStore, db: str) -> set[str]:
    return {str(row.id) for row in await store.all_docs(db, start_key="_design/", end_key="_design0")}


async def test_retiring_deletes_the_design_documents_we_merged_away(store: CouchStore, account: TestAccount) -> None:
    modb = naming.modb(account.id, 2019, 2)
    await put_retired(store, modb)
    first = await bring_up_to_date(store, modb, "modb", retire=RETIRED["modb"])
    assert (first.retired, first.written) == (2, len(design_docs("modb")))
    again = await bring_up_to_date(store, modb, "modb", retire=RETIRED["modb"])
    assert (again.retired, again.written) == (0, 0)
    assert not {"_design/kazoo_vm_counts", "_design/kazoo_vm_legacy_messages"} & await design_ids(store, modb)


async def test_the_walk_leaves_every_modb_with_only_the_design_documents_we_ship(
    store: CouchStore, account: TestAccount
) -> None:
    modb = naming.modb(account.id, 2019, 3)
    await put_retired(store, modb)
    await listed(store, modb)
    marker, wanted = fresh()
    assert (await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted)).status == "done"
    assert await design_ids(store, modb) == {str(doc["_id"]) for doc in design_docs("modb")}


async def test_a_second_walk_rewrites_no_current_design_document(store: CouchStore, account: TestAccount) -> None:
    marker, wanted = fresh()
    db = naming.account_db(account.id)
    await listed(store, db)
    await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted)
    before = (await store.get_doc(db, "_design/vmboxes"))["_rev"]
    marker, wanted = fresh()
    assert (await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted)).status == "done"
    assert (await store.get_doc(db, "_design/vmboxes"))["_rev"] == before


async def test_a_query_of_a_view_its_stale_design_document_lacks_repairs_it(
    store: CouchStore, account: TestAccount
) -> None:
    db = naming.account_db(account.id)
    await tamper(store, db)
    assert await query_view(store, db, "account", "vmboxes", "crossbar_listing") == []
    assert await restored(store, db)


async def test_the_walk_reads_an_up_to_date_database_with_one_request(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    db = naming.account_db(account.id)
    modb = naming.modb(account.id, 2019, 4)
    await put_retired(store, modb)
    await listed(store, db, modb)
    marker, wanted = fresh()
    await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted)
    marker, wanted = fresh()
    counting = CountingStore(couch_url)
    try:
        result = await sync_if_changed(counting, holder="a", marker_id=marker, wanted=wanted)
    finally:
        await counting.close()
    assert result.status == "done" and result.written == 0 and result.retired == 0
    for name in (db, modb):
        assert [r for r in counting.requests if f"/{quote_name(name)}/" in r] == [f"POST /{quote_name(name)}/_all_docs"]


async def test_the_walk_writes_and_retires_a_database_s_design_documents_in_one_bulk_request(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    modb = naming.modb(account.id, 2019, 5)
    await put_retired(store, modb)  # the retired two, and none of the design documents we ship
    counting = CountingStore(couch_url)
    try:
        brought = await bring_up_to_date(counting, modb, "modb", retire=RETIRED["modb"])
    finally:
        await counting.close()
    assert (brought.written, brought.retired) == (len(design_docs("modb")), 2)
    path = f"/{quote_name(modb)}"
    assert counting.requests == [f"POST {path}/_all_docs", f"POST {path}/_bulk_docs", f"POST {path}/_view_cleanup"]


async def test_a_walk_worker_rests_after_each_database_in_proportion_to_its_time(
    store: CouchStore, account: TestAccount
) -> None:
    await listed(store, naming.account_db(account.id))
    rests: list[float] = []

    async def rest(seconds: float) -> None:
        rests.append(seconds)

    marker, wanted = fresh()
    paced = await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted, share=0.25, sleep=rest)
    assert paced.status == "done"
    assert len(rests) == paced.databases and all(seconds > 0 for seconds in rests)
    rests.clear()
    marker, wanted = fresh()
    await sync_if_changed(store, holder="a", marker_id=marker, wanted=wanted, share=1.0, sleep=rest)
    assert rests == []
