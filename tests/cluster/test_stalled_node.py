"""A node that stops answering without dropping its connections (a stalled disk, a partition Erlang has not noticed
yet), played by SIGSTOP. kazoo_vm writes to every copy (docs/deployment.md, "Quorum, conflicts and
read-your-writes"), so its writes wait for the stalled node: each must still be answered within the service's
CouchDB timeout, in Kazoo's error envelope, while reads go on; once the node answers again nothing written is lost
or doubled and the nodes agree.
"""

from __future__ import annotations

import time

import aiohttp
import pytest

from cluster.cluster_support import (
    COUCH_TIMEOUT_S,
    Api,
    Cluster,
    Service,
    TestAccount,
    account_modbs,
    fake_audio,
    wait_for_agreement,
)
from kazoo_vm.storage.couch import CouchStore

pytestmark = pytest.mark.cluster

STALLED = 3  # the node neither service process talks to


async def test_a_stalled_node_fails_writes_within_the_timeout_while_reads_go_on(
    services: list[Service], account: TestAccount, http: aiohttp.ClientSession, cluster: Cluster
) -> None:
    a = Api(http, services[0], account)
    box = await a.new_box("stalled", "4300")
    audio = fake_audio()
    message_id = await a.new_message(box, audio)
    # Each write's CouchDB request waits in silence for the stalled copy: the service gives up after its timeout.
    deadline_s = COUCH_TIMEOUT_S + 3
    cluster.pause_node(STALLED)
    try:
        for folder in ("saved", "new"):
            started = time.monotonic()
            changed = await a.call("POST", f"/vmboxes/{box}/messages/{message_id}", {"folder": folder})
            assert time.monotonic() - started < deadline_s
            # Every range has a copy on the stalled node (n=3 of 3 nodes): no write completes meanwhile.
            assert changed.status == 503, changed.body  # in Kazoo's envelope: Api checks every error answer
            started = time.monotonic()
            fetched = await a.call("GET", f"/vmboxes/{box}/messages/{message_id}")
            assert fetched.status == 200 and time.monotonic() - started < 1.0
            assert await a.audio(box, message_id) == audio
    finally:
        cluster.resume_node(STALLED)
    # Whatever became of the writes the service gave up on, once the node answers the message is there once, whole.
    assert (await a.call("POST", f"/vmboxes/{box}/messages/{message_id}", {"folder": "saved"})).status == 200
    assert await a.audio(box, message_id) == audio
    store = CouchStore(cluster.urls[0])
    try:
        dbs = [account.db, *await account_modbs(store, account.id)]
    finally:
        await store.close()
    await wait_for_agreement(http, cluster.urls, dbs, timeout_s=90)
    listed = (await a.call("GET", f"/vmboxes/{box}/messages?paginate=false")).data
    assert [item["media_id"] for item in listed] == [message_id]
