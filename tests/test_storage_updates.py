"""The one read-modify-write primitive (kazoo_vm.storage.updates) against a real CouchDB."""

from __future__ import annotations

import aiohttp
import pytest
from helpers import TestAccount

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore, quote_name
from kazoo_vm.storage.errors import Conflict, DocumentNotFound, KeptChanging
from kazoo_vm.storage.updates import UPDATE_ATTEMPTS, retry_on_conflict, update_doc


async def test_an_update_from_a_stale_read_is_applied_again_to_the_fresh_document(
    store: CouchStore, account: TestAccount
) -> None:
    doc: JsonDict = {"_id": "counter", "a": 0, "b": 0}
    await store.put_doc(account.account.db, doc)
    stale = dict(doc)
    fresh = dict(doc)
    fresh["b"] = 1
    await store.put_doc(account.account.db, fresh)  # another writer got there first
    seen: list[str] = []

    def bump_a(current: JsonDict) -> JsonDict:
        seen.append(current["_rev"])
        current["a"] += 1
        return current

    written = await update_doc(store, account.account.db, "counter", bump_a, current=stale)
    stored = await store.get_doc(account.account.db, "counter")
    assert (stored["a"], stored["b"]) == (1, 1)  # neither change lost
    assert written["_rev"] == stored["_rev"]
    assert seen == [stale["_rev"], fresh["_rev"]]


async def test_nothing_to_write_writes_nothing(store: CouchStore, account: TestAccount) -> None:
    doc: JsonDict = {"_id": "quiet", "a": 1}
    rev = await store.put_doc(account.account.db, doc)
    result = await update_doc(store, account.account.db, "quiet", lambda current: None)
    assert result["_rev"] == rev
    assert (await store.get_doc(account.account.db, "quiet"))["_rev"] == rev


async def test_a_delete_uses_the_latest_revision(store: CouchStore, account: TestAccount) -> None:
    doc: JsonDict = {"_id": "doomed"}
    await store.put_doc(account.account.db, doc)
    stale = dict(doc)
    await store.put_doc(account.account.db, doc)  # a newer revision
    await update_doc(store, account.account.db, "doomed", lambda current: current, current=stale, delete=True)
    with pytest.raises(DocumentNotFound):
        await store.get_doc(account.account.db, "doomed")


async def test_a_missing_document_is_not_found(store: CouchStore, account: TestAccount) -> None:
    with pytest.raises(DocumentNotFound):
        await update_doc(store, account.account.db, "nothing-here", lambda current: current)


async def test_a_document_that_keeps_changing_gives_up_with_one_error_after_the_documented_limit() -> None:
    attempts = 0

    async def always_conflicting() -> None:
        nonlocal attempts
        attempts += 1
        raise Conflict("someone else wrote first", status=409)

    with pytest.raises(KeptChanging) as caught:
        await retry_on_conflict(always_conflicting, what="doc")
    assert attempts == UPDATE_ATTEMPTS
    assert isinstance(caught.value, Conflict) and caught.value.status == 409


async def test_an_inner_update_that_gave_up_is_not_retried_by_an_outer_one() -> None:
    attempts = 0

    async def inner_gave_up() -> None:
        nonlocal attempts
        attempts += 1
        raise KeptChanging("inner")

    with pytest.raises(KeptChanging):
        await retry_on_conflict(inner_gave_up, what="outer")
    assert attempts == 1


async def test_a_refused_create_leaves_an_existing_document_with_the_same_content_alone(
    store: CouchStore, account: TestAccount
) -> None:
    db = account.account.db
    await store.put_doc(db, {"_id": "twice", "kind": "same"})
    with pytest.raises(Conflict):
        await store.put_doc(db, {"_id": "twice", "kind": "same"})  # no _rev: CouchDB answers 409
    assert (await store.get_doc(db, "twice"))["kind"] == "same"


async def _plant(couch_url: str, db: str, leaves: list[JsonDict]) -> None:
    """Write revisions as a cluster's replication would leave them (``new_edits=false``)."""
    async with aiohttp.ClientSession() as http:
        url = f"{couch_url.rstrip('/')}/{quote_name(db)}/_bulk_docs"
        async with http.post(url, json={"docs": leaves, "new_edits": False}) as response:
            assert response.status == 201, await response.text()


def _leaf(doc_id: str, hashes: list[str], start: int, **content: object) -> JsonDict:
    return {"_id": doc_id, "_rev": f"{start}-{hashes[0]}", "_revisions": {"start": start, "ids": hashes}, **content}


