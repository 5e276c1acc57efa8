"""Read-your-writes across two service processes over two different nodes of a CouchDB cluster.

What CouchDB guarantees (docs/deployment.md): a document written by kazoo_vm (to every copy, w=n=3) is read back by
id with the default read quorum (r=2) through any node, because the two quorums overlap. Views
(listings, counts) read one copy per shard range and so are only eventually consistent: they are polled here.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cluster.cluster_support import Api, Service, TestAccount, fake_audio

pytestmark = pytest.mark.cluster


async def test_token_box_and_message_written_through_one_process_read_back_through_the_other(
    services: list[Service], account: TestAccount, http: aiohttp.ClientSession
) -> None:
    a, b = Api(http, services[0], account), Api(http, services[1], account)
    # The token came from process a; b accepts it: both processes share one signing key in CouchDB.
    box = await a.new_box("read your writes", "4100")
    fetched = await b.call("GET", f"/vmboxes/{box}")
    assert fetched.status == 200 and fetched.data["mailbox"] == "4100"
    patched = await b.call("PATCH", f"/vmboxes/{box}", {"name": "renamed", "mailbox": "4101"})
    assert patched.status == 200, patched.body
    assert (await a.call("GET", f"/vmboxes/{box}")).data["name"] == "renamed"
    # The renumbering is seen at once by the other process: the old number is free, the new one taken.
    taken = await a.call("PUT", "/vmboxes", {"name": "same number", "mailbox": "4101"})
    assert taken.status == 400 and "mailbox" in taken.json()["data"]
    assert (await a.call("PUT", "/vmboxes", {"name": "old number", "mailbox": "4100"})).status == 201

    written: dict[str, bytes] = {}
    for round_ in range(8):
        writer, reader = (a, b) if round_ % 2 == 0 else (b, a)
        audio = fake_audio()
        message_id = await writer.new_message(box, audio, caller_id_number=str(round_))
        written[message_id] = audio
        metadata = await reader.call("GET", f"/vmboxes/{box}/messages/{message_id}")
        assert metadata.status == 200 and metadata.data["folder"] == "new"
        assert await reader.audio(box, message_id) == audio
        changed = await reader.call("POST", f"/vmboxes/{box}/messages/{message_id}", {"folder": "saved"})
        assert changed.status == 200, changed.body
        assert (await writer.call("GET", f"/vmboxes/{box}/messages/{message_id}")).data["folder"] == "saved"

    deleted = next(iter(written))
    assert (await a.call("DELETE", f"/vmboxes/{box}/messages/{deleted}")).status == 200
    assert (await b.call("GET", f"/vmboxes/{box}/messages/{deleted}")).status == 404

    # Listings and counts come from views: every write shows up, on both processes, within a short while.
    expected = set(written) - {deleted}
    deadline = time.monotonic() + 15
    while True:
        listed = [
            {item["media_id"] for item in (await api.call("GET", f"/vmboxes/{box}/messages?paginate=false")).data}
            for api in (a, b)
        ]
        boxes = [(await api.call("GET", "/vmboxes")).data for api in (a, b)]
        counts = [next(item for item in listing if item["id"] == box)["messages"] for listing in boxes]
        if listed == [expected, expected] and counts == [len(expected)] * 2:
            break
        assert time.monotonic() < deadline, (listed, counts)
        await asyncio.sleep(0.2)
