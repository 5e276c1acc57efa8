"""The ``_changes`` long poll of the storage layer (the notification workers wake up on it)."""

from __future__ import annotations

import time
import uuid

from kazoo_vm.storage.couch import CouchStore


async def test_a_long_poll_asked_to_wait_past_the_silence_timeout_ends_quietly(couch_url: str) -> None:
    # CouchDB sends nothing while a long poll waits: a wait as long as the store's silence timeout would be taken
    # for a hung server (503 datastore_unreachable) instead of an empty answer.
    store = CouchStore(couch_url, timeout_s=1.0)
    try:
        db = f"kazoo_vm_test_changes_{uuid.uuid4().hex}"
        await store.create_db(db)
        since = await store.update_seq(db)
        started = time.monotonic()
        docs, last = await store.changes(db, since, timeout_ms=5000)
        assert docs == [] and last
        assert time.monotonic() - started < 5
        await store.put_doc(db, {"_id": "later"})
        docs, _ = await store.changes(db, last, timeout_ms=5000)
        assert [doc["_id"] for doc in docs] == ["later"]
    finally:
        await store.close()