async def test_a_202_writer_gives_way_to_a_rival_that_went_on_and_deleted_the_document(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    """A 202 writer whose rival forked from the same revision and has since deleted the document (a message moved
    away) must not keep its leaf: it would bring the deleted document back. ``_yield_if_contested`` is what
    ``put_doc`` runs after a 202, which a single node never answers, so it is called directly here."""
    db = account.account.db
    parent, rival, removed, ours = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    await _plant(couch_url, db, [_leaf("moved", [parent], 1, plan=None)])
    await _plant(couch_url, db, [_leaf("moved", [removed, rival, parent], 3, _deleted=True)])
    await _plant(couch_url, db, [_leaf("moved", [ours, parent], 2, plan="mine")])
    with pytest.raises(Conflict):
        await store._yield_if_contested(db, {"_id": "moved", "_rev": f"1-{parent}"}, f"2-{ours}")
    with pytest.raises(DocumentNotFound):
        await store.get_doc(db, "moved")


async def test_a_202_writer_ignores_tombstones_of_earlier_lost_races(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    db = account.account.db
    parent, ours, old, old_parent = "a" * 32, "d" * 32, "e" * 32, "9" * 32
    await _plant(couch_url, db, [_leaf("kept", [parent, old_parent], 2, state="base")])
    await _plant(couch_url, db, [_leaf("kept", [old, "8" * 32, old_parent], 3, _deleted=True)])
    await _plant(couch_url, db, [_leaf("kept", [ours, parent, old_parent], 3, state="mine")])
    await store._yield_if_contested(db, {"_id": "kept", "_rev": f"2-{parent}"}, f"3-{ours}")
    assert (await store.get_doc(db, "kept"))["state"] == "mine"


async def test_a_taken_back_write_stays_deleted_on_a_copy_that_gets_it_only_later(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    """A copy of a cluster that never held our lost write can get it a moment later from read repair. The
    tombstone must already cover it there: written as replication writes, it lands on a copy lacking the write too
    (here one database plays that copy: the tombstone first, the write it deletes afterwards)."""
    db = account.account.db
    parent, rival, ours = "a" * 32, "b" * 32, "f" * 32
    await _plant(couch_url, db, [_leaf("late", [parent], 1, holder="first")])
    await _plant(couch_url, db, [_leaf("late", [rival, parent], 2, holder="rival")])
    await store._give_way(db, "late", f"2-{ours}", [ours, parent])
    await _plant(couch_url, db, [_leaf("late", [ours, parent], 2, holder="ours")])  # "ours" > "rival" by hash
    stored = await store.get_doc(db, "late", conflicts=True)
    assert stored["holder"] == "rival" and "_conflicts" not in stored


@pytest.mark.parametrize("first", ["higher", "lower"])
async def test_two_racing_202_writers_from_one_revision_keep_only_the_higher(
    store: CouchStore, account: TestAccount, couch_url: str, first: str
) -> None:
    """Both racing writers got a 202 and read the same two leaves: each applies the same rule, whichever settles
    first, so the lower gives way and the higher stays; neither both (the document would be gone) nor none."""
    db = account.account.db
    parent, low, high = "a" * 32, "b" * 32, "c" * 32
    await _plant(couch_url, db, [_leaf("raced", [parent], 1, state="base")])
    await _plant(couch_url, db, [_leaf("raced", [low, parent], 2, state="low")])
    await _plant(couch_url, db, [_leaf("raced", [high, parent], 2, state="high")])
    base: JsonDict = {"_id": "raced", "_rev": f"1-{parent}"}
    for writer in ["higher", "lower"] if first == "higher" else ["lower", "higher"]:
        if writer == "higher":
            await store._yield_if_contested(db, dict(base), f"2-{high}")
        else:
            with pytest.raises(Conflict):
                await store._yield_if_contested(db, dict(base), f"2-{low}")
    stored = await store.get_doc(db, "raced", conflicts=True)
    assert stored["state"] == "high" and "_conflicts" not in stored


async def test_a_202_writer_whose_leaf_no_copy_shows_gives_way_to_a_rival_that_does(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    """The copy that took our write went down before we read the leaves: the rival, reading the same copies, sees
    only itself and keeps its write, so ours must give way, whatever the order of the revisions (here ours is
    higher), or both would stay once that copy is back."""
    db = account.account.db
    parent, rival, ours = "a" * 32, "b" * 32, "f" * 32
    await _plant(couch_url, db, [_leaf("unseen", [parent], 1, holder="base")])
    await _plant(couch_url, db, [_leaf("unseen", [rival, parent], 2, holder="rival")])
    with pytest.raises(Conflict):
        await store._yield_if_contested(db, {"_id": "unseen", "_rev": f"1-{parent}"}, f"2-{ours}")
    await _plant(couch_url, db, [_leaf("unseen", [ours, parent], 2, holder="ours")])  # the copy is back
    stored = await store.get_doc(db, "unseen", conflicts=True)
    assert stored["holder"] == "rival" and "_conflicts" not in stored
