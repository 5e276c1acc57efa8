"""Every answer the store reads from CouchDB is its own request's.

CouchDB can answer a request twice (a view query while a cluster node dies); the second answer waits on the idle
keep-alive connection for the next request. Here a relay in front of the suite's CouchDB puts such a stray answer on
the connection just before the next request goes through, and the store must not take it for that request's
answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from yarl import URL

from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import StorageUnreachable
from kazoo_vm.storage.request_ids import HEADER, new_request_id


@dataclass
class Relay:
    """A TCP relay to CouchDB that can put one stray answer in front of the next request's answer, and counts the
    requests that later come on the connection that carried it."""

    upstream: URL
    stray: list[bytes] = field(default_factory=list)  # at most one, sent before the next request is passed on
    strays_sent: int = 0
    later_on_that_connection: int = 0
    connections: int = 0
    spoil_request_ids: bool = False  # the server then answers with ids of its own, as older CouchDB releases do
    streams: list[asyncio.StreamWriter] = field(default_factory=list)
    serving: set[asyncio.Task[Any]] = field(default_factory=set)

    async def serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.serving.add(task)
        server_in, server_out = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        self.streams += [client_out, server_out]
        carried_stray = False

        async def requests() -> None:
            nonlocal carried_stray
            self.connections += 1
            while chunk := await client_in.read(65536):
                if carried_stray:
                    self.later_on_that_connection += 1
                if self.spoil_request_ids:
                    chunk = re.sub(rb"(?i)(x-couch-request-id: )kvm-", rb"\1kvm.", chunk)  # not well-formed
                if self.stray:
                    client_out.write(self.stray.pop())
                    await client_out.drain()
                    self.strays_sent += 1
                    carried_stray = True
                server_out.write(chunk)
                await server_out.drain()
            server_out.close()

        async def answers() -> None:
            while chunk := await server_in.read(65536):
                client_out.write(chunk)
                await client_out.drain()
            client_out.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(requests(), answers())

    async def close(self) -> None:
        """Close every connection and wait for them (none may be left for the closed event loop)."""
        for stream in self.streams:
            stream.close()
        await asyncio.gather(*self.serving, return_exceptions=True)
        for stream in self.streams:
            with contextlib.suppress(ConnectionError):
                await stream.wait_closed()


def stray_answer(body: dict[str, object], request_id: str | None) -> bytes:
    payload = json.dumps(body).encode()
    headers = [b"HTTP/1.1 200 OK", b"Content-Type: application/json", b"Content-Length: %d" % len(payload)]
    if request_id is not None:
        headers.append(f"X-Couch-Request-ID: {request_id}".encode())
    return b"\r\n".join(headers) + b"\r\n\r\n" + payload


@pytest.fixture
async def relay(couch_url: str) -> AsyncIterator[tuple[Relay, CouchStore]]:
    upstream = URL(couch_url)
    relay = Relay(upstream)
    server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = CouchStore(str(upstream.with_host("127.0.0.1").with_port(port)))
    try:
        yield relay, store
    finally:
        await store.close()
        server.close()
        await relay.close()
        await server.wait_closed()


@pytest.fixture
async def db(couch_url: str) -> AsyncIterator[str]:
    name = f"request-ids-{uuid.uuid4().hex}"
    direct = CouchStore(couch_url)
    await direct.create_db(name)
    await direct.put_doc(name, {"_id": "first", "n": 1})
    await direct.put_doc(name, {"_id": "second", "n": 2})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            await direct._json("DELETE", f"/{name}")
        await direct.close()


async def test_a_read_takes_its_own_answer_not_a_stray_one_ahead_of_it(
    relay: tuple[Relay, CouchStore], db: str
) -> None:
    proxy, store = relay
    first = await store.get_doc(db, "first")
    proxy.stray.append(stray_answer(first, new_request_id()))
    second = await store.get_doc(db, "second")
    assert proxy.strays_sent == 1
    assert (second["_id"], second["n"]) == ("second", 2)
    # The connection is closed, not put back for the next request: its own answer, still to come, would be read
    # as the next request's.
    for _ in range(3):
        assert (await store.get_doc(db, "first"))["n"] == 1
    assert proxy.later_on_that_connection == 0


async def test_a_query_sent_as_a_post_is_sent_again_after_a_stray_answer(
    relay: tuple[Relay, CouchStore], db: str
) -> None:
    proxy, store = relay
    proxy.stray.append(stray_answer({"total_rows": 1, "offset": 0, "rows": []}, new_request_id()))
    rows = await store.docs_by_id(db, ["first", "second"])
    assert proxy.strays_sent == 1
    assert [(row.id, (row.doc or {}).get("n")) for row in rows] == [("first", 1), ("second", 2)]


async def test_a_write_answered_by_a_stray_answer_fails_as_unreachable_and_the_next_request_is_answered_rightly(
    relay: tuple[Relay, CouchStore], db: str
) -> None:
    proxy, store = relay
    first = await store.get_doc(db, "first")
    await store.put_doc(db, {"_id": "warm-up"})  # the store learns the database's number of copies (one GET)
    proxy.stray.append(stray_answer({"ok": True, "id": "third", "rev": "1-0"}, new_request_id()))
    with pytest.raises(StorageUnreachable):
        await store.put_doc(db, {"_id": "third", "n": 3})
    assert proxy.strays_sent == 1
    for _ in range(3):
        assert await store.get_doc(db, "first") == first
    assert proxy.later_on_that_connection == 0


async def test_a_server_that_answers_with_request_ids_of_its_own_is_used_unchecked(
    relay: tuple[Relay, CouchStore], db: str
) -> None:
    proxy, store = relay
    proxy.spoil_request_ids = True
    async with store._session.get(f"{store.base_url}/{db}/first") as response:  # as the store's requests go
        assert not response.headers[HEADER].startswith("kvm")
    rev = await store.put_doc(db, {"_id": "third", "n": 3})
    assert (await store.get_doc(db, "third"))["_rev"] == rev
    assert len(await store.docs_by_id(db, ["first", "third"])) == 2
