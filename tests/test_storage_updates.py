"""The one read-modify-write primitive (kazoo_vm.storage.updates) against a real CouchDB."""

from __future__ import annotations

import pytest
from helpers import TestAccount

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore
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
