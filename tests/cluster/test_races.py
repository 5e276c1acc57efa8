"""Two requests racing on one thing at the same instant, through two service processes over different nodes of a
3-node CouchDB cluster: the same mailbox number claimed by two new boxes. On a cluster two racing writes of one
document can both be accepted for a moment (each by some copies); the service must still let exactly one win.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from cluster.cluster_support import Api, Cluster, Service, TestAccount
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
                claim = await store.get_doc(account.db, f"vmbox_mailbox_{number}", conflicts=True, revs_info=True)
                print("claim:", claim)
            finally:
                await store.close()
        assert statuses == [201, 400], (round_, [answer.body for answer in answers])
