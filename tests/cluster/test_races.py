"""Two requests racing on one thing at the same instant, through two service processes over different nodes of a
3-node CouchDB cluster: the same mailbox number claimed by two new boxes, the same message moved into two boxes.
On a cluster two racing writes of one document can both be accepted for a moment (each by some copies); the
service must still let exactly one win.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cluster.cluster_support import Api, Cluster, Service, TestAccount, fake_audio, message_docs
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

pytestmark = pytest.mark.cluster

ROUNDS = 30


async def test_simultaneous_claims_of_one_number_through_two_nodes_have_one_winner(
    services: list[Service], account: TestAccount, http: aiohttp.ClientSession, cluster: Cluster
) -> None:
    a, b = Api(http, services[0], account), Api(http, services[1], account)
    for round_ in range(ROUNDS):
        number = str(6000 + round_)
        answers = await asyncio.gather(
            a.call("PUT", "/vmboxes", {"name": f"a {round_}", "mailbox": number}),
            b.call("PUT", "/vmboxes", {"name": f"b {round_}", "mailbox": number}),
        )
        statuses = sorted(answer.status for answer in answers)
        if statuses != [201, 400]:
            store = CouchStore(cluster.urls[0])
            try:
                claim = await store.get_doc(
                    account.db, f"vmbox_mailbox_{number}", conflicts=True, deleted_conflicts=True, revs_info=True
                )
                print("claim:", claim)
                print("leaves:", await store._leaves(account.db, f"vmbox_mailbox_{number}", r=3))
            finally:
                await store.close()
        assert statuses == [201, 400], (round_, [answer.body for answer in answers])


async def test_simultaneous_moves_of_one_message_through_two_nodes_have_one_winner(
    services: list[Service], account: TestAccount, http: aiohttp.ClientSession, cluster: Cluster
) -> None:
    a, b = Api(http, services[0], account), Api(http, services[1], account)
    source, first, second = [await a.new_box(f"box {n}", str(7000 + n)) for n in range(3)]
    moved = 0
    for round_ in range(ROUNDS):
        message_id = await a.new_message(source, fake_audio(2000))
        answers = await asyncio.gather(
            a.call("POST", f"/vmboxes/{source}/messages/{message_id}", {"source_id": first}),
            b.call("POST", f"/vmboxes/{source}/messages/{message_id}", {"source_id": second}),
        )
        # At most one wins; the other finds the message gone (404), or, while CouchDB settles the race, 409 (the
        # plan that won the race is then finished by the next request that reads the message).
        statuses = sorted(answer.status for answer in answers)
        if statuses not in ([200, 404], [200, 409], [404, 409], [409, 409]):
            store = CouchStore(cluster.urls[0])
            try:
                print("leaves:", await store._leaves(naming.message_db(account.id, message_id), message_id, r=3))
            finally:
                await store.close()
        assert statuses in ([200, 404], [200, 409], [404, 409], [409, 409]), (
            round_,
            [(answer.status, answer.json()["data"]) for answer in answers],
        )
        moved += statuses.count(200)
    # Listings are views, eventually consistent on a cluster: poll until they settle.
    deadline = time.monotonic() + 15
    while True:
        listed = [
            len((await a.call("GET", f"/vmboxes/{box}/messages?paginate=false")).data)
            for box in (source, first, second)
        ]
        # Every message exactly once: in its box, or in the one box a move into won.
        if listed[0] <= ROUNDS - moved and sum(listed) == ROUNDS:
            break
        if time.monotonic() > deadline:
            store = CouchStore(cluster.urls[0])
            try:
                for doc in await message_docs(store, account.id):
                    print({key: doc.get(key) for key in ("_id", "_rev", "source_id", "history", "_conflicts")})
            finally:
                await store.close()
            raise AssertionError(listed)
        await asyncio.sleep(0.5)


async def test_one_database_created_through_three_nodes_at_once_refuses_no_one(cluster: Cluster) -> None:
    # Service processes starting together each create the databases they need (system_auth, a new month's MODB):
    # none may fail because another made the database a moment before.
    stores = [CouchStore(url) for url in cluster.urls]
    try:
        for round_ in range(ROUNDS):
            db = f"kazoo_vm_race_{round_}_{time.monotonic_ns()}"
            # Each answers (True: made by this call, False: found made; CouchDB may say the latter to all).
            await asyncio.gather(*(store.create_db(db) for store in stores for _ in range(2)))
            assert all([await store.db_exists(db) for store in stores]), round_
            async with aiohttp.ClientSession() as http, http.delete(f"{cluster.urls[0]}/{db}") as deleted:
                assert deleted.status == 200, await deleted.text()
    finally:
        for store in stores:
            await store.close()
