"""A lease in a marker document: one holder at a time, renewed at checkpoints, resumed after expiry only by the same
job."""

from __future__ import annotations

import uuid

from helpers import TestAccount

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.leases import read_marker, take_lease

DB = naming.ACCOUNTS_DB


async def test_an_expired_lease_resumes_where_it_stopped_only_for_the_same_job(
    store: CouchStore, account: TestAccount
) -> None:
    doc_id = f"test_lease_{uuid.uuid4().hex}"
    now = [100.0]
    first = await take_lease(
        store, DB, doc_id, None, job="one", holder="a", lease_s=10, clock=lambda: now[0], doc_type="test"
    )
    assert first is not None and first.after is None
    assert await first.checkpoint("m")
    # Still live for another process, until it expires.
    marker = await read_marker(store, DB, doc_id)
    assert (
        await take_lease(
            store, DB, doc_id, marker, job="one", holder="b", lease_s=10, clock=lambda: now[0], doc_type="test"
        )
        is None
    )
    now[0] += 11
    same = await take_lease(
        store, DB, doc_id, marker, job="one", holder="b", lease_s=10, clock=lambda: now[0], doc_type="test"
    )
    assert same is not None and same.after == "m"
    # The first holder has lost it: its writes are refused.
    assert not await first.checkpoint("z")
    now[0] += 11
    other = await take_lease(
        store, DB, doc_id, same.marker, job="two", holder="c", lease_s=10, clock=lambda: now[0], doc_type="test"
    )
    assert other is not None and other.after is None
    assert await other.finish({"done": "two"})
    stored = await read_marker(store, DB, doc_id)
    assert stored is not None and stored["done"] == "two" and "lease" not in stored
