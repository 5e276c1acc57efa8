"""Faults of the database and of clients: a hung CouchDB (SIGSTOP; the development server, and a real CouchDB node
when the suite is given the CouchDB kit) is answered 503 within the configured time,
requests that need no database keep answering, and the service recovers on SIGCONT without a restart; slow bodies
and idle keep-alive connections are cut off."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from couchdb_kit import kit_path, single_node
from helpers import Api, create_box, make_account

from kazoo_vm import devserver
from kazoo_vm.app import create_app
from kazoo_vm.config import load_settings


@dataclass(frozen=True)
class OwnCouch:
    url: str
    pid: int  # the process SIGSTOP hangs


def engines() -> list[str]:
    """The development server always; a real CouchDB node too when the suite is given the CouchDB kit."""
    return ["dev server", "CouchDB 3.5"] if kit_path() is not None else ["dev server"]


@pytest.fixture(params=engines())
def own_couch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnCouch]:
    """A server of this test's own: stopping it must not stall the rest of the suite."""
    kit = kit_path()
    if request.param == "CouchDB 3.5" and kit is not None:
        with single_node(kit, tmp_path / "couchdb") as node:
            try:
                yield OwnCouch(node.url, node.pid)
            finally:
                os.kill(node.pid, signal.SIGCONT)
        return
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    try:
        yield OwnCouch(server.url, server.process.pid)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


async def test_a_hung_couchdb_is_a_quick_503_and_the_service_recovers(
    aiohttp_client: Any, own_couch: OwnCouch, tmp_path: Path
) -> None:
    settings = load_settings({"KAZOO_VM_COUCH_TIMEOUT_S": "1.5"}, couch_url=own_couch.url, data_dir=tmp_path / "var")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, sync_design_docs=False))
    api = Api(client, await make_account(client))
    box = await create_box(api, mailbox="5000")
    os.kill(own_couch.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, body = await api.get(f"/vmboxes/{box['id']}")
        assert status == 503 and body["error"] == "503" and body["message"] == "datastore_unreachable", body
        status, body = await api.put("/vmboxes", {"name": "Lost", "mailbox": "5001"})
        assert status == 503, body
        assert time.monotonic() - started < 8
        # No database needed: answered at once.
        response = await client.get("/v2/nothing/here")
        assert response.status == 404
        response = await client.options(f"/v2/accounts/{api.account.id}/vmboxes")
        assert response.status == 200
    finally:
        os.kill(own_couch.pid, signal.SIGCONT)
    status, body = await api.get(f"/vmboxes/{box['id']}")
    assert status == 200 and body["data"]["mailbox"] == "5000"
    # The write that was answered 503 may or may not have reached CouchDB before it stopped, but nothing is
    # half-done: its number is free or held by a live box, and a new box can take another one.
    status, body = await api.get("/vmboxes")
    assert status == 200 and all(item["mailbox"] in ("5000", "5001") for item in body["data"])
    await create_box(api, name="After", mailbox="5002")


async def test_a_body_trickling_in_is_cut_off_with_a_408(aiohttp_server: Any, couch_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        {"KAZOO_VM_BODY_READ_TIMEOUT_S": "1", "KAZOO_VM_KEEPALIVE_TIMEOUT_S": "1"},
        couch_url=couch_url,
        data_dir=tmp_path,
    )
    server = await aiohttp_server(create_app(settings, sync_design_docs=False))
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"PUT /v2/api_auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # the server closed the connection
    assert time.monotonic() - started < 6
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer
    writer.close()
    await writer.wait_closed()


async def test_an_idle_keep_alive_connection_is_closed(aiohttp_server: Any, couch_url: str, tmp_path: Path) -> None:
    settings = load_settings({"KAZOO_VM_KEEPALIVE_TIMEOUT_S": "1"}, couch_url=couch_url, data_dir=tmp_path)
    server = await aiohttp_server(create_app(settings, sync_design_docs=False))
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    assert answer.startswith(b"HTTP/1.1 404") and b"Connection: close" not in answer
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed by the server, idle
    assert time.monotonic() - started < 5
    writer.close()
    await writer.wait_closed()


async def test_requests_the_http_parser_refuses_are_a_4xx(aiohttp_server: Any, app: Any) -> None:
    server = await aiohttp_server(app)
    heads = [
        b"get /v2/api_auth HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % n for n in range(300)) + b"\r\n",
        b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ]
    for head in heads:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (head[:40], answer[:200])
        writer.close()
        await writer.wait_closed()
    await writer.wait_closed()
