"""``GET /metrics``: Prometheus text with request, CouchDB, audio and ZIP figures that match what was done."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from helpers import Api, create_box
from message_support import fake_mp3, put_message
from migration_support import audio_for, legacy_entry, media_doc, save_all
from observability_support import total, value

from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import Conflict

BOX_ROUTE = "/v2/accounts/{account_id}/vmboxes/{box_id}"
MESSAGES_ROUTE = "/v2/accounts/{account_id}/vmboxes/{box_id}/messages"
RAW_ROUTE = "/v2/accounts/{account_id}/vmboxes/{box_id}/messages/{message_id}/raw"
ZIP_ROUTE = "/v2/accounts/{account_id}/vmboxes/{box_id}/messages/raw"


async def scrape(client: TestClient[Any, Any], **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def test_a_scrape_counts_requests_by_route_template_couchdb_audio_and_zips(
    client: TestClient[Any, Any], api: Api, store: CouchStore
) -> None:
    box = await create_box(api)
    audio = fake_mp3(50_000)
    status, created = await put_message(api, box["id"], {}, audio)
    assert status == 201
    message_id = created["data"]["media_id"]

    before = await scrape(client)
    for _ in range(2):
        assert (await api.get(f"/vmboxes/{box['id']}"))[0] == 200
    assert (await api.get("/vmboxes/" + "0" * 32))[0] == 404
    response = await client.get(api.url(f"/vmboxes/{box['id']}/messages/{message_id}/raw"), headers=api.account.headers)
    assert response.status == 200 and await response.read() == audio
    response = await client.post(
        api.url(f"/vmboxes/{box['id']}/messages/raw"),
        json={"data": {"messages": [message_id]}},
        headers={**api.account.headers, "Accept": "application/zip"},
    )
    zipped = await response.read()
    assert response.status == 200 and len(zipped) > len(audio)
    second = fake_mp3(30_000)
    assert (await put_message(api, box["id"], {}, second))[0] == 201
    stale = {"_id": "metrics-conflict", "kind": "test"}
    await store.put_doc(api.account.account.db, dict(stale))
    with contextlib.suppress(Conflict):
        await store.put_doc(api.account.account.db, dict(stale))  # no _rev: CouchDB answers 409
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "kazoo_vm_http_requests_total"
    assert delta(requests, route=BOX_ROUTE, method="GET", status="200") == 2
    assert delta(requests, route=BOX_ROUTE, method="GET", status="404") == 1
    assert delta(requests, route=RAW_ROUTE, method="GET", status="200") == 1
    assert delta(requests, route=ZIP_ROUTE, method="POST", status="200") == 1
    assert delta(requests, route=MESSAGES_ROUTE, method="PUT", status="201") == 1
    assert delta("kazoo_vm_http_request_duration_seconds_count", route=BOX_ROUTE, method="GET") == 3
    # Label values are templates: no account, box or message id ever appears in the scrape.
    for identifier in (api.account.id, box["id"], message_id):
        assert identifier not in after

    assert delta("kazoo_vm_audio_bytes_total", direction="in") == len(second)
    assert delta("kazoo_vm_audio_bytes_total", direction="out") == 2 * len(audio)  # the download and the ZIP
    assert delta("kazoo_vm_zips_streamed_total") == 1
    assert delta("kazoo_vm_couch_conflicts_total", kind="doc") == 1
    assert delta("kazoo_vm_couch_requests_total", kind="doc", method="PUT", outcome="conflict") == 1
    couch_before = total(before, "kazoo_vm_couch_requests_total")
    couch_after = total(after, "kazoo_vm_couch_requests_total")
    assert couch_after - couch_before >= 8  # at least one round trip per request above
    assert total(after, "kazoo_vm_couch_requests_total", kind="attachment", outcome="ok") >= 2
    assert total(after, "kazoo_vm_couch_request_duration_seconds_count", kind="doc") > total(
        before, "kazoo_vm_couch_request_duration_seconds_count", kind="doc"
    )


async def test_metrics_can_require_a_bearer_token(aiohttp_client: Any, settings: Settings) -> None:
    guarded = Settings(**{**settings.__dict__, "metrics_token": "scrape-secret"})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(guarded, sync_design_docs=False))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert "kazoo_vm_http_requests_total" in await scrape(client, Authorization="Bearer scrape-secret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_can_be_served_on_a_separate_port(aiohttp_client: Any, settings: Settings) -> None:
    port = free_port()
    separate = Settings(**{**settings.__dict__, "metrics_port": port})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(separate, sync_design_docs=False))
    assert (await client.get("/metrics")).status == 404
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert "kazoo_vm_couch_requests_total" in await response.text()


async def test_legacy_entries_migrated_by_an_api_request_are_counted(
    client: TestClient[Any, Any], api: Api, store: CouchStore
) -> None:
    box = await create_box(api)
    legacy_id = "e1" * 16
    db = naming.account_db(api.account.id)
    doc = await store.get_doc(db, box["id"])
    doc["messages"] = [legacy_entry(legacy_id, naming.now_gregorian() - 86_400)]
    await store.put_doc(db, doc)
    await save_all(store, api.account.id, [media_doc(api.account.id, legacy_id, box["id"], audio_for(legacy_id))])
    before = await scrape(client)

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{legacy_id}")

    assert status == 200, body
    after = await scrape(client)
    migrated = "kazoo_vm_migration_entries_total"
    assert value(after, migrated, status="migrated") - value(before, migrated, status="migrated") == 1
