"""The full-box count of one monthly database: new and saved messages inside the window, read in one query when the
rows allow it, and still exact when rows outside the window fill that query's limit."""

from __future__ import annotations

from helpers import TestAccount

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.messages import box_modb_count, month_span

BOX = "b" * 32


async def month_with(store: CouchStore, account: TestAccount, folders_and_times: list[tuple[str, int]]) -> str:
    """A MODB of 2020-06 holding one message of BOX per (folder, second of the month)."""
    db = naming.modb(account.id, 2020, 6)
    await ensure_database(store, db, "modb")
    start, _ = month_span(2020, 6)
    docs = [
        {
            "_id": naming.message_id(start + second),
            "pvt_type": "mailbox_message",
            "source_id": BOX,
            "metadata": {"folder": folder, "timestamp": start + second},
        }
        for folder, second in folders_and_times
    ]
    results = await store.bulk_docs(db, docs)
    assert all("rev" in result for result in results), results
    return db


async def test_new_and_saved_messages_of_a_month_are_counted_in_one_query(
    store: CouchStore, account: TestAccount
) -> None:
    db = await month_with(store, account, [("new", 10), ("saved", 20), ("deleted", 30), ("saved", 40)])
    start, end = month_span(2020, 6)
    before = store.requests_sent
    assert await box_modb_count(store, db, BOX, start, end, at_most=10) == 3
    assert store.requests_sent == before + 1


async def test_the_count_stops_at_its_limit(store: CouchStore, account: TestAccount) -> None:
    db = await month_with(store, account, [("new", second) for second in range(10, 16)])
    start, end = month_span(2020, 6)
    assert await box_modb_count(store, db, BOX, start, end, at_most=4) == 4


async def test_saved_messages_older_than_the_window_filling_the_limit_are_not_counted(
    store: CouchStore, account: TestAccount
) -> None:
    # Window: from second 1000 of the month. Inside it one new and one saved message; before it two saved ones. With
    # a limit of 3 the first query's rows are the new one and the two old saved ones, which leave the saved one
    # inside the window unread: each folder is then counted exactly.
    db = await month_with(store, account, [("new", 2000), ("saved", 100), ("saved", 200), ("saved", 5000)])
    start, end = month_span(2020, 6)
    before = store.requests_sent
    assert await box_modb_count(store, db, BOX, start + 1000, end, at_most=3) == 2
    assert store.requests_sent == before + 3
    assert await box_modb_count(store, db, BOX, start, end, at_most=3) == 3  # all inside: the limit


async def test_a_missing_month_counts_nothing(store: CouchStore, account: TestAccount) -> None:
    db = naming.modb(account.id, 2019, 1)
    assert await box_modb_count(store, db, BOX, 0, 2**40, at_most=5) == 0
