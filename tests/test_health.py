"""``/healthz`` and ``/readyz``: no token, JSON, readiness cached and costing at most one light CouchDB read."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from observability_support import total

from kazoo_vm import appkeys
from kazoo_vm.config import Settings
from kazoo_vm.http import health
from kazoo_vm.observability.metrics import exposition
from kazoo_vm.storage.couch import CouchStore


def couch_requests() -> float:
    return total(exposition()[0].decode(), "kazoo_vm_couch_requests_total")


async def test_healthz_answers_without_a_token_or_the_database(client: TestClient[Any, Any]) -> None:
    before = couch_requests()
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert response.headers["X-Request-Id"]
    assert couch_requests() == before


async def test_readyz_checks_couchdb_the_signing_key_and_design_docs_once_per_cache_period(
    client: TestClient[Any, Any],
) -> None:
    before = couch_requests()
    for _ in range(5):
        response = await client.get("/readyz")
        assert response.status == 200
        body = await response.json()
        assert body == {"status": "ready", "checks": {"couchdb": "ok", "signing_key": "ok", "design_docs": "ok"}}
    assert couch_requests() - before == 1  # cached: five probes, one light read, no write


async def test_concurrent_probes_share_one_check(client: TestClient[Any, Any]) -> None:
    before = couch_requests()
    responses = await asyncio.gather(*(client.get("/readyz") for _ in range(10)))
    assert [response.status for response in responses] == [200] * 10
    assert couch_requests() - before == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_not_ready_while_couchdb_is_unreachable_or_the_design_doc_sync_runs(settings: Settings) -> None:
    app = web.Application()
    app[appkeys.SETTINGS] = Settings(**{**settings.__dict__, "readiness_timeout_s": 1.0, "health_cache_s": 0.0})
    store = CouchStore(f"http://127.0.0.1:{closed_port()}")
    app[appkeys.STORE] = store
    health.install(app)
    never = asyncio.get_running_loop().create_future()
    syncing = asyncio.ensure_future(never)
    health.track_startup_sync(app, syncing)
    try:
        ready, checks = await health.readiness_of(app)
        assert not ready
        assert checks == {"couchdb": "unreachable", "signing_key": "not loaded", "design_docs": "syncing"}
    finally:
        syncing.cancel()
        await store.close()


async def test_readyz_is_503_until_the_store_is_connected(settings: Settings) -> None:
    app = web.Application()
    app[appkeys.SETTINGS] = settings
    health.install(app)
    ready, checks = await health.readiness_of(app)
    assert not ready and checks["couchdb"] == "not connected"
