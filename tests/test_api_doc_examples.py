"""Replays every voicemail-box example of Kazoo 4.3's API document and checks the answers' shape.

The examples (requests exactly as the document's curl commands send them, and the documented response data) are in
``fixtures/api_doc_examples.json``. A replay passes when the envelope has Kazoo's keys and ``data`` has every key the
document shows, with the document's value, apart from values that differ per run (ids, message counts). Keys the
document leaves out may only be schema defaults (kz_json_schema fills defaults in).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from helpers import Api

from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.naming import account_db

EXAMPLES_FILE = Path(__file__).parent / "fixtures" / "api_doc_examples.json"
ENVELOPE_KEYS = {"auth_token", "data", "request_id", "revision", "status", "timestamp", "version", "node"}
SCHEMA_DEFAULT_KEYS = {
    "announcement_only",
    "check_if_owner",
    "delete_after_notify",
    "include_message_on_notify",
    "include_transcription_on_notify",
    "is_setup",
    "is_voicemail_ff_rw_enabled",
    "media",
    "media_extension",
    "not_configurable",
    "notify_email_addresses",
    "oldest_message_first",
    "require_pin",
    "save_after_notify",
    "seek_duration_ms",
    "skip_envelope",
    "skip_greeting",
    "skip_instructions",
    "transcribe",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def load_examples() -> dict[str, Any]:
    examples: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return examples


DOC = load_examples()
EXAMPLES: dict[str, dict[str, Any]] = DOC["examples"]


async def replay(
    api: Api, name: str, *, box_id: str | None = None, request_id: str = "doc-example", path: str | None = None
) -> tuple[ClientResponse, Any]:
    example = EXAMPLES[name]
    target = (path or example["path"]).replace("{ACCOUNT_ID}", api.account.id)
    if box_id is not None:
        target = target.replace("{VM_BOX_ID}", box_id)
    assert "{" not in target, target
    headers = {**example["headers"], **api.account.headers, "X-Request-Id": request_id}
    body = example["body"].encode() if example["body"] is not None else None
    response = await api.client.request(example["method"], target, headers=headers, data=body)
    return response, await response.json(content_type=None)


def assert_envelope(response: ClientResponse, body: dict[str, Any], api: Api, request_id: str) -> None:
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(DOC["documented_envelope_keys"]) <= ENVELOPE_KEYS
    assert set(body) >= ENVELOPE_KEYS, sorted(body)
    assert body["status"] == "success"
    assert body["auth_token"] == api.account.token
    assert body["request_id"] == request_id
    assert response.headers["X-Request-Id"] == request_id
    assert isinstance(body["revision"], str) and body["revision"]
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert isinstance(body["version"], str) and body["version"].startswith("4.3")
    assert isinstance(body["node"], str) and body["node"]
    assert "error" not in body


def assert_documented_data(actual: dict[str, Any], expected: dict[str, Any], volatile: list[str]) -> None:
    for key, value in expected.items():
        assert key in actual, key
        if key not in volatile:
            assert actual[key] == value, (key, actual[key], value)


def assert_only_defaults_added(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    extra = set(actual) - set(expected)
    assert extra <= SCHEMA_DEFAULT_KEYS, sorted(extra - SCHEMA_DEFAULT_KEYS)


async def create_documented_box(api: Api) -> dict[str, Any]:
    response, body = await replay(api, "create", request_id="doc-setup")
    assert response.status == 201, body
    data: dict[str, Any] = body["data"]
    return data


def test_every_box_example_of_the_document_is_in_the_fixture() -> None:
    assert set(EXAMPLES) == {"create", "list", "fetch", "patch", "change", "delete"}
    methods = sorted(example["method"] for example in EXAMPLES.values())
    assert methods == ["DELETE", "GET", "GET", "PATCH", "POST", "PUT"]


async def test_create_example(api: Api, store: CouchStore) -> None:
    example = EXAMPLES["create"]

    response, body = await replay(api, "create", request_id="doc-create")

    assert response.status == 201, body
    assert_envelope(response, body, api, "doc-create")
    data = body["data"]
    assert_documented_data(data, example["response_data"], example["volatile"])
    assert_only_defaults_added(data, example["response_data"])
    assert HEX32.match(data["id"])
    assert response.headers["Location"] == f"/v2/accounts/{api.account.id}/vmboxes/{data['id']}"
    doc = await store.get_doc(account_db(api.account.id), data["id"])
    assert body["revision"] == doc["_rev"]


async def test_list_example(api: Api) -> None:
    example = EXAMPLES["list"]
    created = await create_documented_box(api)

    response, body = await replay(api, "list", request_id="doc-list")

    assert response.status == 200, body
    assert_envelope(response, body, api, "doc-list")
    assert isinstance(body["data"], list) and len(body["data"]) == len(example["response_data"]) == 1
    item = body["data"][0]
    assert_documented_data(item, example["response_data"][0], example["volatile"])
    assert item["id"] == created["id"]
    assert isinstance(item["messages"], int) and item["messages"] == 0  # the document's box had 4 messages
    assert set(item) - set(example["response_data"][0]) <= {"flags"}
    assert body["page_size"] == 1


async def test_fetch_example(api: Api) -> None:
    example = EXAMPLES["fetch"]
    created = await create_documented_box(api)

    response, body = await replay(api, "fetch", box_id=created["id"], request_id="doc-fetch")

    assert response.status == 200, body
    assert_envelope(response, body, api, "doc-fetch")
    assert_documented_data(body["data"], example["response_data"], example["volatile"])
    assert_only_defaults_added(body["data"], example["response_data"])
    assert body["data"]["id"] == created["id"]
    assert body["revision"].startswith("1-")
    assert response.headers["ETag"] == f'"{body["revision"]}"'


async def test_patch_example(api: Api, store: CouchStore) -> None:
    example = EXAMPLES["patch"]
    created = await create_documented_box(api)

    response, body = await replay(api, "patch", box_id=created["id"], request_id="doc-patch")

    assert response.status == 200, body
    assert_envelope(response, body, api, "doc-patch")
    assert_documented_data(body["data"], example["response_data"], example["volatile"])
    assert_only_defaults_added(body["data"], example["response_data"])
    assert body["data"]["id"] == created["id"]
    assert body["revision"].startswith("2-")
    doc = await store.get_doc(account_db(api.account.id), created["id"])
    assert doc["some_key"] == "some_value"


async def test_change_settings_example(api: Api) -> None:
    example = EXAMPLES["change"]
    created = await create_documented_box(api)

    response, body = await replay(api, "change", box_id=created["id"], request_id="doc-change")

    assert response.status == 200, body
    assert_envelope(response, body, api, "doc-change")
    assert_documented_data(body["data"], example["response_data"], example["volatile"])
    assert_only_defaults_added(body["data"], example["response_data"])
    assert body["data"]["id"] == created["id"]
    assert body["revision"].startswith("2-")


async def test_change_settings_example_at_its_literal_documented_path_is_405(api: Api) -> None:
    # The document's curl posts to /vmboxes (no box id); Kazoo allows only GET and PUT there.
    example = EXAMPLES["change"]
    await create_documented_box(api)

    response, body = await replay(api, "change", path=example["documented_path"], request_id="doc-change-literal")

    assert response.status == 405, body
    assert body["error"] == "405"
    assert body["message"] == "invalid_method"


async def test_delete_example(api: Api) -> None:
    example = EXAMPLES["delete"]
    created = await create_documented_box(api)

    response, body = await replay(api, "delete", box_id=created["id"], request_id="doc-delete")

    assert response.status == 200, body
    assert_envelope(response, body, api, "doc-delete")
    data = body["data"]
    assert_documented_data(data, example["response_data"], example["volatile"])
    assert data["id"] == created["id"]
    assert data["_read_only"] == {"deleted": True}
    assert_only_defaults_added({k: v for k, v in data.items() if k != "_read_only"}, example["response_data"])
    status, gone = await api.get(f"/vmboxes/{created['id']}")
    assert status == 404, gone


async def test_document_examples_in_order_on_one_box(api: Api) -> None:
    """create → fetch → list → patch → change → delete, as a client following the document would."""
    response, created = await replay(api, "create", request_id="seq-1")
    assert response.status == 201, created
    box_id = created["data"]["id"]
    revisions = [created["revision"]]

    steps = [("fetch", 200), ("list", 200), ("patch", 200), ("change", 200), ("delete", 200)]
    results: dict[str, dict[str, Any]] = {}
    for number, (name, status) in enumerate(steps, start=2):
        response, body = await replay(api, name, box_id=box_id, request_id=f"seq-{number}")
        assert response.status == status, (name, body)
        assert_envelope(response, body, api, f"seq-{number}")
        results[name] = body
        if name != "list":
            revisions.append(body["revision"])

    assert results["fetch"]["revision"] == revisions[0]
    assert [rev.split("-")[0] for rev in revisions] == ["1", "1", "2", "3", "4"]
    assert results["patch"]["data"]["some_key"] == "some_value"
    # POST replaces: the patched-in key is not in the document's POST body, so it is gone again.
    assert "some_key" not in results["change"]["data"]
    assert "some_key" not in results["delete"]["data"]
    status, listing = await api.get("/vmboxes")
    assert status == 200 and listing["data"] == []


@pytest.mark.parametrize("name", ["create", "change"])
def test_documented_request_bodies_are_kazoo_envelopes(name: str) -> None:
    body = json.loads(EXAMPLES[name]["body"])

    assert set(body) == {"data"}
    assert body["data"]["mailbox"] == "3000" and isinstance(body["data"]["mailbox"], str)
    assert body["data"]["pin"] == "0000" and isinstance(body["data"]["pin"], str)
